import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVENT_TYPES,
  PRIORITIES,
  UNKNOWN_EVENT_TYPE,
  describeEvent,
  isPriority,
} from '../../../../gateway/src/protocol/event-types.ts';

/** Seed 000, "Event Types": every row as the seed writes it (event type, priority, description). */
const SEED_000_EVENT_TYPES: readonly (readonly [string, string, string])[] = [
  ['field.updated', 'Medium', 'Field data updated'],
  ['field.created', 'Medium', 'New field created'],
  ['field.deleted', 'Medium', 'Field deleted'],
  ['weather.alert', 'High', 'Important weather alert'],
  ['weather.updated', 'Low', 'Weather data updated'],
  ['satellite.ready', 'Low', 'Satellite imagery ready'],
  ['satellite.processing', 'Low', 'Processing satellite imagery'],
  ['satellite.failed', 'Medium', 'Satellite processing failed'],
  ['ndvi.updated', 'Low', 'NDVI data updated'],
  ['ndvi.analysis.ready', 'Low', 'NDVI analysis completed'],
  ['inventory.low_stock', 'Medium', 'Low stock alert'],
  ['inventory.out_of_stock', 'High', 'Out of stock'],
  ['inventory.updated', 'Low', 'Stock updated'],
  ['crop.disease.detected', 'High', 'Disease detected'],
  ['crop.pest.detected', 'High', 'Pest detected'],
  ['crop.health.alert', 'High', 'Health issue detected'],
  ['spray.window.optimal', 'Medium', 'Optimal spray window'],
  ['spray.window.warning', 'Medium', 'Spray window warning'],
  ['spray.scheduled', 'Low', 'Spray operation scheduled'],
  ['chat.message', 'Low', 'New message'],
  ['chat.typing', 'Low', 'User typing'],
  ['chat.read', 'Low', 'Message read'],
  ['task.created', 'Low', 'Task created'],
  ['task.updated', 'Low', 'Task updated'],
  ['task.completed', 'Low', 'Task completed'],
  ['task.overdue', 'Medium', 'Task overdue'],
  ['iot.reading', 'Low', 'Sensor reading'],
  ['iot.alert', 'High', 'Sensor alert'],
  ['iot.offline', 'Medium', 'Sensor offline'],
  ['system.notification', 'Medium', 'System notification'],
  ['sync_required', 'Low', 'Sync required'],
];

const ARABIC = /[\u0600-\u06FF]/u;

describe('EVENT_TYPES against seed 000', () => {
  it('has exactly the seed\'s event types, no more and no fewer', () => {
    assert.deepEqual(Object.keys(EVENT_TYPES).sort(), SEED_000_EVENT_TYPES.map(([type]) => type).sort());
  });

  for (const [type, priority, description] of SEED_000_EVENT_TYPES) {
    it(`${type}: ${priority}, "${description}", with an Arabic message`, () => {
      const info = describeEvent(type);
      assert.equal(info, EVENT_TYPES[type]);
      assert.equal(info.priority, priority.toLowerCase());
      assert.equal(info.message, description);
      assert.match(info.messageAr, ARABIC);
      assert.equal(info.messageAr, info.messageAr.trim());
    });
  }

  it('gives no two event types the same Arabic text', () => {
    const texts = Object.values(EVENT_TYPES).map((info) => info.messageAr);
    assert.equal(new Set(texts).size, texts.length);
  });

  it('uses the envelope\'s Arabic text of seed 000 for field.updated', () => {
    assert.equal(describeEvent('field.updated').messageAr, 'تم تحديث بيانات الحقل');
  });
});

describe('describeEvent for event types outside the table', () => {
  for (const type of ['field.renamed', 'FIELD.UPDATED', 'field', '', 'sahool.fields.123.updated', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    it(`describes ${JSON.stringify(type)} as an unknown, low-priority event`, () => {
      assert.equal(describeEvent(type), UNKNOWN_EVENT_TYPE);
    });
  }

  it('has a low priority and texts in both languages for unknown events', () => {
    assert.equal(UNKNOWN_EVENT_TYPE.priority, 'low');
    assert.ok(UNKNOWN_EVENT_TYPE.message.length > 0);
    assert.match(UNKNOWN_EVENT_TYPE.messageAr, ARABIC);
  });
});

describe('isPriority', () => {
  it('lists the four priorities from lowest to highest', () => {
    assert.deepEqual(PRIORITIES, ['low', 'medium', 'high', 'critical']);
  });
  for (const value of PRIORITIES) {
    it(`accepts ${value}`, () => assert.equal(isPriority(value), true));
  }
  for (const value of ['Low', 'HIGH', 'urgent', '', ' low', 0, 1, null, undefined, ['low'], { priority: 'low' }]) {
    it(`refuses ${JSON.stringify(value) ?? 'undefined'}`, () => assert.equal(isPriority(value), false));
  }
});
