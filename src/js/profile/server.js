// The network node of a browser profile, run by its leader tab (README, "One node per browser
// profile"): one wasm `Peer` whose spaces are shared by every tab that joined them. Each call
// names the tab it serves; a space is left on the network only when its last tab leaves.
//
// Events of a wasm space (every name `profileEventNames()` lists, so events added later are
// forwarded too) go to `emit(spaceId, name, event, except)`; an op published by one tab is
// emitted as an `op` event to the other tabs (`except` = the publishing tab) with `from` set
// to this node's agent id and `fromUrl` to its URL in the space.

/** Serves the calls of a profile's tabs on one wasm `Peer`. */
export class NodeServer {
  /**
   * @param {object} peer the wasm-bindgen `Peer` (from the glue, not the package entry)
   * @param {string[]} eventNames every event name of `space.on`
   * @param {(spaceId: string, name: string, event: object, except: string | null) => void} emit
   * @param {(code: string, message: string) => Error} fail makes a FennecError
   */
  constructor(peer, eventNames, emit, fail) {
    this.peer = peer;
    this.fail = fail;
    this.eventNames = eventNames;
    this.emit = emit;
    /** space id -> { space: wasm Space, members: Set<tab id> } */
    this.spaces = new Map();
    this.closing = null;
  }

  /** Joins `name` for `tab` (`arc` as `profileJoinArgs` gives it) -> `{ id, url, peers }`. */
  async join(tab, name, arc) {
    const space = await this.peer.join(name, arc === undefined ? undefined : { arc });
    let entry = this.spaces.get(space.id);
    if (!entry || entry.space !== space) {
      entry = { space, members: new Set() };
      this.spaces.set(space.id, entry);
      const id = space.id; // read once: each read crosses into wasm and encodes the id
      for (const n of this.eventNames) space.on(n, (e) => this.emit(id, n, e, null));
    }
    entry.members.add(tab);
    return { id: space.id, url: space.url, peers: space.peers() };
  }

  /** The wasm space `id` joined by `tab`, else a FennecError "left". */
  member(tab, id, func) {
    const entry = this.spaces.get(id);
    if (!entry || !entry.members.has(tab)) throw this.fail('left', `${func}: the space is not joined by this tab at the leader tab`);
    return entry.space;
  }

  /** Publishes for `tab` (payload and createdAt as `profilePublishArgs` gives them) -> op id. */
  async publish(tab, id, payload, createdAt) {
    const space = this.member(tab, id, 'space.publish');
    const opId = await space.publish(payload, { createdAt });
    this.emitOwn(tab, id, space, opId, { createdAt, payload });
    return opId;
  }

  /** Publishes `items` (as `profilePublishManyArgs` gives them) for `tab` in one write -> op ids. */
  async publishMany(tab, id, items) {
    const space = this.member(tab, id, 'space.publishMany');
    const ids = await space.publishMany(items);
    ids.forEach((opId, i) => this.emitOwn(tab, id, space, opId, items[i]));
    return ids;
  }

  /** An `op` event for the other tabs: op `opId` ({ createdAt, payload }) published by `tab`. */
  emitOwn(tab, id, space, opId, { createdAt, payload }) {
    this.emit(id, 'op', { id: opId, createdAt, payload, from: this.peer.agentId, fromUrl: space.url }, tab);
  }

  /** Sends `data` to peer `agent` for `tab` (as `profileSendArgs` gives them). */
  async send(tab, id, agent, data) {
    return this.member(tab, id, 'space.send').send(agent, data);
  }

  async get(tab, id, opId) {
    return this.member(tab, id, 'space.get').get(opId);
  }

  /** The held ops `options` asks for (checked and normalised by `profileOpsArgs`). */
  async ops(tab, id, options) {
    return this.member(tab, id, 'space.ops').ops(options);
  }

  async stats(tab, id) {
    return this.member(tab, id, 'space.stats').stats();
  }

  /** Whether a tab other than `a` and `b` has joined space `id` here. */
  hasMemberBesides(id, a, b) {
    const entry = this.spaces.get(id);
    if (!entry) return false;
    for (const tab of entry.members) if (tab !== a && tab !== b) return true;
    return false;
  }

  /** The wasm space's peers (`[]` when not joined here). */
  peers(id) {
    const entry = this.spaces.get(id);
    return entry ? entry.space.peers() : [];
  }

  /** `tab` leaves space `id`; the node leaves it when no tab is left in it. Idempotent. */
  async leave(tab, id) {
    const entry = this.spaces.get(id);
    if (!entry || !entry.members.delete(tab) || entry.members.size > 0) return;
    this.spaces.delete(id);
    await entry.space.leave();
  }

  /** `tab` is gone (closed its peer, or its page went away): leaves its spaces. */
  async dropTab(tab) {
    await Promise.all([...this.spaces.keys()].map((id) => this.leave(tab, id)));
  }

  /** Leaves every space and closes the wasm peer. Idempotent. */
  close() {
    if (!this.closing) {
      this.spaces.clear();
      this.closing = this.peer.close();
    }
    return this.closing;
  }
}
