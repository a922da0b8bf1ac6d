// Page side of the Yjs half of `npm run bench -- peers` (bundled by scripts/bench/peers.mjs with
// esbuild): the same window.swarm* calls as www/swarm.js, over yjs + y-webrtc + y-indexeddb.
// Records go into one Y.Map keyed by a content id (see peers.mjs for why a map).
import * as Y from 'yjs';
import { WebrtcProvider } from 'y-webrtc';
import { IndexeddbPersistence } from 'y-indexeddb';

const state = { doc: null, map: null, provider: null, persistence: null, published: 0 };

/** Joins `room` through the y-webrtc signaling server at `signalUrl`; resolves once IndexedDB is loaded. */
window.swarmJoin = async ({ signalUrl, room }) => {
  state.doc = new Y.Doc();
  state.map = state.doc.getMap('records');
  state.persistence = new IndexeddbPersistence(room, state.doc);
  await state.persistence.whenSynced;
  state.provider = new WebrtcProvider(room, state.doc, { signaling: [signalUrl] });
  return { clientId: state.doc.clientID };
};

/** Writes records [{ id, line }] in ONE Yjs transaction (one update message to every peer). */
window.swarmPublish = async (records) => {
  state.doc.transact(() => {
    for (const r of records) state.map.set(r.id, r.line);
  });
  state.published += records.length;
  return state.published;
};

/**
 * { ops, published, connections, synced }: ops = records this tab's document holds;
 * connections = y-webrtc peers whose WebRTC connection is open; synced = those that answered
 * its sync step 1 (y-webrtc's WebrtcConn.connected / .synced).
 */
window.swarmStatus = async () => {
  const conns = [...(state.provider?.room?.webrtcConns.values() ?? [])];
  return {
    ops: state.map.size,
    published: state.published,
    connections: conns.filter((c) => c.connected).length,
    synced: conns.filter((c) => c.synced).length,
  };
};

/** Records in this tab's document right after swarmJoin (after a reload: what y-indexeddb kept). */
window.swarmStoredOps = async () => state.map.size;
