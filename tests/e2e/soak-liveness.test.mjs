// The 1-minute version of `npm run soak -- liveness` (scripts/soak/liveness.mjs; issue 11:
// "0 false down in a 10-minute soak with tabs hidden and throttled, a 1-minute version in
// npm test"): four tabs (a WebRTC mesh), two of them hidden and, after 2 s of running freely
// (`hideAndThrottle`'s grace: the dozing hint rides on their next packets), throttled for a
// minute (JavaScript paused 5 s of every 5.4 s, far harsher than Chrome's 1 s timer
// alignment), the other two visible and idle. Every tab stays alive, so any `down`/`left`
// report is a false down; every tab must still list every other at the end. The same run
// without hiding the tabs (no dozing hint:
// `npm run soak -- liveness --minutes 1 --pause-ms 5000 --no-hide`) gave 48 false downs, so
// this test fails if the dozing hint stops working (so does a build whose members ignore the
// hint: 60 false downs, session 47); with the 600 ms pauses of the liveness e2e not even a
// suspicion occurs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../../scripts/soak/liveness.mjs';

test('one minute with two of four tabs hidden and throttled: no false down', async () => {
  const r = await run(['--minutes', '1', '--tabs', '4', '--hidden', '2', '--pause-ms', '5000'], () => {});
  console.log(JSON.stringify({ soak: 'liveness', ...r }));
  assert.deepEqual(r.false_down_events, [], 'down/left reported about a live tab');
  assert.equal(r.false_downs, 0);
  assert.equal(r.peers_missing, 0, 'every tab still lists every other');
  assert.deepEqual(r.errors, [], 'error events or page errors');
});
