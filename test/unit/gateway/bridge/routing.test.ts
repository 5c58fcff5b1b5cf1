import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodePayload, eventTypeFromSubject, route, routeMessage, type RoutingDecision } from '../../../../gateway/src/bridge/routing.ts';
import { EVENT_TYPES } from '../../../../gateway/src/protocol/event-types.ts';

const TS = '2024-01-15T10:30:00.000Z';

function delivered(decision: RoutingDecision) {
  assert.equal(decision.deliver, true, `expected delivery, got ${JSON.stringify(decision)}`);
  return decision as Extract<RoutingDecision, { deliver: true }>;
}

/**
 * Seed 000's event-type table, each row with a subject a backend publishes it on (from the seed's subject
 * families) and the priority and English text the table gives.
 */
const TABLE: readonly { subject: string; eventType: string; priority: string; message: string }[] = [
  { subject: 'sahool.fields.123.updated', eventType: 'field.updated', priority: 'medium', message: 'Field data updated' },
  { subject: 'sahool.fields.123.created', eventType: 'field.created', priority: 'medium', message: 'New field created' },
  { subject: 'sahool.fields.123.deleted', eventType: 'field.deleted', priority: 'medium', message: 'Field deleted' },
  { subject: 'sahool.weather.alert', eventType: 'weather.alert', priority: 'high', message: 'Important weather alert' },
  { subject: 'sahool.weather.updated', eventType: 'weather.updated', priority: 'low', message: 'Weather data updated' },
  { subject: 'sahool.satellite.ready', eventType: 'satellite.ready', priority: 'low', message: 'Satellite imagery ready' },
  { subject: 'sahool.satellite.processing', eventType: 'satellite.processing', priority: 'low', message: 'Processing satellite imagery' },
  { subject: 'sahool.satellite.failed', eventType: 'satellite.failed', priority: 'medium', message: 'Satellite processing failed' },
  { subject: 'sahool.ndvi.updated', eventType: 'ndvi.updated', priority: 'low', message: 'NDVI data updated' },
  { subject: 'sahool.ndvi.analysis.ready', eventType: 'ndvi.analysis.ready', priority: 'low', message: 'NDVI analysis completed' },
  { subject: 'sahool.inventory.low_stock', eventType: 'inventory.low_stock', priority: 'medium', message: 'Low stock alert' },
  { subject: 'sahool.inventory.out_of_stock', eventType: 'inventory.out_of_stock', priority: 'high', message: 'Out of stock' },
  { subject: 'sahool.inventory.updated', eventType: 'inventory.updated', priority: 'low', message: 'Stock updated' },
  { subject: 'sahool.crop.disease.detected', eventType: 'crop.disease.detected', priority: 'high', message: 'Disease detected' },
  { subject: 'sahool.crop.pest.detected', eventType: 'crop.pest.detected', priority: 'high', message: 'Pest detected' },
  { subject: 'sahool.crop.health.alert', eventType: 'crop.health.alert', priority: 'high', message: 'Health issue detected' },
  { subject: 'sahool.spray.window.optimal', eventType: 'spray.window.optimal', priority: 'medium', message: 'Optimal spray window' },
  { subject: 'sahool.spray.window.warning', eventType: 'spray.window.warning', priority: 'medium', message: 'Spray window warning' },
  { subject: 'sahool.spray.scheduled', eventType: 'spray.scheduled', priority: 'low', message: 'Spray operation scheduled' },
  { subject: 'sahool.chat.message', eventType: 'chat.message', priority: 'low', message: 'New message' },
  { subject: 'sahool.chat.typing', eventType: 'chat.typing', priority: 'low', message: 'User typing' },
  { subject: 'sahool.chat.read', eventType: 'chat.read', priority: 'low', message: 'Message read' },
  { subject: 'sahool.tasks.created', eventType: 'task.created', priority: 'low', message: 'Task created' },
  { subject: 'sahool.tasks.updated', eventType: 'task.updated', priority: 'low', message: 'Task updated' },
  { subject: 'sahool.tasks.x.completed', eventType: 'task.completed', priority: 'low', message: 'Task completed' },
  { subject: 'sahool.tasks.x.overdue', eventType: 'task.overdue', priority: 'medium', message: 'Task overdue' },
  { subject: 'sahool.iot.reading', eventType: 'iot.reading', priority: 'low', message: 'Sensor reading' },
  { subject: 'sahool.iot.alert', eventType: 'iot.alert', priority: 'high', message: 'Sensor alert' },
  { subject: 'sahool.iot.offline', eventType: 'iot.offline', priority: 'medium', message: 'Sensor offline' },
  { subject: 'sahool.system.notification', eventType: 'system.notification', priority: 'medium', message: 'System notification' },
  { subject: 'sahool.system.sync_required', eventType: 'sync_required', priority: 'low', message: 'Sync required' },
];

