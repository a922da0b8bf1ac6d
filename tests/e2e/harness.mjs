// Shared pieces of the end-to-end tests: the devnet and Debian's Chromium driven by
// playwright-core (never a downloaded browser; ../shared/toolchain.md).
import { chromium } from 'playwright-core';
import { startDevnet } from '../../scripts/devnet.mjs';
export { startDevnet, startStaticServer, startBootstrapServer, serveDirectory } from '../../scripts/devnet.mjs';

export const CHROMIUM = process.env.FENNEC_CHROMIUM || '/usr/bin/chromium';

/** Launches headless Chromium with flags that keep it off the (closed) network. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
      ...extraArgs],
  });
}

/**
 * What most test files start in `before`: the devnet and Chromium, as `{ net, browser, stop }`;
 * `stop()` (for `after`) closes the browser, then stops the devnet. If Chromium does not
 * start, the devnet is stopped before the error is passed on.
 */
export async function startDevnetAndBrowser() {
  const net = await startDevnet();
  let browser;
  try {
    browser = await launchBrowser();
  } catch (e) {
    await net.stop();
    throw e;
  }
  return { net, browser, stop: async () => { await browser.close(); await net.stop(); } };
}

/**
 * Opens a page of the static server and loads the package in it; `window.fennec` is the module.
 * `pkg` is '/pkg/index.js' (the package entry users get) or '/pkg-testing/index.js' (the `testing` build
 * with the protocol-level JS Transport, for hostile peers).
 */
export async function openFennecPage(context, staticUrl, pagePath = '/blank.html', pkg = '/pkg/index.js') {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(staticUrl + pagePath);
  await page.evaluate(async (pkgUrl) => {
    const m = await import(pkgUrl);
    await m.default();
    window.fennec = m;
  }, pkg);
  page.fennecErrors = errors;
  return page;
}

/**
 * Polls `check` in `page` (an async function allowed: `page.waitForFunction` would take its
 * Promise as truthy) every 100 ms until it returns a truthy value, which it returns; throws
 * naming `what` after `limitMs`.
 */
export async function pollPage(page, check, arg, what, limitMs = 60_000) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await page.evaluate(check, arg);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Page side: the slice hashes held in each of this origin's fennec op store databases (the
 * DHT model's persisted full-slice hashes and its watermark: distinct `(arc, slice index)`
 * keys over the `slice_batches` records, `{m: 5 numbers per hash, d}`), read with plain
 * IndexedDB, as `{ [databaseName]: count }` (`{}` when the origin has none). Installed as
 * `window.sliceHashCounts` by `installSliceHashCount`.
 */
async function sliceHashCounts() {
  const names = (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith('fennec-ops:'));
  const counts = {};
  for (const name of names) {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open(name);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    try {
      const batches = await new Promise((resolve, reject) => {
        const req = db.transaction('slice_batches').objectStore('slice_batches').getAll();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const keys = new Set();
      for (const { m } of batches) {
        for (let i = 0; i < m.length; i += 5) keys.add(`${m[i]} ${m[i + 1]} ${m[i + 2]} ${m[i + 3]}`);
      }
      counts[name] = keys.size;
    } finally {
      db.close();
    }
  }
  return counts;
}

/**
 * Gives every page of `context` `window.sliceHashCounts()` (above) and
 * `window.sliceHashCount()`: the count of the origin's one op store database, 0 without one
 * (as an init script: page.evaluate sends a function alone, without the helpers it calls).
 */
export function installSliceHashCount(context) {
  return context.addInitScript({
    content: `window.sliceHashCounts = ${sliceHashCounts.toString()};
window.sliceHashCount = async () => {
  const counts = Object.values(await window.sliceHashCounts());
  if (counts.length > 1) throw new Error('sliceHashCount: ' + counts.length + ' op store databases');
  return counts[0] ?? 0;
};`,
  });
}
