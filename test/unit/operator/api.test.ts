import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_VERSION, GROUP, KIND, PLURAL, SPEC_FIELDS, VERSION } from '../../../operator/src/api/types.ts';
import { fullSpec, loadCrd, specSchema, validate, type Schema } from './fixtures.ts';

test('the CRD names the group, version, kind, plural and short name the operator uses', () => {
  const crd = loadCrd();
  assert.equal(crd.metadata.name, `${PLURAL}.${GROUP}`);
  assert.equal(crd.spec.group, GROUP);
  assert.equal(crd.spec.names.kind, KIND);
  assert.equal(crd.spec.names.plural, PLURAL);
  assert.deepEqual(crd.spec.names.shortNames, ['rtgw']);
  assert.equal(crd.spec.scope, 'Namespaced');
  assert.equal(API_VERSION, `${GROUP}/${VERSION}`);
  const v = crd.spec.versions.find((x: { name: string }) => x.name === VERSION);
  assert.ok(v?.served && v.storage);
  assert.deepEqual(v.subresources, {
    status: {},
    scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
  });
  assert.deepEqual(v.additionalPrinterColumns.map((c: { name: string }) => c.name), ['Ready', 'Replicas', 'Endpoint', 'Age']);
});

function schemaAt(root: Schema, dotted: string): Schema | undefined {
  let s: Schema | undefined = root;
  for (const part of dotted.split('.')) s = s?.properties?.[part];
  return s;
}

test('every spec field in the TypeScript types exists in the CRD schema', () => {
  const root = specSchema();
  const missing = SPEC_FIELDS.filter((f) => schemaAt(root, f) === undefined);
  assert.deepEqual(missing, []);
});

test('every leaf of the CRD spec schema is a field of the TypeScript types', () => {
  const leaves: string[] = [];
  const walk = (s: Schema, prefix: string): void => {
    const opaque = s['x-kubernetes-preserve-unknown-fields'] === true || s.additionalProperties !== undefined;
    if (s.type === 'object' && s.properties !== undefined && !opaque) {
      for (const [k, sub] of Object.entries(s.properties)) walk(sub, prefix === '' ? k : `${prefix}.${k}`);
    } else leaves.push(prefix);
  };
  walk(specSchema(), '');
  const known = new Set<string>(SPEC_FIELDS);
  assert.deepEqual(leaves.filter((l) => !known.has(l)), []);
});

test('a spec setting every field validates against the schema', () => {
  assert.deepEqual(validate(specSchema(), fullSpec()), []);
});

test('the schema check notices what the API server would refuse or prune', () => {
  const bad = { ...fullSpec(), replicas: -1, logLevel: 'loud', surprise: true } as unknown;
  const errs = validate(specSchema(), bad);
  assert.ok(errs.some((e) => e.startsWith('spec.replicas')));
  assert.ok(errs.some((e) => e.startsWith('spec.logLevel')));
  assert.ok(errs.some((e) => e.startsWith('spec.surprise')));
});

test('schema defaults match the ones the builders fall back to', async () => {
  const { DEFAULTS } = await import('../../../operator/src/desired/defaults.ts');
  const s = specSchema();
  assert.equal(schemaAt(s, 'replicas')?.default, DEFAULTS.replicas);
  assert.equal(schemaAt(s, 'port')?.default, DEFAULTS.port);
  assert.equal(schemaAt(s, 'logLevel')?.default, DEFAULTS.logLevel);
  assert.equal(schemaAt(s, 'imagePullPolicy')?.default, DEFAULTS.imagePullPolicy);
  assert.equal(schemaAt(s, 'drainSeconds')?.default, DEFAULTS.drainSeconds);
  assert.equal(schemaAt(s, 'redis.streamName')?.default, DEFAULTS.streamName);
  assert.deepEqual(schemaAt(s, 'auth.algorithms')?.default, DEFAULTS.algorithms);
  assert.equal(schemaAt(s, 'auth.tenantClaim')?.default, DEFAULTS.tenantClaim);
  assert.equal(schemaAt(s, 'exposure.sticky')?.default, DEFAULTS.sticky);
  assert.equal(schemaAt(s, 'exposure.websocketTimeoutSeconds')?.default, DEFAULTS.websocketTimeoutSeconds);
  assert.equal(schemaAt(s, 'exposure.cookieName')?.default, DEFAULTS.cookieName);
  assert.equal(schemaAt(s, 'metrics.interval')?.default, DEFAULTS.metricsInterval);
});
