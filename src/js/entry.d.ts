// Types of fennec's package entry (pkg/index.d.ts; src/js/entry.js is the code).
import type {
  Bytes, FennecErrorCode, HeldOp, JoinOptions, OpsOptions, PeerInfo, PeerOptions, PublishItem,
  PublishOptions, SignalOptions, SpaceEvents, SpaceStats,
} from './fennec.js';

export * from './fennec.js';
export { default, initSync } from './fennec.js';

/**
 * A runtime failure of a fennec call; bad arguments are `TypeError`/`RangeError` instead.
 * `code` is stable (see `FennecErrorCode`), `message` is for people.
 */
export class FennecError extends Error {
  constructor(code: FennecErrorCode, message: string);
  readonly name: "FennecError";
  readonly code: FennecErrorCode;
}

/** Whether `init()` (or `initSync()`) has completed; before, every call fails with code "not-initialised". */
export function initialised(): boolean;

/**
 * One identity (agent) on the network; joins spaces. With `sharing: "profile"` (the default
 * for the origin's own key) the tabs of a browser profile share one network node, run by a
 * leader tab (README, "One node per browser profile").
 */
export class Peer {
  private constructor();
  /**
   * Creates a peer (`PeerOptions`: `bootstrapUrl` and `signalUrl` required). Rejects with a
   * `TypeError`/`RangeError` naming a bad, unknown or misspelt option, or a `FennecError`
   * code `"store"` when this origin's agent key cannot be loaded from IndexedDB (or
   * `sharing: "profile"` lacks Web Locks / BroadcastChannel).
   */
  static connect(options: PeerOptions): Promise<Peer>;
  /**
   * Joins a space by name or id (`JoinOptions`) and resolves with its `Space`. A
   * 43-character base64url string of 32 bytes is taken as the space id; any other non-empty
   * string is a name, and the id is the BLAKE3 hash of `"fennec-space:" + name`.
   *
   * Joining a space this peer has joined, or is joining, resolves with the same `Space`
   * object (`===`); with a different `arc` it rejects with `FennecError` code `"joined"`
   * (leave first; the tabs of a profile share one arc per space). After `space.leave()` a
   * join starts afresh.
   *
   * Rejects with a `TypeError` (`space` not a string, a bad or unknown option), a
   * `RangeError` (empty name, arc bounds, an arc not of whole sectors), or a `FennecError`:
   * `"closed"` after `peer.close()`, `"signal"` (the signal server is unreachable), `"store"`
   * (the op store cannot be opened), `"failover"` (lost to two leader tabs going away in
   * turn). With `options.signal`: its reason once it aborts (see `SignalOptions`).
   */
  join(space: string, options?: JoinOptions): Promise<Space>;
  /**
   * Leaves every joined space (as `space.leave()`), then refuses further `join`s and calls
   * on those spaces (`FennecError` code `"closed"`). Idempotent: later calls resolve when
   * the first one is done. A leader tab's close hands the node to another tab.
   */
  close(): Promise<void>;
  /** This peer's agent id (base64url of its ed25519 public key). Readable after `close()`. */
  readonly agentId: string;
  /**
   * "tab": this tab runs its own node (`sharing: "tab"`); "leader": it runs its profile's
   * node; "follower": another tab of the profile runs it (this one takes over when that tab
   * goes away).
   */
  readonly role: "tab" | "leader" | "follower";
}

