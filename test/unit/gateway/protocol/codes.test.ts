import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_REASONS, CloseCode, ErrorCode } from '../../../../gateway/src/protocol/codes.ts';

describe('CloseCode and CLOSE_REASONS', () => {
  it('has a reason for every close code and none for anything else', () => {
    assert.deepEqual(
      Object.keys(CLOSE_REASONS).map(Number).sort(),
      Object.values(CloseCode).map(Number).sort(),
    );
  });

  for (const [name, code] of Object.entries(CloseCode)) {
    it(`${name} (${code}) has a non-empty reason that fits a close frame`, () => {
      const reason = CLOSE_REASONS[code];
      assert.equal(typeof reason, 'string');
      assert.ok(reason.length > 0);
      // A close frame carries at most 123 bytes of reason.
      assert.ok(Buffer.byteLength(reason) <= 123);
    });
  }

  it('uses seed 000\'s codes and reasons for authentication and tenant mismatch', () => {
    assert.equal(CloseCode.authenticationRequired, 4001);
    assert.equal(CloseCode.tenantMismatch, 4003);
    assert.equal(CLOSE_REASONS[4001], 'Authentication Required');
    assert.equal(CLOSE_REASONS[4003], 'Tenant Mismatch');
  });

  it('uses application codes (4000-4999) or registered standard codes only', () => {
    for (const code of Object.values(CloseCode)) {
      assert.ok((code >= 4000 && code <= 4999) || code === 1009 || code === 1012, `unexpected close code ${code}`);
    }
  });

  it('gives every close code a different value and a different reason', () => {
    const codes = Object.values(CloseCode);
    assert.equal(new Set(codes).size, codes.length);
    const reasons = Object.values(CLOSE_REASONS);
    assert.equal(new Set(reasons).size, reasons.length);
  });
});

describe('ErrorCode', () => {
  it('has unique snake_case values', () => {
    const values = Object.values(ErrorCode);
    assert.equal(new Set(values).size, values.length);
    for (const value of values) assert.match(value, /^[a-z]+(_[a-z]+)*$/);
  });
});
