/**
 * The reference docs cannot drift: crd.md and metrics.md are what scripts/gen-reference.ts renders now, and the
 * hand-written configuration.md and protocol.md name exactly what the code reads and sends.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONFIG_SOURCE_FILE,
  CONFIGURATION_DOC,
  CRD_DOC,
  CRD_FILE,
  METRICS_DOC,
  PROTOCOL_DOC,
  configurationDrift,
  documentedEnvVars,
  gatewayEnvVars,
  markdownTables,
  metricsInventory,
  protocolDrift,
  readRepoFile,
  renderCrdReference,
  renderMetricsReference,
  undescribedFields,
} from '../../../scripts/gen-reference.ts';

const STALE = 'is stale: run node scripts/gen-reference.ts';

describe('generated references', () => {
  it(`${CRD_DOC} is rendered from the CRD as it is`, () => {
    assert.ok(readRepoFile(CRD_DOC) === renderCrdReference(readRepoFile(CRD_FILE)), `${CRD_DOC} ${STALE}`);
  });

  it(`${METRICS_DOC} is rendered from the registries as they are`, () => {
    assert.ok(readRepoFile(METRICS_DOC) === renderMetricsReference(metricsInventory()), `${METRICS_DOC} ${STALE}`);
  });

  it('every CRD field has a description, so kubectl explain and crd.md say what it does', () => {
    assert.deepEqual(undescribedFields(readRepoFile(CRD_FILE)), []);
  });

  it('crd.md lists every field path, every CEL message and every printer column', () => {
    const doc = renderCrdReference(readRepoFile(CRD_FILE));
    for (const path of ['spec.redis.urlSecretRef.name', 'spec.pod.tolerations[].effect', 'status.conditions[].lastTransitionTime']) {
      assert.ok(doc.includes(`| \`${path}\` |`), path);
    }
    assert.ok(doc.includes('"set either redis.streamMaxLength or redis.recoveryWindowSeconds, not both"'));
    assert.ok(doc.includes('| Endpoint | string | `.status.endpoint` |'));
    // A pipe inside a pattern must not split the table cell.
    assert.ok(doc.includes('pattern `^[0-9]+(ms\\|s\\|m\\|h)$`'));
  });

  it('metrics.md has every gateway metric (NATS bridge and Redis-only ones too) and every operator metric', () => {
    const inv = metricsInventory();
    const names = new Set(inv.gateway.map((m) => m.name));
    for (const n of ['rtgw_connections', 'rtgw_redis_connected', 'rtgw_nats_dropped_total', 'process_cpu_seconds_total']) assert.ok(names.has(n), n);
    assert.equal(inv.gatewayConditional.get('rtgw_redis_connected'), '`REDIS_URL`');
    assert.ok(inv.operator.some((m) => m.name === 'rtgw_operator_reconciles_total' && m.labels.join() === 'result'));
    const doc = renderMetricsReference(inv);
    for (const m of [...inv.gateway, ...inv.operator].filter((x) => !/^(rtgw_operator_)?(process|nodejs)_/.test(x.name))) {
      assert.ok(doc.includes(`| \`${m.name}\` | ${m.type} |`), m.name);
    }
  });
});

describe('hand-written references', () => {
  it(`${CONFIGURATION_DOC} names every variable ${CONFIG_SOURCE_FILE} reads, and no other`, () => {
    assert.deepEqual(configurationDrift(readRepoFile(CONFIG_SOURCE_FILE), readRepoFile(CONFIGURATION_DOC)), { missing: [], unknown: [] });
  });

  it('finds the variables in config.ts by reading its source and by running it', () => {
    const { fromSource, fromRun } = gatewayEnvVars(readRepoFile(CONFIG_SOURCE_FILE));
    // The source pattern must see every read the run sees; a new way of reading the environment fails here.
    assert.deepEqual(fromRun.filter((v) => !fromSource.includes(v)), []);
    for (const v of ['PORT', 'JWT_ALGORITHM', 'NATS_JETSTREAM_DURABLE', 'NATS_CREDS_FILE', 'REDIS_STREAM_MAXLEN']) assert.ok(fromSource.includes(v), v);
  });

  it('notices a variable the document leaves out or one it invents', () => {
    const doc = '| Variable | Default | Meaning |\n| --- | --- | --- |\n| `PORT`, `NOT_READ` | | |\n';
    assert.deepEqual(documentedEnvVars(doc), ['NOT_READ', 'PORT']);
    const d = configurationDrift("r.string('PORT'); r.integer('HOST', 1, 0, 2)", doc);
    assert.deepEqual(d.unknown, ['NOT_READ']);
    assert.ok(d.missing.includes('HOST'));
  });

  it(`${PROTOCOL_DOC} lists every close code with its reason and every error code, and no other`, () => {
    const d = protocolDrift(readRepoFile(PROTOCOL_DOC));
    assert.deepEqual(d.closeCodes, { missing: [], unknown: [] });
    assert.deepEqual(d.errorCodes, { missing: [], unknown: [] });
  });

  it('notices a close code whose reason differs from the one on the wire', () => {
    const doc = readRepoFile(PROTOCOL_DOC).replace('| 4008 | Rate Limit Exceeded |', '| 4008 | Rate Limited |');
    assert.deepEqual(protocolDrift(doc).closeCodes, { missing: ['4008 Rate Limit Exceeded'], unknown: ['4008 Rate Limited'] });
  });

  it('reads markdown tables with escaped pipes', () => {
    assert.deepEqual(markdownTables('x\n| a | b |\n| --- | :-: |\n| `p\\|q` | 2 |\n\n'), [{ header: ['a', 'b'], rows: [['`p|q`', '2']] }]);
  });
});