/** A joined space: publish ops, read them, watch events. */
export class Space {
  private constructor();
  /**
   * Publishes `payload` (`Bytes`: at most 1 048 567 bytes, copied) as an op; resolves with
   * its id (base64url) once IndexedDB committed it (it is announced to peers after).
   * `options.createdAt`: a `Date` or ms since the Unix epoch (default now, fixed when called,
   * so that a call retried on a new leader tab makes the same op).
   *
   * Rejects with a `TypeError` (payload not bytes, a bad or unknown option), a `RangeError`
   * (too large, a time out of range), or a `FennecError` (`"left"`, `"closed"`, `"store"`,
   * `"failover"`). A call rejected for its arguments stores nothing. With `options.signal`:
   * its reason once it aborts (the op may still be stored; see `SignalOptions`).
   */
  publish(payload: Bytes, options?: PublishOptions): Promise<string>;
  /**
   * Publishes many ops at once, for bulk imports: one call into the node and one IndexedDB
   * transaction for all of `items` (`PublishItem`: `Bytes`, or `{ payload, createdAt? }`;
   * `createdAt` defaults to now). Resolves with their op ids, in order, once the transaction
   * committed. All or nothing: an invalid item rejects with a `TypeError`/`RangeError` naming
   * it (`items[3].payload ...`) and stores none; a failed write rejects with `FennecError`
   * `"store"`. Other rejections as `publish`. `op` events as for `publish`.
   */
  publishMany(items: PublishItem[], options?: SignalOptions): Promise<string[]>;
  /**
   * Sends `data` (`Bytes`, at most 1 MiB) to the peer agent `agent` of this space; it gets a
   * `message` event (`MessageEvent`). This is Kitsune2's `send_notify`: best effort. It
   * resolves once the connection took the message, which may still be lost (the peer's page
   * closes, the connection drops): no acknowledgement, no retry, no order across reconnects;
   * an app that needs one replies with a `send` of its own.
   *
   * Rejects with a `TypeError` (`agent` not an agent id, `data` not bytes), a `RangeError`
   * (`data` over 1 MiB), or a `FennecError`: `"unreachable"` (no live peer with that agent id
   * is known, it is down or this peer itself, or the send failed), `"left"`, `"closed"`,
   * `"failover"`.
   */
  send(agent: string, data: Bytes, options?: SignalOptions): Promise<void>;
  /**
   * The payload of op `id` (a base64url op id), from this peer's store or, for an op outside
   * its storage arc (`JoinOptions.arc`) or one it may not have fetched yet (it is still
   * catching up after joining), from up to 3 peers whose arcs hold it (the first valid answer
   * wins; the op is not stored); `undefined` if not found (an op of our own arc that we lack
   * once caught up: at once; otherwise no answer within 5 s). Rejects with a `TypeError` for
   * anything but an op id, or a `FennecError` (`"left"`, `"closed"`, `"store"`, `"failover"`).
   */
  get(id: string, options?: SignalOptions): Promise<Uint8Array | undefined>;
  /**
   * The ops this peer holds (its store: what it published and what it received, kept across
   * reloads in IndexedDB; the network is not asked), ordered by `createdAt` then id:
   * `HeldOp[]` (`{ id, createdAt, payload }`, `createdAt` in ms). `options.from` and
   * `options.to` (a `Date` or ms since the Unix epoch) keep the ops created in `[from, to)`
   * (`from >= to` gives `[]`); `newestFirst` reverses the order; `limit` and `after` (the
   * last `HeldOp` of the page before) read a large space page by page. For an app's history
   * after a reload (then `op` events bring what arrives). Rejects with a `TypeError` (a bad
   * or unknown option), a `RangeError` (a time or limit out of range), or a `FennecError`
   * (`"left"`, `"closed"`, `"store"`, `"failover"`).
   */
  ops(options?: OpsOptions): Promise<HeldOp[]>;
  /**
   * Calls `callback(event)` for each event `event` of the space; `SpaceEvents` gives each
   * event's type: `"op"` (`OpEvent`; also for ops published by the other tabs of the
   * profile), `"peer"` (`PeerEvent`), `"error"` (`ErrorEvent`), `"status"` (`StatusEvent`),
   * `"message"` (`MessageEvent`, from `space.send`), `"sync"` (`SyncEvent`, progress of
   * fetching what we lack). Adding the same callback twice adds it once (as
   * `addEventListener`). A callback that throws is reported (`console.error` and an `error`
   * event of kind `"callback"`); the others still run.
   *
   * Throws a `TypeError` for an unknown event name or a `callback` that is not a function,
   * a `FennecError` (`"left"`, `"closed"`) after the space ended.
   */
  on<K extends keyof SpaceEvents>(event: K, callback: (event: SpaceEvents[K]) => void): void;
  /**
   * Removes a callback added with `on`. Throws a `TypeError` for an unknown event name or
   * a non-function; after the space ended it does nothing (clean-up code may call it).
   */
  off<K extends keyof SpaceEvents>(event: K, callback: (event: SpaceEvents[K]) => void): void;
  /**
   * Known live peers: `[{ agent, url, state, path, arc }]` (`PeerInfo`; `state` "alive" |
   * "suspect", `path` "webrtc" | "relay" | null, `arc` the storage arc the peer's agent info
   * claims, as `JoinOptions.arc`, or null before its info came). A peer reported `down` or
   * `left` is not listed until it is `alive` again. In a follower tab, the leader's list as
   * of at most 1 s ago. Throws a `FennecError` (`"left"`, `"closed"`) after the space ended.
   */
  peers(): PeerInfo[];
  /**
   * Ops held, bytes moved, peers known, the transport's counters, the gossip summary and
   * how ops moved (`SpaceStats`, `GossipStats`, `DeliveryStats`). Rejects
   * with a `FennecError` (`"left"`, `"closed"`, `"store"`, `"failover"`).
   */
  stats(): Promise<SpaceStats>;
  /**
   * Leaves the space for this tab: the node leaves it (a tombstone goes to peers and the
   * bootstrap server, and its DHT model's unwritten hashes are stored, so the next join
   * loads without a rebuild) when no tab of the profile is left in it. Idempotent.
   * Afterwards calls reject with `FennecError` code `"left"`, and `peer.join` of this space
   * joins afresh.
   */
  leave(): Promise<void>;
  /** The space id (base64url). Readable after `leave()`. */
  readonly id: string;
  /** Our peer URL in this space (the node's; a new one after a failover). Readable after `leave()`. */
  readonly url: string;
}
