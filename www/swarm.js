// Page side of the swarm (scripts/swarm.mjs) and the e2e tests: a thin layer over the
// fennec API that Node drives through page.evaluate.
const state = { peer: null, space: null, published: 0, received: 0, errors: [], peerEvents: {} };
const encoder = new TextEncoder();

async function fennec() {
  if (!window.fennec) {
    const m = await import('/pkg/index.js');
    await m.default();
    window.fennec = m;
  }
  return window.fennec;
}

/** Connects and joins `space`; options pass through to Peer.connect. */
window.swarmJoin = async ({ bootstrapUrl, signalUrl, space, storage = 'indexeddb', relayOnly = false }) => {
  const { Peer } = await fennec();
  state.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage, relayOnly });
  state.space = await state.peer.join(space);
  state.space.on('op', () => { state.received += 1; });
  state.space.on('error', (e) => { state.errors.push(e.message); });
  state.space.on('peer', (e) => { state.peerEvents[e.kind] = (state.peerEvents[e.kind] || 0) + 1; });
  return { agent: state.peer.agentId, url: state.space.url };
};

/**
 * Publishes records [{ line, createdAt }] (createdAt in µs, as the dataset has it; the API
 * takes ms) with one `publishMany`: one call into the node, one IndexedDB transaction per
 * batch. Resolves once all are committed.
 */
window.swarmPublish = async (records) => {
  const ids = await state.space.publishMany(
    records.map((r) => ({ payload: encoder.encode(r.line), createdAt: r.createdAt / 1000 })));
  state.published += ids.length;
  return state.published;
};

/** { ops, txBytes, rxBytes, peers, connections, published, received, errors }. */
window.swarmStatus = async () => {
  const s = await state.space.stats();
  return { ...s, published: state.published, received: state.received, errors: state.errors.length, lastError: state.errors[state.errors.length - 1], peerEvents: state.peerEvents };
};

/** Ops in this tab's store right now (after a reload: what IndexedDB kept). */
window.swarmStoredOps = async () => (await state.space.stats()).ops;
