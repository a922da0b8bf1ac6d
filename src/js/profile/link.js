// How a `Peer` of the package entry reaches its network node (README, "One node per browser
// profile"):
// - `TabLink` (`sharing: "tab"`): this tab runs its own node.
// - `ProfileLink` (`sharing: "profile"`): the tabs that share an agent and servers elect a
//   leader with a Web Lock (held for the tab's life, so the browser hands it to the next tab
//   when the leader closes or crashes: https://w3c.github.io/web-locks/). The leader runs the
//   node (`NodeServer`); the others call it over a BroadcastChannel
//   (https://html.spec.whatwg.org/multipage/web-messaging.html#broadcasting-to-other-browsing-contexts).
//   A new leader rejoins the spaces of its own tab, and each follower rejoins its spaces on it
//   and sends it again every call still unanswered; a call lost to two leaders in a row
//   rejects with FennecError "failover". Each tab also holds a lock of its own, which the
//   leader waits on to learn that the tab went away and drop its spaces.
import { NodeServer } from './server.js';
import { errorData, errorFrom, newTabId, scopeNames } from './wire.js';

/** Leaders a call may be sent to before it rejects with code "failover". */
export const MAX_LEADERS_PER_CALL = 2;
/** How often (ms) the leader sends each space's peer list to the followers. */
export const PEERS_EVERY_MS = 1000;

/**
 * What both links are given:
 * @typedef {object} LinkHost
 * @property {object} node the tab's wasm `Peer` (already connected: options checked, key loaded)
 * @property {string[]} eventNames every event name of `space.on`
 * @property {typeof Error} FennecError
 * @property {(spaceId: string, name: string, event: object) => void} deliver an event for this tab
 * @property {() => {id: string, name: string, arc: any}[]} joined this tab's joined spaces
 * @property {(id: string, joined: {url: string}) => void} rejoined a space was joined again on a new leader
 */

/** A node of this tab alone. */
export class TabLink {
  /** @param {LinkHost} host */
  constructor(host) {
    this.role = 'tab';
    this.host = host;
    const fail = (code, message) => new host.FennecError(code, message);
    // `except` is this tab for the op event of its own publish: no event for that.
    this.server = new NodeServer(host.node, host.eventNames, (space, name, e, except) => {
      if (except === null) host.deliver(space, name, e);
    }, fail);
  }

  async start() {}

  /** Calls `NodeServer` method `m` for this tab. */
  call(m, args) {
    return this.server[m]('self', ...args);
  }

  peers(id) {
    return this.server.peers(id);
  }

  close() {
    return this.server.close();
  }
}

/** A node shared by the tabs of a browser profile (see the top of this file). */
export class ProfileLink {
  /**
   * @param {LinkHost} host
   * @param {{agentId: string, bootstrapUrl: string, signalUrl: string}} scope
   * @param {{locks: LockManager, BroadcastChannel: typeof BroadcastChannel}} env
   */
  constructor(host, scope, env) {
    this.host = host;
    this.env = env;
    this.names = scopeNames(scope.agentId, scope.bootstrapUrl, scope.signalUrl);
    this.tab = newTabId();
    this.role = 'follower';
    this.leader = null;
    this.server = null;
    this.ready = null;
    /** request id -> { m, a, resolve, reject, sentTo: Set<leader id> } */
    this.pending = new Map();
    this.nextId = 1;
    this.peerLists = new Map();
    this.watched = new Set();
    this.closed = false;
    this.closing = false;
    this.abort = new AbortController();
    this.released = new Promise((r) => { this.release = r; });
    this.channel = new env.BroadcastChannel(this.names.channel);
    this.channel.onmessage = (e) => this.onMessage(e.data);
  }

  /** Takes this tab's own lock, then the node's lock if free (else waits for it). */
  async start() {
    const { locks } = this.env;
    await new Promise((granted, refused) => {
      locks.request(this.names.tabLock(this.tab), () => { granted(); return this.released; }).catch(refused);
    });
    const free = await new Promise((answer, refused) => {
      locks.request(this.names.lock, { ifAvailable: true }, (lock) => {
        answer(lock !== null);
        return lock ? this.released : undefined;
      }).catch(refused);
    });
    if (free) {
      this.lead();
      return;
    }
    this.post({ t: 'hello', from: this.tab });
    locks.request(this.names.lock, { signal: this.abort.signal }, () => {
      if (this.closed) return undefined;
      this.lead();
      return this.released;
    }).catch((e) => {
      if (!this.closed) console.error('fennec: waiting to lead the profile node failed', e);
    });
  }

