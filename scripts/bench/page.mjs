// One headless Chromium page for the benchmarks that run in a single page (scripts/bench/*.mjs).
import { launchBrowser, openFennecPage, startStaticServer } from '../../tests/e2e/harness.mjs';

/**
 * Serves www/ and pkg/, opens one page with `/bench/<module>.js` imported as `window.bench`,
 * and resolves to what `fn(page)` resolves to; fails if the page threw (`fennecErrors`).
 * Closes the browser and the server either way.
 */
export async function withBenchPage(module, fn) {
  const web = await startStaticServer();
  const browser = await launchBrowser();
  try {
    const page = await openFennecPage(await browser.newContext(), web.url);
    await page.evaluate(async (m) => { window.bench = await import(`/bench/${m}.js`); }, module);
    const out = await fn(page);
    if (page.fennecErrors.length) throw new Error(`page errors: ${page.fennecErrors.join('; ')}`);
    return out;
  } finally {
    await browser.close();
    await web.stop();
  }
}
