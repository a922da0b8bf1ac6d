// fennec-dht in a dedicated Web Worker (issue 12, deliverable 4): a page starts a module Worker
// that imports the package entry (/pkg/index.js, what the tarball holds), `init()`s it with its
// default wasm URL, connects with default options and joins a space. A worker has no `window`
// or `document` (no page lifecycle hints, no `pagehide` departure) and, in Chromium, no
// RTCPeerConnection, so it is relay-only. A normal tab of another browser context joins the
// same space on the real bootstrap/sbd server, and an op crosses each way.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, pollPage, startDevnetAndBrowser } from './harness.mjs';


// The worker: commands from the page by postMessage, one reply object per event.
const WORKER_SRC = (pkgUrl) => `
const out = (o) => postMessage(o);
let space;
self.onmessage = async ({ data }) => {
  try {
    if (data.join) {
      const { default: init, Peer } = await import(${JSON.stringify(pkgUrl)});
      await init();
      const peer = await Peer.connect({ bootstrapUrl: data.join.bootstrapUrl, signalUrl: data.join.signalUrl });
      space = await peer.join(data.join.space);
      space.on('op', (e) => out({ event: 'op', id: e.id, text: new TextDecoder().decode(e.payload) }));
      space.on('error', (e) => out({ event: 'error', kind: e.kind, message: e.message }));
      out({ event: 'joined', agent: peer.agentId, role: peer.role, rtc: typeof RTCPeerConnection, document: typeof document });
    }
    if (data.stats) out({ event: 'stats', stats: await space.stats() });
    if (data.publish) out({ event: 'published', id: await space.publish(new TextEncoder().encode(data.publish)) });
  } catch (e) {
    out({ event: 'failed', message: String(e && e.stack || e) });
  }
};
`;

let net, browser, stop;
before(async () => ({ net, browser, stop } = await startDevnetAndBrowser()));
after(() => stop?.());


/** The first message of the page's worker passing `pred` (given as source text), or a failure it reported. */
function fromWorker(page, pred, what) {
  return pollPage(page, (p) => {
    const f = new Function('m', `return (${p})(m)`);
    const failed = window.workerOut.find((m) => m.event === 'failed');
    if (failed) return { failed };
    return window.workerOut.find(f);
  }, pred.toString(), `the worker: ${what}`).then((m) => {
    if (m.failed) throw new Error(`the worker failed: ${m.failed.message}`);
    return m;
  });
}

test('a dedicated worker running the package joins a space and exchanges ops with a tab', async () => {
  const space = `worker-${process.pid}-${Date.now()}`;
  const o = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space };

  const workerPage = await (await browser.newContext()).newPage();
  const pageErrors = [];
  workerPage.on('pageerror', (e) => pageErrors.push(e));
  await workerPage.goto(net.staticUrl + '/blank.html');
  await workerPage.evaluate(({ src, join }) => {
    window.workerOut = [];
    const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
    window.worker = new Worker(url, { type: 'module' });
    window.worker.onmessage = (e) => window.workerOut.push(e.data);
    window.worker.onerror = (e) => window.workerOut.push({ event: 'failed', message: e.message });
    window.worker.postMessage({ join });
  }, { src: WORKER_SRC(net.staticUrl + '/pkg/index.js'), join: o });
  const joined = await fromWorker(workerPage, (m) => m.event === 'joined', 'joined');
  assert.equal(joined.document, 'undefined', 'a worker scope');

  const tab = await openFennecPage(await browser.newContext(), net.staticUrl);
  await tab.evaluate(async (o) => {
    window.received = [];
    const peer = await window.fennec.Peer.connect({ bootstrapUrl: o.bootstrapUrl, signalUrl: o.signalUrl });
    window.space = await peer.join(o.space);
    window.space.on('op', (e) => window.received.push({ id: e.id, text: new TextDecoder().decode(e.payload) }));
  }, o);

  const tabId = await tab.evaluate(() => window.space.publish(new TextEncoder().encode('from the tab')));
  const got = await fromWorker(workerPage, `(m) => m.event === 'op' && m.id === ${JSON.stringify(tabId)}`, 'the tab\'s op');
  assert.equal(got.text, 'from the tab');

  await workerPage.evaluate(() => window.worker.postMessage({ publish: 'from the worker' }));
  const { id } = await fromWorker(workerPage, (m) => m.event === 'published', 'published');
  const arrived = await pollPage(tab, (want) => window.received.find((r) => r.id === want), id, 'the worker\'s op in the tab');
  assert.deepEqual(arrived, { id, text: 'from the worker' });

  const path = await pollPage(tab, (agent) => window.space.peers().find((p) => p.agent === agent && p.path)?.path,
    joined.agent, 'the tab connected to the worker');
  if (joined.rtc === 'undefined') {
    assert.equal(path, 'relay', 'no RTCPeerConnection in the worker: relay-only');
    await workerPage.evaluate(() => window.worker.postMessage({ stats: true }));
    const { stats } = await fromWorker(workerPage, (m) => m.event === 'stats', 'stats');
    assert.equal(stats.net.fallbacks, 0, 'relay-only from the start: no WebRTC attempt fell back');
  }
  console.log(JSON.stringify({ workerRole: joined.role, workerRtc: joined.rtc, path }));
  assert.deepEqual(await workerPage.evaluate(() => window.workerOut.filter((m) => m.event === 'error' || m.event === 'failed')), []);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(tab.fennecErrors, []);
});
