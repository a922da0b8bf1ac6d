// A tab reloaded while it fetches, in real Chromium through the real bootstrap/sbd server:
// tab A holds the dataset (11 643 ops), tab B joins and is reloaded as soon as it has stored
// some of them, in the middle of fetching the rest (about a second's work) (the swarm page, www/swarm.js, on IndexedDB). B must come back with
// what it had stored and fetch the rest. A must not open a connection to B's old page: its
// answers still under way when B left used to open one to the old URL (a page's URL dies
// with it), which then waited out its connect timeout; so 3 s after B is complete, A has
// exactly one connection, to B's new page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDevnetAndBrowser } from './harness.mjs';
import { loadDataset } from '../../scripts/dataset.mjs';

let net, browser, stop;
before(async () => ({ net, browser, stop } = await startDevnetAndBrowser()));
after(() => stop?.());

async function open() {
  const page = await (await browser.newContext()).newPage();
  await page.goto(net.staticUrl + '/swarm.html');
  return page;
}

/** Polls `page`'s swarm status until `ok(status)`; returns that status. */
async function until(page, ok, what, limitMs = 60_000) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const s = await page.evaluate(() => window.swarmStatus());
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what} (${JSON.stringify(s).slice(0, 300)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a tab reloaded while it fetches catches up, and its old page gets no new connection', async () => {
  const records = await loadDataset();
  const o = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space: `reload-mid-sync-${Date.now()}` };
  const a = await open();
  await a.evaluate((x) => window.swarmJoin(x), o);
  for (let i = 0; i < records.length; i += 500) await a.evaluate((r) => window.swarmPublish(r), records.slice(i, i + 500));
  const held = (await a.evaluate(() => window.swarmStatus())).ops;

  const b = await open();
  await b.evaluate((x) => window.swarmJoin(x), o);
  const before = (await until(b, (s) => s.ops > 0, 'B stores its first ops')).ops;
  await b.reload();
  await b.evaluate((x) => window.swarmJoin(x), o);
  const kept = (await b.evaluate(() => window.swarmStatus())).ops;
  await until(b, (s) => s.ops === held, `B holds all ${held} ops after its reload`);
  console.log(JSON.stringify({ reload_mid_sync: { ops: held, before_reload: before, kept_after_reload: kept } }));
  assert.ok(before < held, `B was still fetching when reloaded (held ${before} of ${held})`);
  assert.ok(kept >= before, 'what B had stored survived the reload');

  await new Promise((r) => setTimeout(r, 3000));
  const sa = await a.evaluate(() => window.swarmStatus());
  assert.equal(sa.connections, 1, 'A is connected to B\'s new page only');
  assert.equal(sa.errors, 0, `errors at A: ${sa.lastError}`);
  assert.equal((await b.evaluate(() => window.swarmStatus())).errors, 0, 'errors at B');
});
