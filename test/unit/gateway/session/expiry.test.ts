import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExpiryWatch } from '../../../../gateway/src/session/expiry.ts';

describe('ExpiryWatch', () => {
  it('warns once inside the warning window, then expires once at the expiry time', () => {
    const watch = new ExpiryWatch<string>(30, 0);
    watch.set('a', 100); // expires at 100 s
    assert.deepEqual(watch.due(69_999), { warn: [], expire: [] });
    assert.deepEqual(watch.due(70_000), { warn: ['a'], expire: [] });
    assert.deepEqual(watch.due(80_000), { warn: [], expire: [] }, 'warned only once');
    assert.deepEqual(watch.due(100_000), { warn: [], expire: ['a'] });
    assert.deepEqual(watch.due(200_000), { warn: [], expire: [] }, 'expired only once');
    assert.equal(watch.size, 0);
  });

  it('expires at once a key whose expiry is past, without a warning', () => {
    const watch = new ExpiryWatch<string>(30, 0);
    watch.set('late', 10);
    assert.deepEqual(watch.due(50_000), { warn: [], expire: ['late'] });
  });

  it('a fresh expiry replaces the old one and may warn again; undefined and delete stop watching', () => {
    const watch = new ExpiryWatch<string>(30, 0);
    watch.set('a', 100);
    watch.due(75_000);
    watch.set('a', 400);
    assert.deepEqual(watch.due(101_000), { warn: [], expire: [] });
    assert.deepEqual(watch.due(371_000), { warn: ['a'], expire: [] });
    watch.set('a', undefined);
    watch.set('b', 1);
    watch.delete('b');
    assert.deepEqual(watch.due(1_000_000), { warn: [], expire: [] });
  });

  it('move hands a key\'s expiry and warning state to another key; moving an unwatched key does nothing', () => {
    const watch = new ExpiryWatch<string>(30, 0);
    watch.set('old', 100);
    assert.deepEqual(watch.due(75_000), { warn: ['old'], expire: [] });
    watch.move('old', 'new');
    watch.move('absent', 'other');
    assert.equal(watch.size, 1);
    // Warned already: not again under the new key; expires under it.
    assert.deepEqual(watch.due(80_000), { warn: [], expire: [] });
    assert.deepEqual(watch.due(100_000), { warn: [], expire: ['new'] });
  });

  it('a fractional expiry is rounded up; each key warns and expires on its own time', () => {
    const watch = new ExpiryWatch<string>(30, 0);
    watch.set('first', 1000);
    watch.set('earlier', 500);
    watch.set('fraction', 600.2);
    assert.deepEqual(watch.due(469_999), { warn: [], expire: [] });
    assert.deepEqual(watch.due(470_000), { warn: ['earlier'], expire: [] });
    assert.deepEqual(watch.due(500_000), { warn: [], expire: ['earlier'] });
    assert.deepEqual(watch.due(571_000), { warn: ['fraction'], expire: [] });
    assert.deepEqual(watch.due(600_500), { warn: [], expire: [] }, 'not before the second it was rounded up to');
    assert.deepEqual(watch.due(601_000), { warn: [], expire: ['fraction'] });
    assert.deepEqual(watch.due(970_000), { warn: ['first'], expire: [] });
    assert.equal(watch.size, 1);
  });

  it('far-off or malformed expiries: each kept within 2^28 s (about eight years) of the start, NaN due at once', () => {
    const nowMs = 1_800_000_000_000;
    const watch = new ExpiryWatch<string>(30, nowMs);
    watch.set('nanoseconds', 1.8e18);
    watch.set('huge', 1e300);
    watch.set('infinite', Infinity);
    watch.set('malformed', NaN);
    watch.set('normal', 1_800_000_100);
    assert.deepEqual(watch.due(nowMs), { warn: [], expire: ['malformed'] }, 'NaN is taken as now');
    assert.deepEqual(watch.due(nowMs + 69_999), { warn: [], expire: [] });
    assert.deepEqual(watch.due(nowMs + 70_000), { warn: ['normal'], expire: [] });
    assert.deepEqual(watch.due(nowMs + 71_000), { warn: [], expire: [] }, 'warned once');
    assert.deepEqual(watch.due(nowMs + 100_000), { warn: [], expire: ['normal'] });
    assert.equal(watch.size, 3, 'the far-off ones are still watched');
    watch.set('past', -1e300);
    assert.deepEqual(watch.due(nowMs + 101_000).expire, ['past']);
    // Clamped, not dropped: the far-off ones fall due at the limit.
    const limitMs = nowMs + 2 ** 28 * 1000;
    assert.deepEqual(watch.due(limitMs - 31_000), { warn: [], expire: [] });
    assert.deepEqual(watch.due(limitMs - 30_000).warn.sort(), ['huge', 'infinite', 'nanoseconds']);
    assert.deepEqual(watch.due(limitMs).expire.sort(), ['huge', 'infinite', 'nanoseconds']);
  });
});
