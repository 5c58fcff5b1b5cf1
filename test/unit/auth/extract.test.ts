import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { extractToken } from '../../../gateway/src/auth/extract.ts';

describe('extractToken', () => {
  it('prefers the Authorization header over auth.token and the query', () => {
    const found = extractToken({
      headers: { authorization: 'Bearer from-header' },
      handshakeAuth: { token: 'from-auth' },
      url: '/socket.io/?EIO=4&token=from-query',
    });
    assert.deepEqual(found, { token: 'from-header', source: 'header', deprecated: false });
  });

  it('uses socket.io handshake auth.token when there is no header', () => {
    const found = extractToken({ headers: {}, handshakeAuth: { token: 'from-auth' }, url: '/?token=from-query' });
    assert.deepEqual(found, { token: 'from-auth', source: 'auth', deprecated: false });
  });

  it('accepts "Bearer <t>" inside auth.token', () => {
    assert.equal(extractToken({ headers: {}, handshakeAuth: { token: 'Bearer abc.def.ghi' } })?.token, 'abc.def.ghi');
  });

  it('falls back to ?token= and marks it deprecated', () => {
    const found = extractToken({ headers: {}, url: '/ws?room=1&token=abc.def.ghi' });
    assert.deepEqual(found, { token: 'abc.def.ghi', source: 'query', deprecated: true });
  });

  it('decodes a percent-encoded query token', () => {
    assert.equal(extractToken({ headers: {}, url: '/ws?token=a%2Eb%2Ec' })?.token, 'a.b.c');
  });

  it('matches the scheme and header name case-insensitively', () => {
    assert.equal(extractToken({ headers: { authorization: 'bearer t1' } })?.token, 't1');
    assert.equal(extractToken({ headers: { Authorization: 'BEARER t2' } })?.token, 't2');
  });

  it('takes the first value of a repeated header', () => {
    assert.equal(extractToken({ headers: { authorization: ['Bearer first', 'Bearer second'] } })?.token, 'first');
  });

  it('skips a non-bearer or empty Authorization header and uses the next source', () => {
    const basic = extractToken({ headers: { authorization: 'Basic dXNlcjpwYXNz' }, handshakeAuth: { token: 'fallback' } });
    assert.deepEqual(basic, { token: 'fallback', source: 'auth', deprecated: false });
    assert.equal(extractToken({ headers: { authorization: 'Bearer ' }, url: '/?token=q' })?.source, 'query');
    assert.equal(extractToken({ headers: { authorization: 'Bearer two words' } }), undefined);
  });

  it('ignores auth values that are not a non-empty string token', () => {
    for (const handshakeAuth of [undefined, null, 'token', 42, {}, { token: 7 }, { token: '   ' }, { token: ['a'] }]) {
      assert.equal(extractToken({ headers: {}, handshakeAuth }), undefined, `auth ${JSON.stringify(handshakeAuth)}`);
    }
  });

  it('returns undefined when nothing is presented, or the query is empty or unparseable', () => {
    assert.equal(extractToken({ headers: {} }), undefined);
    assert.equal(extractToken({ headers: {}, url: '/ws?token=' }), undefined);
    assert.equal(extractToken({ headers: {}, url: '/ws?other=1' }), undefined);
    assert.equal(extractToken({ headers: {}, url: 'http://[bad' }), undefined);
  });
});
