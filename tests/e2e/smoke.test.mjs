// The smallest end-to-end check: a real page loads pkg/ and calls an exported function.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { launchBrowser, openFennecPage, startStaticServer } from './harness.mjs';

let web, browser;
before(async () => {
  web = await startStaticServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await web?.stop();
});

test('a page loads pkg/ and reads the library version', async () => {
  const cargo = await readFile(new URL('../../Cargo.toml', import.meta.url), 'utf8');
  const expected = /^version = "([^"]+)"/m.exec(cargo)[1];
  const context = await browser.newContext();
  const page = await openFennecPage(context, web.url);
  assert.equal(await page.evaluate(() => window.fennec.version()), expected);
  assert.deepEqual(page.fennecErrors, []);
  await context.close();
});
