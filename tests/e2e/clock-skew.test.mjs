// A tab whose clock is 5 minutes ahead, in real Chromium through the real bootstrap/sbd server
// (`kitsune2-bootstrap-srv` refuses an agent info created more than 3 min from its own time:
// `InvalidCreatedAt`). The skewed tab must still join, get one `error` event of kind
// `"bootstrap"` that names the device's clock as the cause (the server's text alone says only
// `InvalidCreatedAt`), and sync both ways with a tab whose clock is right: it finds that tab on
// the bootstrap server and connects to it, which is how the other tab learns of it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, pollPage, startDevnetAndBrowser } from './harness.mjs';

const SKEW_MS = 5 * 60_000;

/** Moves this page's clock `offsetMs` ahead: `Date.now()` and `performance.timeOrigin`, which
 * fennec's clock reads (`src/browser/clock.rs`). */
function skewClock(offsetMs) {
  if (!offsetMs) return;
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + offsetMs;
  const origin = performance.timeOrigin + offsetMs;
  Object.defineProperty(performance, 'timeOrigin', { get: () => origin });
}

function pageHelpers() {
  const t = { errors: [] };
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    t.peer = await window.fennec.Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory' });
    t.space = await t.peer.join(space);
    t.space.on('error', (e) => t.errors.push({ kind: e.kind, message: e.message }));
    return t.peer.agentId;
  };
  t.publish = async (text) => t.space.publish(new TextEncoder().encode(text));
  t.has = async (id) => (await t.space.get(id)) !== undefined;
}

let net, browser, stop;
const tabs = [];

before(async () => {
  ({ net, browser, stop } = await startDevnetAndBrowser());
  for (const offset of [0, SKEW_MS]) {
    const context = await browser.newContext();
    await context.addInitScript(skewClock, offset);
    await context.addInitScript(pageHelpers);
    tabs.push(await openFennecPage(context, net.staticUrl));
  }
});
after(() => stop?.());

test('a tab 5 minutes ahead is told its clock is off, and still syncs both ways', async () => {
  const [right, ahead] = tabs;
  assert.ok(await ahead.evaluate((s) => Date.now() - s > 4 * 60_000, Date.now()), 'the clock is skewed');
  const o = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space: `clock-skew-e2e-${Date.now()}` };
  await right.evaluate((x) => window.t.join(x), o);
  await ahead.evaluate((x) => window.t.join(x), o);

  const refused = await pollPage(ahead, () => window.t.errors.find((e) => e.kind === 'bootstrap'),
    undefined, 'a bootstrap error at the skewed tab', 30_000);
  assert.match(refused.message, /InvalidCreatedAt/);
  assert.match(refused.message, /check this device's clock/);

  const fromAhead = await ahead.evaluate(() => window.t.publish('from the tab 5 min ahead'));
  const fromRight = await right.evaluate(() => window.t.publish('from the tab on time'));
  await pollPage(right, (id) => window.t.has(id), fromAhead, 'the skewed tab\'s op at the other tab');
  await pollPage(ahead, (id) => window.t.has(id), fromRight, 'the other tab\'s op at the skewed tab');

  assert.deepEqual(await right.evaluate(() => window.t.errors), [], 'errors at the tab on time');
  const errors = await ahead.evaluate(() => window.t.errors);
  assert.deepEqual(errors.map((e) => e.kind), ['bootstrap'], 'one error at the skewed tab');
  for (const page of tabs) assert.deepEqual(page.fennecErrors, []);
});