describe('bridge routing: the seed 000 event-type table', () => {
  it('covers every row of the table', () => {
    assert.deepEqual(TABLE.map((row) => row.eventType).sort(), Object.keys(EVENT_TYPES).sort());
  });

  for (const row of TABLE) {
    it(`${row.subject} -> ${row.eventType} (${row.priority})`, () => {
      assert.equal(eventTypeFromSubject(row.subject), row.eventType);
      const decision = delivered(route(row.subject, { tenant_id: 't1' }, { timestamp: TS }));
      assert.equal(decision.eventType, row.eventType);
      assert.equal(decision.envelope.event_type, row.eventType);
      assert.equal(decision.envelope.priority, row.priority);
      assert.equal(decision.envelope.message, row.message);
      assert.equal(decision.envelope.message_ar, EVENT_TYPES[row.eventType]!.messageAr);
    });
  }

  /** Subjects beyond the table's own: ids in between, unknown actions, the alerts family, custom prefixes. */
  const DERIVED: readonly (readonly [subject: string, eventType: string, why: string])[] = [
    ['sahool.crop.f1.disease.detected', 'crop.disease.detected', 'an id before the type'],
    ['sahool.satellite.job-7.ready', 'satellite.ready', 'an id before the type'],
    ['sahool.spray.f9.window.optimal', 'spray.window.optimal', 'an id before a two-token type'],
    ['sahool.iot.sensor-1.offline', 'iot.offline', 'an id before the type'],
    ['sahool.ndvi.f2.analysis.ready', 'ndvi.analysis.ready', 'an id before a two-token type'],
    ['sahool.chat.room-1.message', 'chat.message', 'an id before the type'],
    ['sahool.weather.riyadh.updated', 'weather.updated', 'a place before the type'],
    ['sahool.fields.123.renamed', 'field.renamed', 'not in the table: family prefix and last token'],
    ['sahool.tasks.x.archived', 'task.archived', 'not in the table: family prefix and last token'],
    ['sahool.alerts.weather.alert', 'weather.alert', 'an alert naming a known type'],
    ['sahool.alerts.crop.disease.detected', 'crop.disease.detected', 'an alert naming a known type'],
    ['sahool.alerts.frost', 'system.notification', 'an alert naming no known type'],
    ['fields.9.updated', 'field.updated', 'no sahool prefix'],
    ['sahool.billing.invoice.paid', 'billing.invoice.paid', 'an unknown family'],
    ['acme.billing.paid', 'acme.billing.paid', 'another prefix'],
  ];
  for (const [subject, eventType, why] of DERIVED) {
    it(`${subject} -> ${eventType} (${why})`, () => assert.equal(eventTypeFromSubject(subject), eventType));
  }

  it('delivers a type not in the table at the unknown-type defaults', () => {
    const decision = delivered(route('sahool.fields.123.renamed', { tenant_id: 't1' }));
    assert.equal(decision.envelope.priority, 'low');
    assert.equal(decision.envelope.message, 'Event received');
  });

  it('prefers payload.event_type and payload.priority', () => {
    const decision = delivered(route('sahool.fields.123.updated', { tenant_id: 't1', event_type: 'crop.pest.detected', priority: 'critical' }));
    assert.equal(decision.eventType, 'crop.pest.detected');
    assert.equal(decision.envelope.priority, 'critical');
    assert.equal(decision.envelope.message, 'Pest detected');
  });

  it('ignores a non-string event_type and an unknown priority', () => {
    const decision = delivered(route('sahool.weather.alert', { tenant_id: 't1', event_type: 42, priority: 'urgent' }));
    assert.equal(decision.eventType, 'weather.alert');
    assert.equal(decision.envelope.priority, 'high');
  });
});

describe('bridge routing: the envelope', () => {
  it('is seed 000 event structure with the payload as data and the subject', () => {
    const payload = { field_id: '123', tenant_id: 'tenant_456', name: 'North Field' };
    const decision = delivered(route('sahool.fields.123.updated', payload, { timestamp: TS }));
    assert.deepEqual(decision.envelope, {
      type: 'event',
      event_type: 'field.updated',
      priority: 'medium',
      message: 'Field data updated',
      message_ar: 'تم تحديث بيانات الحقل',
      data: payload,
      subject: 'sahool.fields.123.updated',
      timestamp: TS,
    });
    assert.equal(decision.tenantId, 'tenant_456');
    assert.deepEqual(decision.rooms, ['field:123']);
  });
});

