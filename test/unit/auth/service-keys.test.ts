import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticateService, parseServiceKeys } from '../../../gateway/src/auth/service-keys.ts';

const KEY_A = 'aaaaaaaaaaaaaaaa-billing';
const KEY_B = 'bbbbbbbbbbbbbbbb-notify:with:colons';

describe('parseServiceKeys', () => {
  it('parses name:key pairs, keeping colons inside keys', () => {
    const keys = parseServiceKeys(`billing:${KEY_A}, notify:${KEY_B}`);
    assert.deepEqual(keys.names, ['billing', 'notify']);
    assert.equal(keys.check(KEY_A), 'billing');
    assert.equal(keys.check(KEY_B), 'notify');
  });

  it('returns undefined for unknown, empty, prefix and near-miss keys', () => {
    const keys = parseServiceKeys(`billing:${KEY_A}`);
    for (const presented of ['', 'nope', KEY_A.slice(0, -1), `${KEY_A}x`, KEY_A.toUpperCase(), 'billing']) {
      assert.equal(keys.check(presented), undefined, presented);
    }
  });

  it('tells keys apart by their length as well as their bytes, up to the longest key allowed', () => {
    const longest = `${'k'.repeat(1022)}é`; // 1024 bytes
    const keys = parseServiceKeys(`billing:${KEY_A},long:${longest}`);
    assert.equal(keys.check(longest), 'long');
    assert.equal(keys.check('k'.repeat(1022)), undefined);
    assert.equal(keys.check(`${longest}x`), undefined);
    assert.equal(keys.check(`${longest}${'x'.repeat(1000)}`), undefined);
    // A padded block is all zeros past the key: a presented key with a NUL at the end is another key.
    assert.equal(keys.check(`${KEY_A}\0`), undefined);
    assert.equal(keys.check(KEY_A), 'billing');
    assert.throws(() => parseServiceKeys(`long:${longest}x`), /the key for "long" must be at most 1024 bytes/);
  });

  it('compares as blocks of the longest key: a longer presented key is refused, and leaves nothing behind', () => {
    const keys = parseServiceKeys(`billing:${KEY_A},notify:${KEY_B}`);
    // Longer than KEY_B (the longest) by one byte, then by many: neither can match, neither may spoil the next check.
    assert.equal(keys.check(`${KEY_B}x`), undefined);
    assert.equal(keys.check(KEY_A), 'billing');
    assert.equal(keys.check(`${KEY_B}${'x'.repeat(500)}`), undefined);
    assert.equal(keys.check(KEY_A), 'billing');
    assert.equal(keys.check(KEY_B), 'notify');
    // A valid longer key, then a shorter one: nothing of the first is left to spoil the second.
    assert.equal(keys.check(KEY_A), 'billing');
    // KEY_A with KEY_B's tail: the bytes past KEY_A's length are compared too.
    assert.equal(keys.check(`${KEY_A}${KEY_B.slice(KEY_A.length)}`), undefined);
  });

  it('accepts an empty value and a trailing comma', () => {
    assert.deepEqual(parseServiceKeys('').names, []);
    assert.equal(parseServiceKeys('').check(KEY_A), undefined);
    assert.deepEqual(parseServiceKeys(`billing:${KEY_A},`).names, ['billing']);
  });

  it('rejects malformed entries with messages naming the variable, never the key', () => {
    const cases: [string, RegExp][] = [
      [`billing${KEY_A}`, /SERVICE_API_KEYS entry 1: expected name:key/],
      [`:${KEY_A}`, /SERVICE_API_KEYS entry 1: the service name is empty/],
      [`billing:short`, /SERVICE_API_KEYS entry 1: the key for "billing" must be at least 16 characters/],
      [`billing:${KEY_A},billing:${KEY_B}`, /SERVICE_API_KEYS entry 2: duplicate service name "billing"/],
      [`billing:${KEY_A},notify:${KEY_A}`, /entry 2: "notify" uses the same key as "billing"/],
      [`bad name:${KEY_A}`, /service name "bad name" may only contain/],
    ];
    for (const [value, expected] of cases) {
      assert.throws(() => parseServiceKeys(value), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(error.message, expected);
        assert.ok(!error.message.includes(KEY_A) && !error.message.includes('short'), 'message leaks the key');
        return true;
      });
    }
  });

  it('uses the given variable name in errors', () => {
    assert.throws(() => parseServiceKeys('x', 'INTERNAL_KEYS'), /^Error: INTERNAL_KEYS entry 1/);
  });
});

describe('authenticateService', () => {
  const keys = parseServiceKeys(`billing:${KEY_A},notify:${KEY_B}`);

  it('accepts a key in X-API-Key or as a bearer credential', () => {
    assert.deepEqual(authenticateService(keys, { 'x-api-key': KEY_A }), { status: 'ok', service: 'billing' });
    assert.deepEqual(authenticateService(keys, { authorization: `Bearer ${KEY_B}` }), { status: 'ok', service: 'notify' });
    assert.deepEqual(authenticateService(keys, { 'X-API-Key': KEY_B }), { status: 'ok', service: 'notify' });
  });

  it('reports missing when neither header carries a credential', () => {
    assert.deepEqual(authenticateService(keys, {}), { status: 'missing' });
    assert.deepEqual(authenticateService(keys, { 'x-api-key': '  ' }), { status: 'missing' });
    assert.deepEqual(authenticateService(keys, { authorization: 'Basic dXNlcjpwYXNz' }), { status: 'missing' });
  });

  it('reports invalid for a wrong key', () => {
    assert.deepEqual(authenticateService(keys, { 'x-api-key': 'wrong-key-wrong-key' }), { status: 'invalid' });
    assert.deepEqual(authenticateService(keys, { authorization: 'Bearer eyJ.a.jwt' }), { status: 'invalid' });
  });

  it('accepts when either presented credential is valid', () => {
    const headers = { authorization: 'Bearer some.user.jwt', 'x-api-key': KEY_A };
    assert.deepEqual(authenticateService(keys, headers), { status: 'ok', service: 'billing' });
  });

  it('never authenticates against an empty key set', () => {
    assert.deepEqual(authenticateService(parseServiceKeys(''), { 'x-api-key': KEY_A }), { status: 'invalid' });
  });
});
