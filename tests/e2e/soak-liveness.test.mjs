// The 1-minute version of `npm run soak -- liveness` (scripts/soak/liveness.mjs; issue 11:
// "0 false down in a 10-minute soak with tabs hidden and throttled, a 1-minute version in
// npm test"): four tabs, two of them hidden and throttled for a minute, the other two visible
// and idle. Every tab stays alive, so any `down`/`left` report is a false down; every tab
// must still list every other at the end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../../scripts/soak/liveness.mjs';

test('one minute with two of four tabs hidden and throttled: no false down', async () => {
  const r = await run(['--minutes', '1', '--tabs', '4', '--hidden', '2'], () => {});
  console.log(JSON.stringify({ soak: 'liveness', ...r }));
  assert.deepEqual(r.false_down_events, [], 'down/left reported about a live tab');
  assert.equal(r.false_downs, 0);
  assert.equal(r.peers_missing, 0, 'every tab still lists every other');
  assert.deepEqual(r.errors, [], 'error events or page errors');
});
