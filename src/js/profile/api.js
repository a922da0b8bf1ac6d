// The `Peer` and `Space` classes of the package entry (pkg/index.js): the public JavaScript
// API of README "Using it from JavaScript". Every argument is checked here, in the calling
// tab, by the wasm module's own checks (`profile*Args`, src/js/profile.rs: the same
// TypeError/RangeError messages as the wasm classes); the call then goes to the network node
// through a link (link.js): this tab's own node, or its profile's node run by the leader tab.
// Lifecycle as src/js/peer.rs documents: `join` of a joined space gives the same `Space`;
// `leave`/`close` are idempotent; calls after them reject with FennecError "left"/"closed".
import { ProfileLink, TabLink } from './link.js';

const INTERNAL = Symbol('fennec internal');

/**
 * The classes, bound to the wasm-bindgen glue and the browser's Web Locks and
 * BroadcastChannel (given, so that tests can run them on fakes).
 * @param {{glue: object, FennecError: typeof Error, locks?: LockManager, BroadcastChannel?: typeof BroadcastChannel, indexedDB?: IDBFactory}} env
 */
export function makeApi(env) {
  const { glue, FennecError } = env;

  function ended(code, func) {
    return new FennecError(code, `${func}: ${code === 'closed' ? 'the peer was closed' : 'the space was left'}`);
  }

  /** Calls every callback of `name`; one that throws is reported and the others still run (as src/js/peer.rs `dispatch`). */
  function dispatch(handlers, name, event) {
    for (const f of [...(handlers.get(name) || [])]) {
      try {
        f.call(undefined, event);
      } catch (err) {
        const message = `fennec: a space.on(${JSON.stringify(name)}) callback threw`;
        console.error(message, err);
        if (name !== 'error') {
          const detail = err instanceof Error ? err.message : typeof err === 'string' ? err : String(err);
          dispatch(handlers, 'error', { kind: 'callback', event: name, message: `${message}: ${detail}`, error: err });
        }
      }
    }
  }

  /**
   * `sharing` when not given: "profile" with the origin's key in IndexedDB (no `agentKey`,
   * storage "indexeddb") where the scope has Web Locks, BroadcastChannel and IndexedDB; else
   * "tab" (Node, insecure contexts, workers without `navigator.locks`: nothing to share with).
   */
  function defaultSharing(options) {
    const shareable = env.locks && env.BroadcastChannel && env.indexedDB !== undefined;
    const originKey = options.agentKey === undefined && (options.storage === undefined || options.storage === 'indexeddb');
    return shareable && originKey ? 'profile' : 'tab';
  }

  /**
   * `promise`, or a rejection with `signal.reason` (an "AbortError" `DOMException` unless the
   * app passed its own reason to `abort()`) once `signal` aborts first (DOM Standard,
   * "AbortSignal" §3.1: APIs reject with the signal's abort reason). The call itself goes
   * on: only the caller stops waiting.
   */
  function abortable(signal, promise) {
    if (!signal) return promise;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
        (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
      );
    });
  }

  /** The `signal` option (already checked to be an AbortSignal); throws its reason if aborted. */
  function signalOf(options) {
    const signal = options == null ? undefined : options.signal;
    if (signal && signal.aborted) throw signal.reason;
    return signal;
  }

  /** A joined space: publish ops, read them, watch events. Made by `peer.join`. */
  class Space {
    constructor(token, peer, joined, name, arc) {
      if (token !== INTERNAL) throw new TypeError('Space: use peer.join(name) to get a Space');
      this[INTERNAL] = { peer, id: joined.id, url: joined.url, name, arc, handlers: new Map(), ended: null, leaving: null };
    }

    /** The space id (base64url). */
    get id() { return this[INTERNAL].id; }

    /** Our peer URL in this space (the node's; a new one after a failover). */
    get url() { return this[INTERNAL].url; }

    async publish(payload, options) {
      const a = glue.profilePublishArgs(payload, options);
      const signal = signalOf(options);
      return abortable(signal, this[INTERNAL].peer[INTERNAL].call(this, 'space.publish', 'publish', [a.payload, a.createdAt]));
    }

    async publishMany(items, options) {
      const a = glue.profilePublishManyArgs(items, options);
      const signal = signalOf(options);
      if (a.length === 0) {
        if (this[INTERNAL].ended) throw ended(this[INTERNAL].ended, 'space.publishMany');
        return [];
      }
      return abortable(signal, this[INTERNAL].peer[INTERNAL].call(this, 'space.publishMany', 'publishMany', [a]));
    }

    async get(id, options) {
      const opId = glue.profileOpId(id, options);
      const signal = signalOf(options);
      return abortable(signal, this[INTERNAL].peer[INTERNAL].call(this, 'space.get', 'get', [opId]));
    }

    async ops(options) {
      const a = glue.profileOpsArgs(options);
      const signal = signalOf(options);
      return abortable(signal, this[INTERNAL].peer[INTERNAL].call(this, 'space.ops', 'ops', [a]));
    }

    async send(agent, data, options) {
      const a = glue.profileSendArgs(agent, data, options);
      const signal = signalOf(options);
      return abortable(signal, this[INTERNAL].peer[INTERNAL].call(this, 'space.send', 'send', [a.agent, a.data]).then(() => undefined));
    }

    async stats() {
      return this[INTERNAL].peer[INTERNAL].call(this, 'space.stats', 'stats', []);
    }

    peers() {
      const s = this[INTERNAL];
      if (s.ended) throw ended(s.ended, 'space.peers');
      return s.peer[INTERNAL].link.peers(s.id);
    }

    on(event, callback) {
      const name = glue.profileEventArgs('space.on', event, callback);
      const s = this[INTERNAL];
      if (s.ended) throw ended(s.ended, 'space.on');
      const list = s.handlers.get(name) || [];
      if (!list.includes(callback)) list.push(callback);
      s.handlers.set(name, list);
    }

    off(event, callback) {
      const name = glue.profileEventArgs('space.off', event, callback);
      const list = this[INTERNAL].handlers.get(name);
      if (list && list.includes(callback)) list.splice(list.indexOf(callback), 1);
    }

    /** Leaves the space (for this tab; the node leaves it when no tab of the profile is in it). Idempotent. */
    leave() {
      const s = this[INTERNAL];
      if (!s.leaving) {
        s.peer[INTERNAL].forget(this);
        s.ended = s.ended || 'left';
        s.leaving = s.peer[INTERNAL].link.call('leave', [s.id]).catch((e) => {
          if (!(e instanceof FennecError && e.code === 'closed')) console.error('fennec: space.leave failed', e);
        });
      }
      return s.leaving.then(() => undefined);
    }
  }

  /** One identity (agent) on the network; joins spaces. Made by `Peer.connect`. */
  class Peer {
    constructor(token, node, sharing, options) {
      if (token !== INTERNAL) throw new TypeError('Peer: use Peer.connect(options) to get a Peer');
      const spaces = new Map();
      const host = {
        node,
        eventNames: Array.from(glue.profileEventNames()),
        FennecError,
        deliver: (id, name, event) => {
          const s = spaces.get(id);
          if (s) dispatch(s[INTERNAL].handlers, name, event);
        },
        joined: () => [...spaces.values()].map((s) => ({ id: s.id, name: s[INTERNAL].name, arc: s[INTERNAL].arc })),
        rejoined: (id, r) => {
          const s = spaces.get(id);
          if (s) s[INTERNAL].url = r.url;
        },
      };
      const link = sharing === 'tab'
        ? new TabLink(host)
        : new ProfileLink(host, { agentId: node.agentId, bootstrapUrl: options.bootstrapUrl, signalUrl: options.signalUrl },
          { locks: env.locks, BroadcastChannel: env.BroadcastChannel });
      this[INTERNAL] = {
        node,
        link,
        spaces,
        /** space name -> join calls waiting for it (not aborted) */
        joinWaiters: new Map(),
        closing: null,
        forget: (space) => { if (spaces.get(space.id) === space) spaces.delete(space.id); },
        /** `link.call(m, [space id, ...a])` for `space`, failing as the space's lifecycle says. */
        call: async (space, func, m, a) => {
          const s = space[INTERNAL];
          if (s.ended) throw ended(s.ended, func);
          try {
            return await link.call(m, [s.id, ...a]);
          } catch (e) {
            if (s.ended) throw ended(s.ended, func);
            throw e;
          }
        },
      };
    }

    /**
     * Connects (options as the wasm `Peer.connect` checks them, plus `sharing`): a node of
     * this tab (`sharing: "tab"`) or a share of the profile's node (`"profile"`, the default
     * with the origin's key in IndexedDB).
     */
    static async connect(options) {
      const node = await glue.Peer.connect(options);
      const sharing = options.sharing || defaultSharing(options);
      if (sharing === 'profile' && !(env.locks && env.BroadcastChannel)) {
        node.free();
        throw new FennecError('store', 'Peer.connect: sharing "profile" needs Web Locks and BroadcastChannel (a secure context); use sharing "tab"');
      }
      const peer = new Peer(INTERNAL, node, sharing, options);
      await peer[INTERNAL].link.start();
      return peer;
    }

    /** This peer's agent id (base64url of its ed25519 public key). */
    get agentId() { return this[INTERNAL].node.agentId; }

    /**
     * "tab" (this tab runs its own node), "leader" (this tab runs its profile's node) or
     * "follower" (another tab of the profile runs it). A follower becomes the leader when
     * the leader tab goes away.
     */
    get role() { return this[INTERNAL].link.role; }

    async join(space, options) {
      const { name, arc } = glue.profileJoinArgs(space, options);
      const signal = signalOf(options);
      const p = this[INTERNAL];
      if (p.closing) throw ended('closed', 'peer.join');
      const waiting = (n) => p.joinWaiters.set(name, (p.joinWaiters.get(name) || 0) + n);
      waiting(1);
      let aborted = false;
      let created = false;
      const joining = p.link.call('join', [name, arc]).then((joined) => {
        let s = p.spaces.get(joined.id);
        if (!s) {
          created = true;
          s = new Space(INTERNAL, this, joined, name, arc);
          if (p.closing) s[INTERNAL].ended = 'closed';
          else p.spaces.set(joined.id, s);
        }
        return s;
      }).finally(() => { if (!aborted) waiting(-1); });
      if (!signal) return joining;
      const onAbort = () => {
        aborted = true;
        waiting(-1);
        // A join nobody waits for any more is left again once it completed.
        joining.then((s) => { if (created && !p.joinWaiters.get(name)) s.leave(); }, () => {});
      };
      signal.addEventListener('abort', onAbort, { once: true });
      joining.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {});
      return abortable(signal, joining);
    }

    /** Leaves every joined space and closes this tab's side of the node. Idempotent. */
    close() {
      const p = this[INTERNAL];
      if (!p.closing) {
        for (const s of p.spaces.values()) s[INTERNAL].ended = 'closed';
        p.spaces.clear();
        p.closing = p.link.close();
      }
      return p.closing.then(() => undefined);
    }
  }

  return { Peer, Space };
}
