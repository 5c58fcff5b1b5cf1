/** Service, and how the fleet is exposed: an Ingress (ingress-nginx or Traefik) or an HTTPRoute. Pure. */
import type { ExposureSpec, RealtimeGateway } from '../api/types.ts';
import { DEFAULTS, port } from './defaults.ts';
import { childMeta, names, selectorLabels, type KubeObject } from './meta.ts';

function exposureDefaults(e: ExposureSpec): Required<Pick<ExposureSpec, 'sticky' | 'websocketTimeoutSeconds' | 'cookieName'>> {
  return {
    sticky: e.sticky ?? DEFAULTS.sticky,
    websocketTimeoutSeconds: e.websocketTimeoutSeconds ?? DEFAULTS.websocketTimeoutSeconds,
    cookieName: e.cookieName ?? DEFAULTS.cookieName,
  };
}

export function service(rg: RealtimeGateway): KubeObject {
  const e = rg.spec.exposure;
  let annotations: Record<string, string> | undefined;
  // Traefik keeps its sticky cookie on the Service, not on the Ingress.
  if (e !== undefined && exposureDefaults(e).sticky === 'traefik') {
    annotations = {
      'traefik.ingress.kubernetes.io/service.sticky.cookie': 'true',
      'traefik.ingress.kubernetes.io/service.sticky.cookie.name': exposureDefaults(e).cookieName,
      'traefik.ingress.kubernetes.io/service.sticky.cookie.httponly': 'true',
      'traefik.ingress.kubernetes.io/service.sticky.cookie.secure': e.tlsSecretName === undefined ? 'false' : 'true',
    };
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(rg, names.service(rg), annotations),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(rg),
      ports: [{ name: 'http', port: port(rg.spec), targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** An Ingress for ingress-nginx or Traefik; undefined when there is no exposure or it is Gateway API. */
export function ingress(rg: RealtimeGateway): KubeObject | undefined {
  const e = rg.spec.exposure;
  if (e === undefined) return undefined;
  const d = exposureDefaults(e);
  if (d.sticky === 'gateway-api') return undefined;
  const timeout = String(d.websocketTimeoutSeconds);
  const annotations: Record<string, string> =
    d.sticky === 'ingress-nginx'
      ? {
          'nginx.ingress.kubernetes.io/affinity': 'cookie',
          'nginx.ingress.kubernetes.io/affinity-mode': 'persistent',
          'nginx.ingress.kubernetes.io/session-cookie-name': d.cookieName,
          'nginx.ingress.kubernetes.io/proxy-read-timeout': timeout,
          'nginx.ingress.kubernetes.io/proxy-send-timeout': timeout,
        }
      : e.tlsSecretName === undefined
        ? {}
        : { 'traefik.ingress.kubernetes.io/router.tls': 'true' };
  const spec: Record<string, unknown> = {
    ingressClassName: e.className ?? (d.sticky === 'traefik' ? 'traefik' : 'nginx'),
    rules: [
      {
        host: e.host,
        http: {
          paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: names.service(rg), port: { name: 'http' } } } }],
        },
      },
    ],
  };
  if (e.tlsSecretName !== undefined) spec.tls = [{ hosts: [e.host], secretName: e.tlsSecretName }];
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: childMeta(rg, names.ingress(rg), annotations), spec };
}

/** A Gateway API HTTPRoute with cookie session persistence; undefined unless sticky is gateway-api. */
export function httpRoute(rg: RealtimeGateway): KubeObject | undefined {
  const e = rg.spec.exposure;
  if (e === undefined || exposureDefaults(e).sticky !== 'gateway-api' || e.gatewayRef === undefined) return undefined;
  const d = exposureDefaults(e);
  const parentRef: Record<string, string> = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: e.gatewayRef.name };
  if (e.gatewayRef.namespace !== undefined) parentRef.namespace = e.gatewayRef.namespace;
  if (e.gatewayRef.sectionName !== undefined) parentRef.sectionName = e.gatewayRef.sectionName;
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: childMeta(rg, names.httpRoute(rg)),
    spec: {
      parentRefs: [parentRef],
      hostnames: [e.host],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ group: '', kind: 'Service', name: names.service(rg), port: port(rg.spec), weight: 1 }],
          sessionPersistence: { sessionName: d.cookieName, type: 'Cookie', cookieConfig: { lifetimeType: 'Session' } },
          timeouts: { request: `${d.websocketTimeoutSeconds}s` },
        },
      ],
    },
  };
}

/** The URL clients connect to: through the exposure when there is one, else inside the cluster. */
export function endpoint(rg: RealtimeGateway): string {
  const e = rg.spec.exposure;
  if (e !== undefined) return `${e.tlsSecretName === undefined ? 'ws' : 'wss'}://${e.host}/`;
  return `ws://${names.service(rg)}.${rg.metadata.namespace}.svc:${port(rg.spec)}/`;
}