describe('bridge routing: rooms', () => {
  const rooms = (subject: string, payload: Record<string, unknown>) => [...delivered(route(subject, { tenant_id: 't1', ...payload })).rooms].sort();

  it('maps each id field to its room', () => {
    assert.deepEqual(rooms('sahool.satellite.ready', { field_id: 'f1' }), ['field:f1']);
    assert.deepEqual(rooms('sahool.satellite.ready', { farm_id: 'farm-1' }), ['farm:farm-1']);
    assert.deepEqual(rooms('sahool.tasks.created', { user_id: 'u9' }), ['user:u9']);
    assert.deepEqual(rooms('sahool.chat.message', { room_id: '456' }), ['chat:456']);
    assert.deepEqual(rooms('sahool.chat.message', { chat_id: '457' }), ['chat:457']);
    assert.deepEqual(rooms('sahool.chat.message', { room_id: 'chat:458' }), ['chat:458']);
    assert.deepEqual(rooms('sahool.inventory.updated', { org_id: 'acme' }), ['org:acme']);
  });

  it('accepts integer ids', () => {
    assert.deepEqual(rooms('sahool.satellite.ready', { field_id: 123 }), ['field:123']);
  });

  it('sends to every room that applies', () => {
    assert.deepEqual(rooms('sahool.tasks.x.completed', { field_id: 'f1', farm_id: 'm1', user_id: 'u1', org_id: 'o1' }), ['farm:m1', 'field:f1', 'org:o1', 'user:u1']);
    assert.deepEqual(rooms('sahool.weather.alert', { farm_id: 'm1' }), ['farm:m1', 'weather']);
  });

  it('routes the weather and alerts families to their rooms', () => {
    assert.deepEqual(rooms('sahool.weather.updated', {}), ['weather']);
    assert.deepEqual(rooms('sahool.alerts.frost', {}), ['alerts']);
    assert.deepEqual(rooms('sahool.alerts.weather.alert', { field_id: 'f1' }), ['alerts', 'field:f1']);
  });

  it('takes the field id from sahool.fields.{id}.{action} when the payload has none', () => {
    assert.deepEqual(rooms('sahool.fields.123.updated', {}), ['field:123']);
    assert.deepEqual(rooms('sahool.fields.123.updated', { field_id: '123' }), ['field:123']);
    assert.deepEqual(rooms('sahool.fields.created', {}), ['tenant:t1']);
  });

  it('honours an explicit valid room, and ignores an invalid one', () => {
    assert.deepEqual(rooms('sahool.iot.reading', { room: 'global' }), ['global']);
    assert.deepEqual(rooms('sahool.iot.reading', { room: 'farm:m2', farm_id: 'm2' }), ['farm:m2']);
    assert.deepEqual(rooms('sahool.iot.reading', { room: 'nonsense' }), ['tenant:t1']);
    assert.deepEqual(rooms('sahool.iot.reading', { room: 'field:a/b' }), ['tenant:t1']);
  });

  it("never names another tenant's tenant room", () => {
    assert.deepEqual(rooms('sahool.iot.reading', { room: 'tenant:t2' }), ['tenant:t1']);
    assert.deepEqual(rooms('sahool.iot.reading', { room: 'tenant:t1' }), ['tenant:t1']);
  });

  it('skips ids that are not valid room ids', () => {
    assert.deepEqual(rooms('sahool.satellite.ready', { field_id: 'a b', farm_id: '', user_id: 'x/y', org_id: { id: 1 }, chat_id: 1.5 }), ['tenant:t1']);
  });

  it('sends a message with only a tenant to the tenant room', () => {
    assert.deepEqual(rooms('sahool.inventory.out_of_stock', {}), ['tenant:t1']);
  });
});

describe('bridge routing: drops', () => {
  it('drops a payload without a tenant (no_tenant)', () => {
    assert.deepEqual(route('sahool.fields.123.updated', { field_id: '123' }), { deliver: false, reason: 'no_tenant' });
    assert.deepEqual(route('sahool.fields.123.updated', { tenant_id: null }), { deliver: false, reason: 'no_tenant' });
    assert.deepEqual(route('sahool.fields.123.updated', { tenant_id: '' }), { deliver: false, reason: 'no_tenant' });
  });

  it('drops a tenant id that could escape its scope (invalid_tenant)', () => {
    for (const tenant_id of ['a/b', 'a b', true, { id: 't1' }, 'x'.repeat(200)]) {
      assert.deepEqual(route('sahool.weather.alert', { tenant_id }), { deliver: false, reason: 'invalid_tenant' }, JSON.stringify(tenant_id));
    }
  });

  it('drops what is not a JSON object (invalid_payload)', () => {
    for (const body of ['not json', '[1,2]', '"text"', '42', 'null', '', '{"tenant_id":']) {
      assert.deepEqual(routeMessage('sahool.weather.alert', body), { deliver: false, reason: 'invalid_payload' }, body);
    }
    assert.deepEqual(routeMessage('sahool.weather.alert', new Uint8Array([0xff, 0xfe, 0x7b, 0x7d])), { deliver: false, reason: 'invalid_payload' });
    assert.deepEqual(route('sahool.weather.alert', [{ tenant_id: 't1' }]), { deliver: false, reason: 'invalid_payload' });
    assert.deepEqual(route('sahool.weather.alert', null), { deliver: false, reason: 'invalid_payload' });
  });

  it('decodes UTF-8 bytes', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ tenant_id: 't1', note: 'حقل' }));
    assert.deepEqual(decodePayload(bytes), { tenant_id: 't1', note: 'حقل' });
    const decision = delivered(routeMessage('sahool.weather.alert', bytes));
    assert.equal(decision.tenantId, 't1');
  });
});
