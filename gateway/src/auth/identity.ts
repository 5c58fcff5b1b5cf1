import { AuthError } from './errors.ts';

export interface Identity {
  readonly userId: string; // sub
  readonly tenantId: string; // claims[tenantClaim], as string
  readonly orgs: readonly string[]; // `orgs` claim (array of strings or of {id}); [] when absent
  readonly roles: readonly string[]; // `roles` claim, or `role` string, or realm_access.roles (Keycloak); [] when absent
  readonly expiresAt: number | undefined; // epoch seconds
  readonly viaTicket: boolean;
}

type Claims = Readonly<Record<string, unknown>>;

/**
 * Builds an Identity from already-verified claims. Throws AuthError for a missing subject or tenant: those
 * are authorization inputs, so a token without them must not authenticate anyone.
 */
export function identityFromClaims(claims: Claims, tenantClaim: string, viaTicket: boolean): Identity {
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub.length === 0) {
    throw new AuthError('missing_subject', 'token has no "sub" claim');
  }
  const tenantId = tenantOf(claims[tenantClaim]);
  if (tenantId === undefined) {
    throw new AuthError('missing_tenant', `token has no usable "${tenantClaim}" claim`);
  }
  const exp = claims['exp'];
  return {
    userId: sub,
    tenantId,
    orgs: orgsOf(claims['orgs']),
    roles: rolesOf(claims),
    expiresAt: typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined,
    viaTicket,
  };
}

function tenantOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  // Some IdPs emit numeric tenant ids; accept integers only so "1.5" or NaN never becomes a tenant.
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

function orgsOf(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const orgs: string[] = [];
  for (const entry of value) {
    if (typeof entry === 'string' && entry.length > 0) {
      orgs.push(entry);
    } else if (typeof entry === 'object' && entry !== null) {
      const id: unknown = (entry as Record<string, unknown>)['id'];
      if (typeof id === 'string' && id.length > 0) orgs.push(id);
    }
  }
  return unique(orgs);
}

function rolesOf(claims: Claims): string[] {
  const roles = claims['roles'];
  if (Array.isArray(roles)) return stringsOf(roles);
  const role = claims['role'];
  if (typeof role === 'string' && role.length > 0) return [role];
  const realmAccess = claims['realm_access'];
  if (typeof realmAccess === 'object' && realmAccess !== null) {
    const realmRoles: unknown = (realmAccess as Record<string, unknown>)['roles'];
    if (Array.isArray(realmRoles)) return stringsOf(realmRoles);
  }
  return [];
}

function stringsOf(values: readonly unknown[]): string[] {
  return unique(values.filter((v): v is string => typeof v === 'string' && v.length > 0));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
