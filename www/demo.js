// The fennec demo page (index.html): join a space, see peers, post messages, watch ops, load
// the bundled dataset, live stats. Plain DOM, no framework.
import { loadDatasetOps } from './lib/dataset.js';

const OP_CAP = 200;        // ops kept in the list
const EVENT_CAP = 20;      // peer events kept
const DATASET_BATCH = 250; // publishes in flight at once while loading the dataset

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const dec = new TextDecoder();
const state = { peer: null, space: null, agent: null, timer: null, pendingOps: [], flush: 0, received: 0 };
window.demo = state; // for the e2e test and curious people in the console

// ---- helpers ---------------------------------------------------------------------------

function showError(msg) { $('error').textContent = msg || ''; }
function setStatus(msg) { $('status').textContent = msg; }
function short(id) { return id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '?'; }
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}
function fmtTime(ms) { return new Date(ms).toLocaleString(); }
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

/** The text to show for an op payload: `msg` of a JSON object, else the text itself. */
function describe(payload) {
  const text = dec.decode(payload);
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && typeof v.msg === 'string') {
      const who = v.repo ? `${v.repo}: ` : '';
      return who + v.msg;
    }
  } catch { /* plain text */ }
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** A per-tab agent key (sessionStorage), so two windows of one browser are two agents. */
function tabAgentKey() {
  let hex = sessionStorage.getItem('fennec-demo-agent-key');
  if (!hex || !/^[0-9a-f]{64}$/.test(hex)) {
    const k = crypto.getRandomValues(new Uint8Array(32));
    hex = Array.from(k, (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem('fennec-demo-agent-key', hex);
  }
  return Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
}

function checkUrl(value, label, schemes) {
  let u;
  try { u = new URL(value); } catch { throw new Error(`${label}: "${value}" is not a URL`); }
  if (!schemes.includes(u.protocol)) {
    throw new Error(`${label}: expected ${schemes.map((s) => s + '//').join(' or ')}…, got ${u.protocol}//`);
  }
  return value.replace(/\/+$/, '');
}

// ---- ops list --------------------------------------------------------------------------

function addOp(op) {
  state.pendingOps.push(op);
  if (!state.flush) state.flush = requestAnimationFrame(flushOps);
}

function flushOps() {
  state.flush = 0;
  const list = $('ops');
  list.querySelector('.empty')?.remove();
  const fresh = state.pendingOps.splice(0).slice(-OP_CAP);
  for (const op of fresh) {
    // `from` is the sending peer's agent id (null if it left meanwhile), `fromUrl` its URL.
    // A held op (space.ops, read at join) has no sender: it comes from this tab's store.
    const from = op.mine ? el('span', { className: 'you', textContent: 'you' })
      : op.held ? el('span', { textContent: 'the store' })
        : el('span', { className: 'mono', textContent: op.from ? short(op.from) : op.fromUrl, title: op.fromUrl });
    const li = el('li', { className: 'op' },
      el('div', { className: 'op-text', textContent: describe(op.payload) }),
      el('div', { className: 'meta' }, 'from ', from, ` · ${fmtTime(op.createdAt)} · `,
        el('span', { className: 'mono', textContent: short(op.id), title: op.id })));
    list.prepend(li);
  }
  while (list.children.length > OP_CAP) list.lastElementChild.remove();
}

// ---- peers -----------------------------------------------------------------------------

function renderPeers() {
  if (!state.space) return;
  const peers = state.space.peers().filter((p) => p.agent !== state.agent);
  $('peer-count').textContent = String(peers.length);
  const list = $('peers');
  const key = peers.map((p) => `${p.agent} ${p.path} ${p.state}`).sort().join(',');
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  // Each peer's connection path (`peers()[i].path`): WebRTC data channel, sbd relay, or none open.
  const pathText = { webrtc: 'WebRTC', relay: 'relay' };
  list.replaceChildren(...(peers.length ? peers.map((p) => el('li', { className: 'peer' },
    el('span', { className: 'mono', textContent: p.agent, title: p.url || 'no URL' }),
    ' ',
    el('span', { className: `path path-${p.path || 'none'}`, textContent: pathText[p.path] || 'not connected' }),
    p.state === 'suspect' ? el('span', { className: 'meta', textContent: ' (suspect)' }) : ''))
    : [el('li', { className: 'empty', textContent: 'No peers yet.' })]));
}

function onPeerEvent(ev) {
  const list = $('peer-events');
  list.querySelector('.empty')?.remove();
  const text = `${new Date().toLocaleTimeString()} ${ev.kind} ${short(ev.agent)}${ev.reason ? ` (${ev.reason})` : ''}`;
  list.prepend(el('li', { textContent: text }));
  while (list.children.length > EVENT_CAP) list.lastElementChild.remove();
  renderPeers();
}

// ---- sync progress ---------------------------------------------------------------------

/** A `sync` event: the progress of fetching the ops this peer lacks, as a bar. */
function onSync(e) {
  $('sync-box').hidden = false;
  const bar = $('sync-progress');
  bar.max = Math.max(e.missing, 1);
  bar.value = e.fetched + e.failed;
  const ops = (n) => `${n.toLocaleString()} op${n === 1 ? '' : 's'}`;
  $('sync-text').textContent = e.remaining === 0
    ? `In sync: ${ops(e.fetched)} fetched${e.failed ? `, ${e.failed} given up` : ''}.`
    : `Syncing: ${e.fetched.toLocaleString()} / ${e.missing.toLocaleString()} ops fetched, ${e.remaining.toLocaleString()} to go`;
}

// ---- stats -----------------------------------------------------------------------------

async function refreshStats() {
  if (!state.space) return;
  try {
    const s = await state.space.stats();
    $('st-ops').textContent = s.ops.toLocaleString();
    $('st-peers').textContent = String(s.peers);
    $('st-conns').textContent = String(s.connections);
    $('st-tx').textContent = fmtBytes(s.txBytes);
    $('st-rx').textContent = fmtBytes(s.rxBytes);
  } catch (e) {
    showError(`stats: ${e.message}`);
  }
  renderPeers();
}

// ---- join / leave ----------------------------------------------------------------------

function setJoined(joined) {
  for (const id of ['bootstrap', 'signal', 'space']) $(id).disabled = joined;
  $('join').hidden = joined;
  $('leave').hidden = !joined;
  $('msg').disabled = !joined;
  $('post').disabled = !joined;
  $('load-dataset').disabled = !joined;
  $('msg').placeholder = joined ? 'Say hello to the space' : 'Join a space first';
}

async function join(ev) {
  ev.preventDefault();
  showError('');
  let bootstrapUrl, signalUrl;
  const name = $('space').value.trim();
  try {
    bootstrapUrl = checkUrl($('bootstrap').value.trim(), 'Bootstrap server URL', ['http:', 'https:']);
    signalUrl = checkUrl($('signal').value.trim(), 'Signal server URL', ['ws:', 'wss:']);
    if (!name) throw new Error('Space name: enter a name');
  } catch (e) {
    showError(e.message);
    return;
  }
  $('join').disabled = true;
  try {
    setStatus('Loading fennec…');
    const fennec = await import('/pkg/index.js');
    await fennec.default();
    setStatus('Connecting…');
    // One agent per tab (its own key, its own node), so that two tabs show two peers; the
    // default would make the tabs of this browser profile one agent on one shared node.
    state.peer = await fennec.Peer.connect({ bootstrapUrl, signalUrl, agentKey: tabAgentKey(), sharing: 'tab' });
    state.agent = state.peer.agentId;
    $('agent').textContent = state.agent;
    setStatus(`Joining "${name}"…`);
    state.space = await state.peer.join(name);
    $('space-id').textContent = state.space.id;
    // What this tab already holds (after a reload: its IndexedDB store), the newest OP_CAP.
    const held = await state.space.ops({ newestFirst: true, limit: OP_CAP });
    for (const op of held.reverse()) addOp({ ...op, held: true });
    state.space.on('op', (op) => { state.received += 1; addOp(op); });
    state.space.on('peer', onPeerEvent);
    state.space.on('error', (e) => showError(`${e.kind}: ${e.message}`));
    state.space.on('sync', onSync);
    setJoined(true);
    setStatus(`Joined "${name}". Open this page in another window and join the same space.`);
    const url = new URL(location.href);
    url.searchParams.set('bootstrap', bootstrapUrl);
    url.searchParams.set('signal', signalUrl);
    url.searchParams.set('space', name);
    history.replaceState(null, '', url);
    await refreshStats();
    state.timer = setInterval(refreshStats, 1000);
    $('msg').focus();
  } catch (e) {
    showError(`Could not join: ${e.message || e}`);
    setStatus('Not connected.');
    await state.peer?.close().catch(() => {});
    state.peer = null;
    state.space = null;
  } finally {
    $('join').disabled = false;
  }
}

async function leave() {
  clearInterval(state.timer);
  $('sync-box').hidden = true;
  const { peer, space } = state;
  state.space = null;
  setStatus('Leaving…');
  try {
    await space?.leave();
    await peer?.close();
  } catch (e) {
    showError(`leave: ${e.message}`);
  }
  state.peer = null;
  setJoined(false);
  setStatus('Left the space.');
  $('peers').replaceChildren(el('li', { className: 'empty', textContent: 'No peers yet.' }));
  $('peers').dataset.key = '';
  $('peer-count').textContent = '0';
}

// ---- publish ---------------------------------------------------------------------------

async function post(ev) {
  ev.preventDefault();
  const text = $('msg').value.trim();
  if (!text || !state.space) return;
  showError('');
  const payload = enc.encode(JSON.stringify({ msg: text }));
  const createdAt = Date.now(); // ms, as every time in the fennec API
  try {
    const id = await state.space.publish(payload, { createdAt });
    addOp({ id, payload, createdAt, mine: true });
    $('msg').value = '';
    refreshStats();
  } catch (e) {
    showError(`publish: ${e.message}`);
  }
}

async function loadDataset() {
  const btn = $('load-dataset');
  btn.disabled = true;
  showError('');
  $('dataset-box').hidden = false;
  const bar = $('dataset-progress');
  const text = $('dataset-text');
  try {
    text.textContent = 'Loading the dataset…';
    const ops = await loadDatasetOps();
    bar.max = ops.length;
    bar.value = 0;
    let done = 0;
    for (let i = 0; i < ops.length && state.space; i += DATASET_BATCH) {
      const batch = ops.slice(i, i + DATASET_BATCH);
      await state.space.publishMany(batch.map((op) => ({ payload: op.payload, createdAt: op.createdAt / 1000 })));
      done += batch.length;
      bar.value = done;
      text.textContent = `${done.toLocaleString()} / ${ops.length.toLocaleString()} ops published`;
    }
    text.textContent = `Done: ${done.toLocaleString()} ops published.`;
    refreshStats();
  } catch (e) {
    showError(`dataset: ${e.message}`);
  } finally {
    btn.disabled = !state.space;
  }
}

// ---- start -----------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
$('bootstrap').value = params.get('bootstrap') || '';
$('signal').value = params.get('signal') || '';
if (params.get('space')) $('space').value = params.get('space');
$('op-cap').textContent = String(OP_CAP);
if (!params.get('bootstrap') || !params.get('signal')) {
  showError('No ?bootstrap=…&signal=… in the address: enter the server URLs (npm run demo prints a link with both filled in).');
}
$('join-form').addEventListener('submit', join);
$('leave').addEventListener('click', leave);
$('post-form').addEventListener('submit', post);
$('load-dataset').addEventListener('click', loadDataset);
$('msg').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('post-form').requestSubmit(); }
});
window.addEventListener('pagehide', () => { state.space?.leave().catch(() => {}); });
