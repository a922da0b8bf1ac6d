// The demo page (www/index.html) in two browser contexts on the devnet: both join one space,
// see each other as peers, a message posted in one arrives in the other, and screenshots of
// both show the key parts of the page; each peer shows its connection path (WebRTC or relay)
// and the receiver its sync progress; reloaded, the receiver lists what its store holds.
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { demoUrl } from '../../scripts/devnet.mjs';
import { startDevnetAndBrowser } from './harness.mjs';

const TIMEOUT = 60_000;
let net, browser, stop;
before(async () => ({ net, browser, stop } = await startDevnetAndBrowser()));
after(() => stop?.());

async function openDemo(space) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${demoUrl(net)}&space=${encodeURIComponent(space)}`);
  page.pageErrors = errors;
  return { context, page };
}

test('the demo page without server URLs says what is missing', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${net.staticUrl}/`);
  await page.getByRole('alert').filter({ hasText: 'bootstrap' }).waitFor();
  await page.fill('#bootstrap', 'not a url');
  await page.fill('#signal', net.signalUrl);
  await page.click('#join');
  assert.match(await page.textContent('#error'), /Bootstrap server URL: "not a url" is not a URL/);
  await context.close();
});

test('two windows join one space, see each other and exchange a message', { timeout: 120_000 }, async () => {
  const space = `demo-${Date.now()}`;
  const a = await openDemo(space);
  const b = await openDemo(space);
  for (const { page } of [a, b]) {
    assert.equal(await page.inputValue('#bootstrap'), net.bootstrapUrl);
    assert.equal(await page.inputValue('#signal'), net.signalUrl);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.locator('#leave').waitFor({ state: 'visible', timeout: TIMEOUT });
  }
  const agentA = (await a.page.textContent('#agent')).trim();
  const agentB = (await b.page.textContent('#agent')).trim();
  assert.match(agentA, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(agentA, agentB, 'two windows are two agents');

  // Each sees the other in its peer list.
  await a.page.locator('#peers li.peer', { hasText: agentB }).waitFor({ timeout: TIMEOUT });
  await b.page.locator('#peers li.peer', { hasText: agentA }).waitFor({ timeout: TIMEOUT });

  // A message posted in A arrives in B (an `op` event from A).
  const text = `hello from A ${Math.random().toString(36).slice(2, 8)}`;
  await a.page.fill('#msg', text);
  await a.page.getByRole('button', { name: 'Publish' }).click();
  await a.page.locator('#ops li.op', { hasText: text }).waitFor({ timeout: TIMEOUT });
  const arrived = b.page.locator('#ops li.op', { hasText: text });
  await arrived.waitFor({ timeout: TIMEOUT });
  assert.match(await arrived.textContent(), new RegExp(`from ${agentA.slice(0, 8)}`));

  // Stats tick: B holds the op.
  await b.page.waitForFunction(() => Number(document.getElementById('st-ops').textContent) >= 1,
    null, { timeout: TIMEOUT });

  // Each peer shows its connection path (`peers()[i].path`; two contexts of one browser
  // connect over WebRTC). A loads the bundled dataset (bulk batches are announced, not
  // pushed like the message above), and B shows the sync progress of fetching it, done.
  for (const [page, other] of [[a.page, agentB], [b.page, agentA]]) {
    await page.locator('#peers li.peer', { hasText: other }).locator('.path', { hasText: /^(WebRTC|relay)$/ })
      .waitFor({ timeout: TIMEOUT });
  }
  await a.page.getByRole('button', { name: 'Load dataset' }).click();
  await a.page.locator('#dataset-text', { hasText: /^Done: / }).waitFor({ timeout: TIMEOUT });
  await b.page.locator('#sync-text', { hasText: /^In sync: \d[\d,]* ops? fetched/ }).waitFor({ timeout: TIMEOUT });
  assert.ok(await b.page.locator('#sync-progress').isVisible(), 'B shows the sync progress bar');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'fennec-demo-'));
  for (const [name, { page }] of Object.entries({ a, b })) {
    for (const sel of ['#agent', '#peers li.peer', '#peers li.peer .path', '#ops li.op', '#st-ops', '#msg', '#load-dataset']) {
      assert.ok(await page.locator(sel).first().isVisible(), `${name}: ${sel} visible`);
    }
    const file = path.join(dir, `demo-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    const { size } = await stat(file);
    assert.ok(size > 10_000, `${file} is ${size} bytes`);
    console.log(`screenshot: ${file} (${size} bytes)`);
    assert.deepEqual(page.pageErrors, []);
    assert.equal(await page.textContent('#error'), '', `${name}: no error shown`);
  }
  // B reloads (same tab: same agent key, same IndexedDB store) and joins again: the list
  // shows what its store holds (`space.ops()` at join), A's message included.
  await b.page.reload();
  await b.page.getByRole('button', { name: 'Join' }).click();
  await b.page.locator('#leave').waitFor({ state: 'visible', timeout: TIMEOUT });
  const held = b.page.locator('#ops li.op', { hasText: text });
  await held.waitFor({ timeout: TIMEOUT });
  assert.match(await held.textContent(), /from the store/);
  assert.deepEqual(b.page.pageErrors, []);
  await a.context.close();
  await b.context.close();
});