  /** Becomes the leader: starts the node, rejoins this tab's spaces, serves waiting calls. */
  lead() {
    const host = this.host;
    this.role = 'leader';
    this.leader = this.tab;
    const fail = (code, message) => new host.FennecError(code, message);
    this.server = new NodeServer(host.node, host.eventNames, (s, n, e, x) => this.emit(s, n, e, x), fail);
    this.post({ t: 'leader', from: this.tab });
    this.ready = Promise.all(host.joined().map(async (s) => {
      try {
        host.rejoined(s.id, await this.server.join(this.tab, s.name, s.arc));
      } catch (e) {
        this.rejoinFailed(s, e);
      }
    }));
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      this.serve(this.tab, p.m, p.a).then(p.resolve, p.reject);
    }
    this.peersTimer = setInterval(() => this.sendPeerLists(), PEERS_EVERY_MS);
  }

  /** Reports a space that could not be joined again on a new leader (its calls then fail "left"). */
  rejoinFailed(s, e) {
    const message = `fennec: joining space ${JSON.stringify(s.name)} again on the new leader tab failed: ${e && e.message}`;
    console.error(message, e);
    this.host.deliver(s.id, 'error', { kind: 'failover', message, error: e });
  }

  /** Runs `NodeServer` method `m` for tab `from`, once the node rejoined its leader's spaces. */
  async serve(from, m, a) {
    await this.ready;
    return this.server[m](from, ...a);
  }

  /** Calls `NodeServer` method `m` for this tab, here if it leads, else at the leader. */
  call(m, a) {
    if (this.role === 'leader') return this.serve(this.tab, m, a);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const p = { m, a, resolve, reject, sentTo: new Set() };
      this.pending.set(id, p);
      if (this.leader) this.send(id, p);
    });
  }

  /** Sends pending call `id` to the current leader, or rejects it after too many leaders. */
  send(id, p) {
    if (p.sentTo.has(this.leader)) return;
    if (p.sentTo.size >= MAX_LEADERS_PER_CALL) {
      this.pending.delete(id);
      p.reject(new this.host.FennecError('failover',
        `${p.m}: the call was lost to ${p.sentTo.size} leader tabs going away in turn; it may or may not have taken effect`));
      return;
    }
    p.sentTo.add(this.leader);
    this.post({ t: 'req', from: this.tab, to: this.leader, id, m: p.m, a: p.a });
  }

  /** The leader's peers of space `id`: its own if it leads, else the last list it sent. */
  peers(id) {
    if (this.role === 'leader') return this.server.peers(id);
    return this.peerLists.get(id) || [];
  }

  onMessage(msg) {
    if (this.closed) return;
    switch (msg.t) {
      case 'hello': if (this.role === 'leader') this.post({ t: 'leader', from: this.tab }); break;
      case 'leader': this.follow(msg.from); break;
      case 'req': if (msg.to === this.tab && this.role === 'leader') this.answer(msg); break;
      case 'res': if (msg.to === this.tab) this.settle(msg); break;
      case 'event': if (msg.except !== this.tab) this.host.deliver(msg.space, msg.name, msg.event); break;
      case 'peers': if (this.role !== 'leader') this.peerLists.set(msg.space, msg.list); break;
      default: break;
    }
  }

  /** A tab leads: rejoin this tab's spaces there, then send it every unanswered call. */
  follow(leader) {
    if (this.role === 'leader' || leader === this.leader) return;
    this.leader = leader;
    for (const s of this.host.joined()) {
      this.call('join', [s.name, s.arc]).then((r) => {
        this.peerLists.set(s.id, r.peers);
        this.host.rejoined(s.id, r);
      }, (e) => this.rejoinFailed(s, e));
    }
    for (const [id, p] of this.pending) this.send(id, p);
  }

  /** Serves a follower's call and answers it; a call failing while this tab closes is not answered (the follower sends it to the next leader). */
  async answer({ from, id, m, a }) {
    this.watch(from);
    try {
      const v = await this.serve(from, m, a);
      this.post({ t: 'res', to: from, id, ok: true, v });
      if (m === 'join') this.post({ t: 'peers', space: v.id, list: v.peers });
    } catch (e) {
      if (!this.closing) this.post({ t: 'res', to: from, id, ok: false, e: errorData(e) });
    }
  }

  settle({ id, ok, v, e }) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (ok) p.resolve(v);
    else p.reject(errorFrom(e, this.host.FennecError));
  }

  /** Drops the spaces of tab `tab` once its lock is free, i.e. once it closed or went away. */
  watch(tab) {
    if (tab === this.tab || this.watched.has(tab)) return;
    this.watched.add(tab);
    this.env.locks.request(this.names.tabLock(tab), { signal: this.abort.signal }, async () => {
      this.watched.delete(tab);
      if (!this.closed) await this.server.dropTab(tab);
    }).catch((e) => {
      if (!this.closed) console.error('fennec: watching a tab of the profile failed', e);
    });
  }

  /**
   * A node event: to this tab (unless it is `except`) and to the other tabs, posted only when
   * another tab joined the space. A bulk sync is an `op` event per op: cloning each into the
   * channel was a tenth of a syncing tab's main-thread time with no tab to read it.
   */
  emit(space, name, event, except) {
    if (except !== this.tab) this.host.deliver(space, name, event);
    if (!this.server.hasMemberBesides(space, this.tab, except)) return;
    this.post({ t: 'event', space, name, event, except });
    if (name === 'peer') this.post({ t: 'peers', space, list: this.server.peers(space) });
  }

  sendPeerLists() {
    for (const id of this.server.spaces.keys()) this.post({ t: 'peers', space: id, list: this.server.peers(id) });
  }

  post(msg) {
    if (this.closed) return;
    try {
      this.channel.postMessage(msg);
    } catch (e) {
      console.error('fennec: a message to the other tabs of this profile could not be sent', e);
    }
  }

  /**
   * Closes this tab's side: a leader closes the node (another tab takes over and rejoins its
   * spaces); a follower's spaces are dropped by the leader once this tab's lock is free.
   * Unanswered calls reject with FennecError "closed".
   */
  async close() {
    this.closing = true;
    if (this.role === 'leader') await this.server.close();
    this.closed = true;
    clearInterval(this.peersTimer);
    for (const p of this.pending.values()) p.reject(new this.host.FennecError('closed', `${p.m}: the peer was closed`));
    this.pending.clear();
    this.abort.abort();
    this.release();
    this.channel.close();
  }
}
