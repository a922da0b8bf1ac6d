//! `Peer` and `Space` for JavaScript. Every argument is checked ([`super::validate`]: a wrong
//! type, an unknown or misspelt option, a number out of range is a `TypeError`/`RangeError`
//! naming it); runtime failures are `FennecError`s with a stable `code` ([`super::error`]);
//! times are JavaScript's (ms or `Date`), µs only inside. Thin over [`crate::browser::peer`].
//!
//! Lifecycle: joining a space this peer already joined (or is joining) resolves with the same
//! `Space` object; `space.leave()` and `peer.close()` are idempotent; after them every call on
//! the space (or the peer and its spaces) rejects with `FennecError` code `"left"` (or
//! `"closed"`), except `off` (a no-op) and the `id`/`url`/`agentId` getters.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{FutureExt, LocalBoxFuture, Shared};
use js_sys::{Array, ArrayBuffer, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::error::{Code, console_error, fennec_error, range_error, type_error};
use super::promise;
use super::validate::{self, Options, describe, suggest};
use crate::api::HeldOpsQuery;
use crate::browser::peer::{
    BrowserPeer, BrowserSpace, Event, Failure, JoinError, Listener, Liveness, PeerOptions, Storage,
};
use crate::browser::sbd_reconnect::LinkStatus;
use crate::core::bootstrap::{BootstrapClient, PollSchedule};
use crate::core::membership::MembershipConfig;
use crate::core::space::{MAX_NOTIFY_BYTES, NotifyError, NotifyFailed, SpaceError, SpaceEvent};
use crate::hash::HashMap;
use crate::model::agent::AgentKey;
use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, OpId, SpaceId};
use crate::model::op::{MAX_OP_PAYLOAD_BYTES, OP_ID_BYTES, Op};
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::net::conn::{IceServer, NetConfig, Path};
use crate::net::reconnect::ReconnectConfig;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/**
 * Bytes as fennec accepts them (WebIDL's `BufferSource`): a `Uint8Array`, an `ArrayBuffer`
 * (all of it) or any other `ArrayBufferView` (`DataView`, `Int16Array`, ...: exactly the bytes
 * it views). Anything else — a string, an Array of numbers — is a `TypeError`.
 */
export type Bytes = ArrayBuffer | ArrayBufferView;
/**
 * The `code` of a `FennecError` (a runtime failure; bad arguments are `TypeError`/`RangeError`):
 * - "not-initialised": a call before `await init()` resolved;
 * - "closed": the peer was closed (`peer.close()`), for calls on it and on its spaces;
 * - "left": the space was left (`space.leave()`) or stopped;
 * - "joined": `peer.join` of a joined space with a different `arc`;
 * - "signal": the sbd signal server could not be reached (`peer.join`);
 * - "store": IndexedDB failed (the op store, or this origin's agent key);
 * - "failover": a call of a tab sharing its profile's node (`sharing: "profile"`) was lost
 *   twice to the leader tab going away (it was retried once on the next leader);
 * - "unreachable": `space.send` found no live, reachable peer with that agent id (unknown,
 *   left, down, or this peer itself), or sending to it failed.
 */
export type FennecErrorCode = "not-initialised" | "closed" | "left" | "joined" | "signal" | "store" | "failover" | "unreachable";
/** Options of `Peer.connect`. Unknown options are a `TypeError` naming them. */
export interface PeerOptions {
  /** Kitsune2 bootstrap server, "http(s)://host:port", e.g. "http://127.0.0.1:30000". */
  bootstrapUrl: string;
  /** sbd signal/relay server, "ws(s)://host:port" (kitsune2-bootstrap-srv serves both). */
  signalUrl: string;
  /** Where ops are kept. Default "indexeddb", or "memory" where there is no IndexedDB (Node). */
  storage?: "indexeddb" | "memory";
  /**
   * A 32-byte ed25519 secret. Default: this origin's key, created once and kept in IndexedDB;
   * without IndexedDB (Node) a fresh random key, so a new agent on every connect.
   */
  agentKey?: Bytes;
  /** STUN/TURN servers (as `RTCIceServer`). Default none (same machine or LAN). */
  iceServers?: { urls: string | string[]; username?: string; credential?: string }[];
  /** Send everything through the sbd relay, never WebRTC. Default false; always true where there is no `RTCPeerConnection` (Node). */
  relayOnly?: boolean;
  /** Fall back to the relay when WebRTC has not connected after this many ms (> 0, ≤ 2³¹−1). Default 15000. */
  webrtcConnectTimeoutMs?: number;
  /** Most simultaneous connections per space, an integer from 1 to 400. Default 32. */
  maxConnections?: number;
  /**
   * SWIM protocol period: one peer probed per period, direct ack awaited for half of it.
   * An integer of ms from 100 to 60000. Default 800. Shorter finds a crashed peer sooner at
   * the cost of more membership packets (README, "Liveness").
   */
  probePeriodMs?: number;
  /** How long a peer stays `suspect` before it is reported `down`, unless it refutes. An integer of ms from 100 to 2³¹−1. Default 1600. */
  suspicionTimeoutMs?: number;
  /** The same for a peer that said its tab is hidden or busy (browsers throttle hidden tabs' timers); the longer of this and `suspicionTimeoutMs` applies. An integer of ms from 100 to 2³¹−1. Default 30000. */
  hiddenSuspicionTimeoutMs?: number;
  /**
   * "profile": the tabs of this browser profile that connect with the same agent and servers
   * share one network node, run by a leader tab (README, "One node per browser profile");
   * "tab": this tab runs its own node. Default "profile" when the agent key is the origin's
   * (no `agentKey`) and storage is "indexeddb", else "tab". "profile" with storage "memory"
   * is a `TypeError`.
   */
  sharing?: "profile" | "tab";
  /**
   * The `WebSocket` class for the sbd connection, where the scope has no global one (Node 20:
   * `import { WebSocket } from "ws"`). It applies to every later join of this wasm instance
   * (the last one given wins). Default the global `WebSocket`.
   */
  WebSocket?: new (url: string) => unknown;
}
/**
 * The option of every call that waits: `signal` stops waiting when it aborts. The call then
 * rejects with `signal.reason` (a `DOMException` named "AbortError" unless `abort(reason)` was
 * given one); what already reached the node may still take effect (an op may still be stored;
 * an aborted `join` leaves the space again once joined, unless another `join` of it waits).
 * A signal aborted before the call makes it reject at once, doing nothing.
 */
export interface SignalOptions {
  /** Stops waiting when it aborts (DOM `AbortSignal`). */
  signal?: AbortSignal;
}
/** Options of `peer.join`. */
export interface JoinOptions extends SignalOptions {
  /** Storage arc: "full" (default), "empty" (hold nothing, e.g. a light client), or [start, end], integers on the u32 ring (0 to 4294967295), inclusive, wrapping when start > end. It must be whole sectors, as Kitsune2's gossip requires: start a multiple of 8388608 (2^23), end 8388607 more than one, e.g. [0, 2147483647] for half the ring (a `RangeError` names the smallest such arc holding the one given). */
  arc?: "full" | "empty" | [number, number];
}
/** Options of `space.publish`. */
export interface PublishOptions extends SignalOptions {
  /** The op's creation time: a `Date` or ms since the Unix epoch (`Date.now()`; fractions are kept to the µs). Default now. */
  createdAt?: Date | number;
}
/** Options of `space.ops`. Default: every op held, oldest first. */
export interface OpsOptions extends SignalOptions {
  /** Keep the ops created at or after this: a `Date` or ms since the Unix epoch (as `PublishOptions.createdAt`). */
  from?: Date | number;
  /** Keep the ops created before this (excluded), as `from`. */
  to?: Date | number;
  /** Newest first (`createdAt` then id, descending) instead of oldest first. Default false. */
  newestFirst?: boolean;
  /** Only the ops after this one in the chosen order: the last `HeldOp` of the page before, or an `OpEvent` (only `id` and `createdAt` are read; it need not be held). Pages never split or repeat ops that share a `createdAt`. */
  after?: { id: string; createdAt: Date | number };
  /** At most this many ops: an integer from 0 to 2³² − 1. Default all. */
  limit?: number;
}
/** An op this peer holds (`space.ops`): its id (base64url), `createdAt` in ms since the Unix epoch (may have a µs fraction), and payload. */
export interface HeldOp { id: string; createdAt: number; payload: Uint8Array }
/** One item of `space.publishMany`: the payload alone, or with its creation time (as `PublishOptions.createdAt`). */
export type PublishItem = Bytes | { payload: Bytes; createdAt?: Date | number };
/**
 * An op received (`space.on("op", ...)`). `createdAt`: ms since the Unix epoch (as
 * `Date.now()`; may have a µs fraction). `from`: the agent id of the peer that sent it to us,
 * `fromUrl` that peer's URL. Ops carry no author: an op passed on by a third peer (sync) names
 * that peer. `from` is `null` only if that peer's agent info went away (it left) before the op
 * was stored. For an op published by another tab of this profile: this node's agent and URL.
 */
export interface OpEvent { id: string; createdAt: number; payload: Uint8Array; from: string | null; fromUrl: string }
/**
 * A message from a peer (`space.on("message", ...)`, sent with `space.send`): `from` its agent
 * id (`null` if its URL speaks for no single agent), `fromUrl` its URL, `data` the bytes.
 * Every tab of a profile sharing the node gets it.
 */
export interface MessageEvent { from: string | null; fromUrl: string; data: Uint8Array }
/**
 * Sync progress (`space.on("sync", ...)`): a round starts when ops we lack are found (announced
 * by a peer or found by sync) and ends when none is left to fetch. Counts are ops within the
 * round: `missing` = `fetched` + `failed` + `remaining` (grows if more are found meanwhile);
 * at most ten reports a second, the first and the last (`remaining` 0) always. A progress bar:
 * `(fetched + failed) / missing`.
 */
export interface SyncEvent { missing: number; fetched: number; failed: number; remaining: number }
/**
 * A peer change (`space.on("peer", ...)`): "joined" (a new agent info), "suspect" (a SWIM probe
 * failed and nothing came from it for 0.8 s), "down" (declared down: crashed, frozen or
 * unreachable), "alive" (refuted a reported suspicion or came back), "left" (it left:
 * tombstone or membership leave), "misbehaved" (`url`, `reason`). One departure gives one
 * "left" or "down" per agent, never "down" after "left"; "alive" brings the peer back into
 * `peers()`.
 */
export interface PeerEvent { kind: "joined" | "left" | "suspect" | "down" | "alive" | "misbehaved"; agent?: string; url?: string; reason?: string }
/**
 * Something went wrong that the app may want to show (`space.on("error", ...)`):
 * "bootstrap" (a bootstrap put or poll failed: server unreachable or refusing; once per streak
 * of failures, again after a success; `join` still resolves and peers may find us through
 * others), "signal" (the sbd connection was lost, or reconnecting keeps failing: see
 * `StatusEvent`), "fetch" (gave up fetching op `id`), "store" (the op store failed, or the gossip model could not be read from it at start), "sign" (a new agent info
 * could not be signed; it may expire), "announce" (a stored op was not announced: publish pool
 * full; gossip still spreads it), "callback" (a callback given to `space.on(event, ...)` threw
 * `error`; it is also logged with `console.error`, and the other callbacks still run),
 * "failover" (a tab sharing its profile's node could not join this space again on a new leader
 * tab, `error`; calls on the space then reject with "left").
 */
export interface ErrorEvent { kind: "bootstrap" | "signal" | "fetch" | "store" | "sign" | "announce" | "callback" | "failover"; message: string; id?: string; event?: SpaceEventName; error?: unknown }
/**
 * The state of the space's sbd signal connection (`space.on("status", ...)`, and
 * `stats().status`). "connected": the connection is up. "reconnecting": it was lost and is
 * retried with back-off (0.5 s doubling to 30 s, with jitter), same peer URL. "offline":
 * `navigator.onLine` is false, or 5 attempts in a row failed; retries go on. `attempt`:
 * failed attempts in a row (0 when connected); `nextRetryMs`: ms until the next attempt;
 * `reason`: why it is not connected. Direct WebRTC connections to peers outlive the signal
 * connection; ops published meanwhile are stored and announced when it is back.
 */
export interface StatusEvent { state: "connected" | "reconnecting" | "offline"; attempt: number; nextRetryMs?: number; reason?: string }
/** One entry of `space.peers()`: liveness `state` (SWIM), the `path` of the open connection (`null`: none open), and the storage `arc` its latest agent info claims, as `JoinOptions.arc` writes arcs (`null` while only membership knows the peer). */
export interface PeerInfo { agent: string; url: string | null; state: "alive" | "suspect"; path: "webrtc" | "relay" | null; arc: "full" | "empty" | [number, number] | null }
/** The events of a space and what their callbacks get (`space.on(name, (event) => ...)`). */
export interface SpaceEvents { op: OpEvent; peer: PeerEvent; error: ErrorEvent; status: StatusEvent; message: MessageEvent; sync: SyncEvent }
/** The event names of a space. */
export type SpaceEventName = keyof SpaceEvents;
/** Figures of a joined space. `unannounced`: local ops waiting for the link to be announced again. */
export interface SpaceStats { ops: number; opBytes: number; txBytes: number; rxBytes: number; rxBytesByKind: RxBytesByKind; peers: number; connections: number; status: StatusEvent; unannounced: number; net: NetStats; gossip: GossipStats | null; delivery: DeliveryStats | null }
/**
 * How ops moved, counted since joining (`null` once the space stopped): `published` here;
 * `received` from peers and new to the store (fetched or pushed); `served` to peers' fetch
 * requests, `servedFromMemory` of them without a store read; `pushed`: ops sent with their
 * data instead of announced (publish bursts of at most 64 KiB: the peers they reach need not
 * fetch them);
 * `pushedTaken` / `pushedDeferred` / `pushedDropped`: ops peers pushed to us that we stored,
 * fetched instead (already on their way, or that peer's pushes still being written), or
 * dropped (outside our arc, or already held); `introduced`: ids announced to peers that
 * joined after we published them.
 */
export interface DeliveryStats { published: number; received: number; served: number; servedFromMemory: number; pushed: number; pushedTaken: number; pushedDeferred: number; pushedDropped: number; introduced: number }
/**
 * The space's gossip summary (like Kitsune2's `GossipStateSummary`; `null` once the space
 * stopped). Round counters since joining; `idsToFetch`: op ids peers offered in rounds that
 * we lacked (handed to fetch); `reconciledBySketch` / `reconciledByList`: rounds between two
 * fennec peers this side settled from set-reconciliation symbols / from a whole id list;
 * `reconcileGaveUp`: such rounds this side ended on more differences than a sketch decodes
 * and no list short enough (the next round with that peer is plain Kitsune2; a round counts
 * on one side only); `deferred`: due rounds not started because over 1 024 ops still
 * waited to be fetched, or while ops flowed in (64 or more stored within a second, then 2 s
 * of quiet, 20 s at most): a new round would find them again; `lastDiff`: what the last completed round found
 * (`"none"`: identical); `lastRoundAt`: ms since the epoch (`null`: no round yet);
 * `intervalMs`: the current pause between initiated rounds (fast while rounds find
 * differences, backing off to steady); `discTopHash` / `ringTopHashes`: our DHT model's top
 * hashes over our arc (base64url; equal on two peers = same ops).
 */
export interface GossipStats { initiated: number; accepted: number; completed: number; busyReceived: number; busySent: number; timedOut: number; refused: number; idsToFetch: number; reconciledBySketch: number; reconciledByList: number; reconcileGaveUp: number; deferred: number; lastDiff: "none" | "cannotCompare" | "disc" | "ring" | "reconciled"; lastRoundAt: number | null; intervalMs: number; opCount: number; discTopHash: string; ringTopHashes: string[] }
/** `rxBytes` split by message kind: publish announcements, fetch requests and responses (the op data), gossip rounds, membership (SWIM) packets, notify messages. */
export interface RxBytesByKind { publish: number; fetch: number; gossip: number; membership: number; notify: number }
/** How this peer's transport dealt with what others sent it (counters since joining). */
export interface NetStats {
  /** Signal frames (offer, answer, candidate, data, close, no-rtc) that did not decode. */
  malformedSignals: number;
  /** Connections closed because the peer broke the protocol (bad chunk sequence, oversize message, no preflight first, ...). */
  protocolCloses: number;
  /** Signal frames for unknown, old or mismatched connections, ignored. */
  staleFrames: number;
  /** Connections moved from WebRTC to the relay (negotiation failed or timed out, or the peer asked). */
  fallbacks: number;
  /** Connection attempts restarted because both peers connected at once and the peer never saw ours (its offer or relayed preflight was lost, e.g. while the peer was reconnecting to the signal server). */
  glareRestarts: number;
  /** Whole messages delivered to the space. */
  messagesReceived: number;
  /** Remote signal frames dropped because a connection's command queue was full (the connection is then closed). */
  rtcCmdsOverflow: number;
  /** Preflight agent infos left out (bad signature, expired, other URL). */
  preflightAgentsRejected: number;
  /** Membership (SWIM) packets sent on the unordered, unreliable datagram channel. */
  datagramsSent: number;
  /** Membership packets received on the datagram channel. */
  datagramsReceived: number;
  /** Datagrams dropped: sent while that channel was congested (over 64 KiB unsent), received while this tab was behind, or arrived before the handshake finished. SWIM tolerates the loss. */
  datagramsDropped: number;
}
"#;

const CONNECT_OPTIONS: &[&str] = &[
    "bootstrapUrl",
    "signalUrl",
    "storage",
    "agentKey",
    "iceServers",
    "relayOnly",
    "webrtcConnectTimeoutMs",
    "maxConnections",
    "probePeriodMs",
    "suspicionTimeoutMs",
    "hiddenSuspicionTimeoutMs",
    "sharing",
    "WebSocket",
];
const ICE_SERVER_OPTIONS: &[&str] = &["urls", "username", "credential"];
const JOIN_OPTIONS: &[&str] = &["arc", "signal"];
const PUBLISH_OPTIONS: &[&str] = &["createdAt", "signal"];
const OPS_OPTIONS: &[&str] = &["from", "to", "newestFirst", "after", "limit", "signal"];
/// Options of the calls that only take a `signal` (`get`, `send`, `publishMany`).
const SIGNAL_OPTIONS: &[&str] = &["signal"];
/// The options of one `publishMany` item given as an object.
const ITEM_OPTIONS: &[&str] = &["payload", "createdAt"];
/// The event names of `space.on`.
const EVENTS: &[&str] = &["op", "peer", "error", "status", "message", "sync"];
/// Most connections `maxConnections` may ask for: the transport's budget of
/// `RTCPeerConnection`s (`NetConfig::peer_connection_budget`, 400).
const MAX_CONNECTIONS: f64 = 400.0;

/// A joined (or joining) space of a peer: the same `Space` for every `join` of it.
type JoinResult = Result<(JsValue, Rc<SpaceState>), JsValue>;

/// A leave or a close: done once, every caller awaits the same one.
type SharedWait = Shared<LocalBoxFuture<'static, ()>>;

struct Entry {
    /// Distinguishes this join from a later one of the same space (after a leave).
    serial: u64,
    arc: DhtArc,
    joined: Shared<LocalBoxFuture<'static, JoinResult>>,
}

struct PeerState {
    inner: Rc<BrowserPeer>,
    spaces: RefCell<HashMap<SpaceId, Entry>>,
    serial: Cell<u64>,
    closing: RefCell<Option<SharedWait>>,
}

impl PeerState {
    fn closed(&self) -> bool {
        self.closing.borrow().is_some()
    }
}

/// One identity (agent) on the network; joins spaces.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Peer {
    state: Rc<PeerState>,
}

#[wasm_bindgen]
impl Peer {
    /// Creates a peer (`PeerOptions`: `bootstrapUrl` and `signalUrl` required). Rejects with a
    /// `TypeError`/`RangeError` naming a bad, unknown or misspelt option, or a `FennecError`
    /// code `"store"` when this origin's agent key cannot be loaded from IndexedDB.
    #[wasm_bindgen(unchecked_return_type = "Promise<Peer>")]
    pub fn connect(
        #[wasm_bindgen(unchecked_param_type = "PeerOptions")] options: JsValue,
    ) -> Promise {
        promise(async move { Self::connect_with(options).await.map(JsValue::from) })
    }

    /// This peer's agent id (base64url of its ed25519 public key). Readable after `close()`.
    #[wasm_bindgen(getter, js_name = agentId)]
    pub fn agent_id(&self) -> String {
        self.state.inner.agent().to_b64()
    }

    /// Joins a space by name or id (`JoinOptions`) and resolves with its `Space`. A
    /// 43-character base64url string of 32 bytes is taken as the space id; any other non-empty
    /// string is a name, and the id is the BLAKE3 hash of `"fennec-space:" + name`.
    ///
    /// Joining a space this peer has joined, or is joining, resolves with the same `Space`
    /// object (`===`); with a different `arc` it rejects with `FennecError` code `"joined"`
    /// (leave first). After `space.leave()` a join starts afresh.
    ///
    /// Rejects with a `TypeError` (`space` not a string, a bad or unknown option), a
    /// `RangeError` (empty name, arc bounds, an arc not of whole sectors), or a `FennecError`:
    /// `"closed"` after `peer.close()`, `"signal"` (the signal server is unreachable),
    /// `"store"` (the op store cannot be opened).
    #[wasm_bindgen(unchecked_return_type = "Promise<Space>")]
    pub fn join(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] space: JsValue,
        #[wasm_bindgen(unchecked_param_type = "JoinOptions | undefined")] options: JsValue,
    ) -> Promise {
        let me = self.clone();
        promise(async move { me.join_with(space, options).await })
    }

    /// Leaves every joined space (as `space.leave()`), then refuses further `join`s and calls
    /// on those spaces (`FennecError` code `"closed"`). Idempotent: later calls resolve when
    /// the first one is done.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let me = self.clone();
        promise(async move {
            me.close_all().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl Peer {
    /// The work of [`Self::connect`], a future of its own: that call hands it to [`promise`].
    async fn connect_with(options: JsValue) -> Result<Peer, JsValue> {
        const F: &str = "Peer.connect";
        if options.is_undefined() || options.is_null() {
            return Err(type_error(format!(
                "{F}: options are required: {{ bootstrapUrl, signalUrl }}"
            )));
        }
        let o = Options::new(F, "", &options, CONNECT_OPTIONS)?;
        let bootstrap_url = o.required("bootstrapUrl")?;
        let bootstrap_url = validate::string(F, "option bootstrapUrl", &bootstrap_url)?;
        let bootstrap = BootstrapClient::new(&bootstrap_url).map_err(|_| {
            type_error(format!(
                "{F}: option bootstrapUrl must be an http:// or https:// URL, got {bootstrap_url:?}"
            ))
        })?;
        let signal_url = o.required("signalUrl")?;
        let signal_url = validate::string(F, "option signalUrl", &signal_url)?;
        let host = signal_url
            .strip_prefix("ws://")
            .or_else(|| signal_url.strip_prefix("wss://"));
        if host.is_none_or(|h| h.trim_end_matches('/').is_empty()) {
            return Err(type_error(format!(
                "{F}: option signalUrl must be a ws:// or wss:// URL, got {signal_url:?}"
            )));
        }
        let storage = storage_option(&o)?;
        let websocket = websocket_option(&o)?;
        sharing(&o, storage)?;
        let ice_servers = match o.get("iceServers")? {
            None => Vec::new(),
            Some(v) => ice_servers(F, &v)?,
        };
        let mut net = NetConfig {
            // No RTCPeerConnection (Node, some workers): relay-only, as if `relayOnly` were set.
            webrtc: !o.boolean("relayOnly")?.unwrap_or(false) && has_global("RTCPeerConnection"),
            ice_servers,
            ..NetConfig::default()
        };
        if let Some(ms) = o.timeout_ms("webrtcConnectTimeoutMs")? {
            net.webrtc_connect_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = o.integer("maxConnections", 1.0, MAX_CONNECTIONS)? {
            net.max_connections = n as usize;
        }
        let membership = membership_options(&o)?;
        let key = agent_key(&o).await?;
        // Only now that every option was accepted: a refused call changes nothing.
        if let Some(ctor) = websocket {
            crate::browser::sbd_ws::set_websocket_constructor(ctor);
        }
        let options = PeerOptions {
            bootstrap,
            signal_url,
            storage,
            net,
            poll: PollSchedule::default(),
            reconnect: ReconnectConfig::default(),
            membership,
        };
        Ok(Peer {
            state: Rc::new(PeerState {
                inner: Rc::new(BrowserPeer::new(key, options)),
                spaces: RefCell::default(),
                serial: Cell::new(0),
                closing: RefCell::default(),
            }),
        })
    }

    /// The work of [`Self::join`], a future of its own: that call hands it to [`promise`].
    async fn join_with(&self, space: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        const F: &str = "peer.join";
        let (name, asked) = join_args(&space, &options)?;
        let state = &self.state;
        if state.closed() {
            return Err(fennec_error(
                Code::Closed,
                format!("{F}: the peer was closed"),
            ));
        }
        let id = space_id_of(&name);
        let existing = state
            .spaces
            .borrow()
            .get(&id)
            .map(|e| (e.arc, e.joined.clone()));
        if let Some((arc, joined)) = existing {
            if asked.is_some_and(|a| a != arc) {
                return Err(fennec_error(
                    Code::Joined,
                    format!(
                        "{F}: space {name:?} is already joined with another arc; leave it \
                         first to join with a different one"
                    ),
                ));
            }
            return joined.await.map(|(space, _)| space);
        }
        let arc = asked.unwrap_or(DhtArc::FULL);
        let serial = state.serial.get() + 1;
        state.serial.set(serial);
        let joined = {
            let peer = Rc::downgrade(state);
            let inner = state.inner.clone();
            let id = id.clone();
            async move {
                let joined = inner
                    .join(id.clone(), arc)
                    .await
                    .map_err(|e| join_error(&name, &e))?;
                let s = SpaceState::new(joined, peer, id, serial);
                Ok((JsValue::from(Space { state: s.clone() }), s))
            }
            .boxed_local()
            .shared()
        };
        state.spaces.borrow_mut().insert(
            id.clone(),
            Entry {
                serial,
                arc,
                joined: joined.clone(),
            },
        );
        let result = joined.await;
        if result.is_err() {
            // A failed join is forgotten: a later join tries again.
            forget(&self.state, &id, serial);
        }
        result.map(|(space, _)| space)
    }

    /// The work of [`Self::close`], a future of its own: that call hands it to [`promise`].
    async fn close_all(&self) {
        let closing = self.state.closing.borrow().clone();
        let closing = match closing {
            Some(c) => c,
            None => {
                let entries: Vec<Entry> = self
                    .state
                    .spaces
                    .borrow_mut()
                    .drain()
                    .map(|(_, e)| e)
                    .collect();
                // Each leave runs as its own task, so they overlap; the outcomes are awaited
                // in order. Not `join_all`: that would bring `FuturesOrdered` into the
                // module for this one call.
                let left: Vec<oneshot::Receiver<()>> = entries
                    .into_iter()
                    .map(|e| {
                        let (done, left) = oneshot::channel();
                        // A joined space ends now, as at `space.leave()`; the task then
                        // awaits that same leave. One still joining is left once joined (a
                        // failed join has nothing to leave).
                        if let Some(Ok((_, s))) = e.joined.peek() {
                            drop(s.leave(Code::Closed));
                        }
                        spawn_local(async move {
                            if let Ok((_, s)) = e.joined.await {
                                s.leave(Code::Closed).await;
                            }
                            let _ = done.send(());
                        });
                        left
                    })
                    .collect();
                let c = async move {
                    for l in left {
                        // Canceled only if the task was dropped: nothing left to wait for.
                        let _ = l.await;
                    }
                }
                .boxed_local()
                .shared();
                *self.state.closing.borrow_mut() = Some(c.clone());
                c
            }
        };
        closing.await;
    }
}

/// The SWIM timing options of `Peer.connect` over [`MembershipConfig::default`]:
/// `probePeriodMs` (the probe timeout is half of it, as in the default and memberlist's LAN
/// config), `suspicionTimeoutMs` and `hiddenSuspicionTimeoutMs` (integers, [`RangeError`]
/// outside their bounds).
fn membership_options(o: &Options) -> Result<MembershipConfig, JsValue> {
    let mut cfg = MembershipConfig::default();
    if let Some(ms) = o.integer("probePeriodMs", 100.0, 60_000.0)? {
        cfg.probe_period = Duration::from_millis(ms as u64);
        cfg.probe_rtt = cfg.probe_period / 2;
    }
    if let Some(ms) = o.integer("suspicionTimeoutMs", 100.0, validate::MAX_TIMEOUT_MS)? {
        cfg.suspect_to_down_after = Duration::from_millis(ms as u64);
    }
    if let Some(ms) = o.integer("hiddenSuspicionTimeoutMs", 100.0, validate::MAX_TIMEOUT_MS)? {
        cfg.dozing_suspect_to_down_after = Duration::from_millis(ms as u64);
    }
    // The bounds above keep every field valid; checked still, so a later default that breaks
    // a rule is an error here rather than at the first join.
    cfg.validate()
        .map_err(|e| range_error(format!("Peer.connect: {e}")))?;
    Ok(cfg)
}

/// Removes the entry of `id` if it is still the join numbered `serial`.
fn forget(peer: &PeerState, id: &SpaceId, serial: u64) {
    let mut spaces = peer.spaces.borrow_mut();
    if spaces.get(id).is_some_and(|e| e.serial == serial) {
        spaces.remove(id);
    }
}

/// `BrowserPeer::join`'s error as a `FennecError`: code `"signal"` for the signal server,
/// `"store"` for the op store (and signing with this origin's key); invalid network options
/// (checked by `Peer.connect` already) are a `RangeError`.
fn join_error(space: &str, e: &JoinError) -> JsValue {
    let message = format!("peer.join: joining {space:?}: {e}");
    match e {
        JoinError::Signal { .. } => fennec_error(Code::Signal, message),
        JoinError::Store(_) | JoinError::Space(_) => fennec_error(Code::Store, message),
        JoinError::Config(_) => range_error(message),
    }
}

/// `iceServers`: an Array of `{ urls: string | string[], username?, credential? }`.
fn ice_servers(func: &str, v: &JsValue) -> Result<Vec<IceServer>, JsValue> {
    if !Array::is_array(v) {
        return Err(type_error(format!(
            "{func}: option iceServers must be an Array of {{ urls, username?, credential? }}, \
             got {}",
            describe(v)
        )));
    }
    let arr: &Array = v.unchecked_ref();
    let mut out = Vec::new();
    for (i, s) in arr.iter().enumerate() {
        let o = Options::new(func, &format!("iceServers[{i}]."), &s, ICE_SERVER_OPTIONS)?;
        let urls_v = o.required("urls")?;
        let urls = if let Some(u) = urls_v.as_string() {
            vec![u]
        } else if Array::is_array(&urls_v) {
            let list: &Array = urls_v.unchecked_ref();
            list.iter()
                .enumerate()
                .map(|(j, u)| validate::string(func, &format!("{}[{j}]", o.label("urls")), &u))
                .collect::<Result<_, _>>()?
        } else {
            return Err(type_error(format!(
                "{} must be a string or an Array of strings, got {}",
                o.name("urls"),
                describe(&urls_v)
            )));
        };
        out.push(IceServer {
            urls,
            username: o.string("username")?,
            credential: o.string("credential")?,
        });
    }
    Ok(out)
}

/// `arc`: "full", "empty" or `[start, end]` (integers in 0..=u32::MAX).
fn arc_option(o: &Options, v: &JsValue) -> Result<DhtArc, JsValue> {
    if let Some(s) = v.as_string() {
        return match s.as_str() {
            "full" => Ok(DhtArc::FULL),
            "empty" => Ok(DhtArc::Empty),
            _ => Err(type_error(format!(
                "{} must be \"full\", \"empty\" or [start, end], got {s:?}",
                o.name("arc")
            ))),
        };
    }
    let pair: Option<&Array> = v.dyn_ref::<Array>().filter(|a| a.length() == 2);
    let Some(pair) = pair else {
        return Err(type_error(format!(
            "{} must be \"full\", \"empty\" or [start, end], got {}",
            o.name("arc"),
            describe(v)
        )));
    };
    let bound = |i: u32| -> Result<u32, JsValue> {
        let b = pair.get(i);
        let f = b.as_f64().ok_or_else(|| {
            type_error(format!(
                "{}[{i}] must be a number, got {}",
                o.name("arc"),
                describe(&b)
            ))
        })?;
        if f.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&f) {
            return Err(range_error(format!(
                "{}[{i}] must be an integer from 0 to {}, got {f}",
                o.name("arc"),
                u32::MAX
            )));
        }
        Ok(f as u32)
    };
    let arc = DhtArc::Arc(bound(0)?, bound(1)?);
    if arc.is_sector_aligned() {
        return Ok(arc);
    }
    Err(range_error(format!(
        "{} must be whole sectors (start a multiple of 8388608 = 2^23, end 8388607 more than \
         a multiple), as Kitsune2's gossip requires; got {}, the smallest such arc holding it \
         is {}",
        o.name("arc"),
        arc_text(arc),
        arc_text(arc.sector_cover())
    )))
}

/// `arc` as `JoinOptions.arc` writes it: `"full"`, `"empty"` or `[start, end]`.
pub fn arc_value(arc: DhtArc) -> JsValue {
    match arc {
        DhtArc::Empty => "empty".into(),
        DhtArc::FULL => "full".into(),
        DhtArc::Arc(s, e) => Array::of2(&f64::from(s).into(), &f64::from(e).into()).into(),
    }
}

/// `[start, end]` as JavaScript writes it ("full" and "empty" for those).
fn arc_text(arc: DhtArc) -> String {
    match arc {
        DhtArc::FULL => "\"full\"".into(),
        DhtArc::Empty => "\"empty\"".into(),
        DhtArc::Arc(s, e) => format!("[{s}, {e}]"),
    }
}

/// The space id for a name or id string (see [`Peer::join`]).
pub fn space_id_of(s: &str) -> SpaceId {
    if let Ok(id) = SpaceId::from_b64(s)
        && s.len() == 43
        && id.as_bytes().len() == 32
    {
        return id;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"fennec-space:");
    h.update(s.as_bytes());
    SpaceId::from_bytes(h.finalize().as_bytes().to_vec())
}

type Handlers = Rc<RefCell<HashMap<&'static str, Vec<Function>>>>;

/// The state behind one `Space` object (shared with its peer, which leaves it on `close`).
struct SpaceState {
    inner: Rc<BrowserSpace>,
    handlers: Handlers,
    listener: Listener,
    peer: Weak<PeerState>,
    id: SpaceId,
    serial: u64,
    /// `Some(Left)` / `Some(Closed)` once `leave` / `close` started.
    ended: Cell<Option<Code>>,
    leaving: RefCell<Option<SharedWait>>,
}

impl SpaceState {
    fn new(inner: Rc<BrowserSpace>, peer: Weak<PeerState>, id: SpaceId, serial: u64) -> Rc<Self> {
        let handlers: Handlers = Rc::default();
        let h = handlers.clone();
        let senders = SenderStrings::default();
        let listener: Listener = Rc::new(move |e: &Event| {
            let Some(name) = dispatched_as(e) else { return };
            // No event is built for a name nobody listens to: a bulk sync emits one op
            // event per op.
            if h.borrow().get(name).is_none_or(Vec::is_empty) {
                return;
            }
            if let Some(obj) = event_object(e, &senders) {
                dispatch(&h, name, &obj);
            }
        });
        inner.subscribe(listener.clone());
        Rc::new(SpaceState {
            inner,
            handlers,
            listener,
            peer,
            id,
            serial,
            ended: Cell::new(None),
            leaving: RefCell::default(),
        })
    }

    /// `Err(FennecError)` once the space was left or its peer closed.
    fn check(&self, func: &str) -> Result<(), JsValue> {
        match self.ended.get() {
            None => Ok(()),
            Some(code) => Err(ended_error(code, func)),
        }
    }

    /// A runtime failure of `func`: the reason the space ended if it did, else `code`.
    fn failure(&self, func: &str, code: Code, e: impl std::fmt::Display) -> JsValue {
        match self.ended.get() {
            Some(ended) => ended_error(ended, func),
            None => fennec_error(code, format!("{func}: {e}")),
        }
    }

    /// Leaves once (`why`: `Left` or `Closed`). The space ends at this call: calls made
    /// after it are refused. Every call returns the same future, which resolves when the
    /// leave is done.
    fn leave(self: &Rc<Self>, why: Code) -> SharedWait {
        if let Some(l) = self.leaving.borrow().clone() {
            return l;
        }
        self.ended.set(Some(why));
        self.inner.unsubscribe(&self.listener);
        if let Some(peer) = self.peer.upgrade() {
            forget(&peer, &self.id, self.serial);
        }
        let inner = self.inner.clone();
        let l = async move { inner.leave().await }.boxed_local().shared();
        *self.leaving.borrow_mut() = Some(l.clone());
        l
    }
}

fn ended_error(code: Code, func: &str) -> JsValue {
    let what = match code {
        Code::Closed => "the peer was closed",
        _ => "the space was left",
    };
    fennec_error(code, format!("{func}: {what}"))
}

/// Calls every callback of `name` with `event`. A callback that throws does not stop the
/// others: its exception goes to `console.error` and, unless it came from an `error`
/// callback (no loops), to the `error` callbacks as `{ kind: "callback", event, message,
/// error }`.
fn dispatch(handlers: &Handlers, name: &'static str, event: &JsValue) {
    let fs = handlers.borrow().get(name).cloned().unwrap_or_default();
    for f in fs {
        if let Err(err) = f.call1(&JsValue::UNDEFINED, event) {
            let message = format!("fennec: a space.on({name:?}) callback threw");
            console_error(&message, &err);
            if name != "error" {
                let o = Object::new();
                set(&o, "kind", &"callback".into());
                set(&o, "event", &name.into());
                let detail = err
                    .dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
                    .or_else(|| err.as_string())
                    .unwrap_or_else(|| describe(&err));
                set(&o, "message", &format!("{message}: {detail}").into());
                set(&o, "error", &err);
                dispatch(handlers, "error", &o.into());
            }
        }
    }
}

/// A joined space: publish ops, read them, watch events.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Space {
    state: Rc<SpaceState>,
}

#[wasm_bindgen]
impl Space {
    /// The space id (base64url). Readable after `leave()`.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.state.inner.space_id().to_b64()
    }

    /// Our peer URL in this space. Readable after `leave()`.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.state.inner.url().to_string()
    }

    /// Publishes `payload` (`Bytes`: at most 1 048 567 bytes, copied) as an op; resolves with
    /// its id (base64url) once IndexedDB committed it (it is announced to peers after).
    /// `options.createdAt`: a `Date` or ms since the Unix epoch (default now).
    ///
    /// Rejects with a `TypeError` (payload not bytes, a bad or unknown option), a `RangeError`
    /// (too large, a time out of range), or a `FennecError` (`"left"`, `"closed"`, `"store"`).
    /// A rejected call stores nothing.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn publish(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Bytes")] payload: JsValue,
        #[wasm_bindgen(unchecked_param_type = "PublishOptions | undefined")] options: JsValue,
    ) -> Promise {
        let me = self.clone();
        promise(async move { me.publish_with(payload, options).await })
    }

    /// The payload of op `id` (a base64url op id), from this peer's store or, for an op
    /// outside its storage arc or while it is catching up after joining, from the peers whose
    /// arcs hold it (up to 3 asked at once); `undefined` if neither has it (for the network:
    /// no answer within 5 s). Rejects with a `TypeError` for anything but an op id, or a
    /// `FennecError` (`"left"`, `"closed"`, `"store"`).
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array | undefined>")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SignalOptions | undefined")] options: JsValue,
    ) -> Promise {
        let me = self.clone();
        promise(async move { me.get_with(id, options).await })
    }

    /// The ops this peer holds (its store; the network is not asked), ordered by `createdAt`
    /// then id: `[{ id, createdAt, payload }]` (`HeldOp`, `createdAt` in ms).
    /// `options.from`/`options.to` (a `Date` or ms since the Unix epoch) keep those created in
    /// `[from, to)` (`from >= to` gives `[]`); `newestFirst` reverses the order; `after` (the
    /// last `HeldOp` of the page before) and `limit` read pages (`OpsOptions`). For an app's
    /// history after a reload. Rejects with a `TypeError` (a bad or unknown option), a
    /// `RangeError` (a time or limit out of range), or a `FennecError` (`"left"`, `"closed"`,
    /// `"store"`).
    #[wasm_bindgen(unchecked_return_type = "Promise<HeldOp[]>")]
    pub fn ops(
        &self,
        #[wasm_bindgen(unchecked_param_type = "OpsOptions | undefined")] options: JsValue,
    ) -> Promise {
        let me = self.clone();
        promise(async move { me.ops_with(options).await })
    }

    /// Publishes every item of `items` (an Array of `Bytes` or `{ payload, createdAt? }`,
    /// each as [`Self::publish`] checks it) in one store write, one IndexedDB transaction;
    /// resolves with their op ids in order once it committed. All or nothing: an invalid item
    /// (a `TypeError`/`RangeError` naming `items[i]`) stores none, and a failed write fails
    /// them all (`FennecError` `"store"`).
    #[wasm_bindgen(js_name = publishMany, unchecked_return_type = "Promise<string[]>")]
    pub fn publish_many(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PublishItem[]")] items: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SignalOptions | undefined")] options: JsValue,
    ) -> Promise {
        let me = self.clone();
        promise(async move { me.publish_many_with(items, options).await })
    }

    /// Sends `data` (`Bytes`, at most 1 MiB) to the peer agent `agent` of this space
    /// (Kitsune2's `send_notify`); it gets a `message` event. Best effort: resolves once the
    /// connection took the message, which may still be lost (the peer's page closes, the
    /// connection drops); no acknowledgement, no retry, no order across reconnects.
    ///
    /// Rejects with a `TypeError` (agent not an agent id, data not bytes), a `RangeError`
    /// (data too large), or a `FennecError`: `"unreachable"` (no live peer with that agent
    /// id is known, it is down, it is this peer, or sending failed), `"left"`, `"closed"`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] agent: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Bytes")] data: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SignalOptions | undefined")] options: JsValue,
    ) -> Promise {
        let me = self.clone();
        promise(async move {
            me.send_with(agent, data, options)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Calls `callback(event)` for each `"op"` (`OpEvent`), `"peer"` (`PeerEvent`) or
    /// `"error"` (`ErrorEvent`). Adding the same callback twice adds it once (as
    /// `addEventListener`). A callback that throws is reported (`console.error` and an
    /// `error` event of kind `"callback"`); the others still run.
    ///
    /// Throws a `TypeError` for an unknown event name or a `callback` that is not a function,
    /// a `FennecError` (`"left"`, `"closed"`) after the space ended.
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SpaceEventName")] event: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: never) => void")] callback: JsValue,
    ) -> Result<(), JsValue> {
        const F: &str = "space.on";
        let name = event_name(F, &event)?;
        let callback = function(F, &callback)?;
        self.state.check(F)?;
        let mut handlers = self.state.handlers.borrow_mut();
        let list = handlers.entry(name).or_default();
        if !list.contains(&callback) {
            list.push(callback);
        }
        Ok(())
    }

    /// Removes a callback added with `on`. Throws a `TypeError` for an unknown event name or
    /// a non-function; after the space ended it does nothing (clean-up code may call it).
    pub fn off(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SpaceEventName")] event: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: never) => void")] callback: JsValue,
    ) -> Result<(), JsValue> {
        const F: &str = "space.off";
        let name = event_name(F, &event)?;
        let callback = function(F, &callback)?;
        if let Some(v) = self.state.handlers.borrow_mut().get_mut(name) {
            v.retain(|f| f != &callback);
        }
        Ok(())
    }

    /// Known live peers: `[{ agent, url, state, path, arc }]` (`PeerInfo`): `state` is
    /// `"alive"` or `"suspect"` (SWIM); `path` is `"webrtc"`, `"relay"` or `null` when no
    /// connection is open; `arc` is the storage arc of its latest agent info (`"full"`,
    /// `"empty"` or `[start, end]`, as `JoinOptions.arc`), `null` before one was seen. A peer
    /// reported `down` or `left` is not listed until it is `alive` again.
    /// Throws a `FennecError` (`"left"`, `"closed"`) after the space ended.
    #[wasm_bindgen(unchecked_return_type = "PeerInfo[]")]
    pub fn peers(&self) -> Result<Array, JsValue> {
        self.state.check("space.peers")?;
        Ok(self
            .state
            .inner
            .peers()
            .into_iter()
            .map(|p| {
                let o = Object::new();
                set(&o, "agent", &p.agent.to_b64().into());
                set(
                    &o,
                    "url",
                    &p.url
                        .map(|u| JsValue::from(u.to_string()))
                        .unwrap_or(JsValue::NULL),
                );
                let state = match p.state {
                    Liveness::Alive => "alive",
                    Liveness::Suspect => "suspect",
                };
                set(&o, "state", &state.into());
                let path = match p.path {
                    Some(Path::WebRtc) => JsValue::from("webrtc"),
                    Some(Path::Relay) => JsValue::from("relay"),
                    None => JsValue::NULL,
                };
                set(&o, "path", &path);
                set(&o, "arc", &p.arc.map_or(JsValue::NULL, arc_value));
                JsValue::from(o)
            })
            .collect())
    }

    /// Ops held, bytes moved, peers known, and the transport's counters (`SpaceStats`;
    /// `net` says how malformed or hostile traffic from other peers was dealt with). Rejects
    /// with a `FennecError` (`"left"`, `"closed"`, `"store"`).
    #[wasm_bindgen(unchecked_return_type = "Promise<SpaceStats>")]
    pub fn stats(&self) -> Promise {
        let me = self.clone();
        promise(async move { me.stats_with().await })
    }

    /// Leaves the space: a tombstone goes to peers and the bootstrap server, the DHT model's
    /// unwritten hashes are written (the next join loads the model without a rebuild), then
    /// connections and the store close, callbacks stop. Idempotent: later calls resolve when
    /// the first one is done. Afterwards calls reject with `FennecError` code `"left"`, and
    /// `peer.join` of this space joins afresh (a new `Space`).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self) -> Promise {
        let leaving = self.state.leave(Code::Left);
        promise(async move {
            leaving.await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl Space {
    /// The work of [`Self::publish`], a future of its own: that call hands it to [`promise`].
    async fn publish_with(&self, payload: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        const F: &str = "space.publish";
        let op = publish_args(&payload, &options)?;
        self.state.check(F)?;
        let id = self
            .state
            .inner
            .publish(op)
            .await
            .map_err(|e| self.state.failure(F, Code::Store, e))?;
        Ok(id.to_b64().into())
    }

    /// The work of [`Self::get`], a future of its own: that call hands it to [`promise`].
    async fn get_with(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        const F: &str = "space.get";
        let id = op_id_arg(&id)?;
        get_options(&options)?;
        self.state.check(F)?;
        let op = match self.state.inner.get(id).await {
            Ok(op) => op,
            Err(Some(e)) => return Err(self.state.failure(F, Code::Store, e)),
            Err(None) => return Err(self.state.failure(F, Code::Left, "the space was left")),
        };
        Ok(op
            .map(|op| Uint8Array::from(&op.payload[..]).into())
            .unwrap_or(JsValue::UNDEFINED))
    }

    /// The work of [`Self::ops`], a future of its own: that call hands it to [`promise`].
    async fn ops_with(&self, options: JsValue) -> Result<JsValue, JsValue> {
        const F: &str = "space.ops";
        let q = ops_args(&options)?;
        self.state.check(F)?;
        let ops = self
            .state
            .inner
            .held_ops(&q)
            .await
            .map_err(|e| self.state.failure(F, Code::Store, e))?;
        Ok(ops
            .iter()
            .map(|(id, op)| {
                let o = Object::new();
                set(&o, "id", &id.to_b64().into());
                set(&o, "createdAt", &validate::to_ms(op.created_at).into());
                set(&o, "payload", &Uint8Array::from(&op.payload[..]).into());
                JsValue::from(o)
            })
            .collect::<Array>()
            .into())
    }

    /// The work of [`Self::publish_many`], a future of its own: that call hands it to [`promise`].
    async fn publish_many_with(
        &self,
        items: JsValue,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        const F: &str = "space.publishMany";
        let ops = publish_many_args(&items, &options)?;
        self.state.check(F)?;
        let ids = self
            .state
            .inner
            .publish_many(ops)
            .await
            .map_err(|e| self.state.failure(F, Code::Store, e))?;
        Ok(ids
            .iter()
            .map(|id| JsValue::from(id.to_b64()))
            .collect::<Array>()
            .into())
    }

    /// The work of [`Self::send`], a future of its own: that call hands it to [`promise`].
    async fn send_with(
        &self,
        agent: JsValue,
        data: JsValue,
        options: JsValue,
    ) -> Result<(), JsValue> {
        const F: &str = "space.send";
        let (agent, data) = send_args(&agent, &data, &options)?;
        self.state.check(F)?;
        match self.state.inner.send(agent, data.into()).await {
            Ok(()) => Ok(()),
            Err(Some(NotifyFailed::Refused(NotifyError::Left))) | Err(None) => {
                Err(self.state.failure(F, Code::Left, "the space was left"))
            }
            Err(Some(e)) => Err(self.state.failure(F, Code::Unreachable, e)),
        }
    }

    /// The work of [`Self::stats`], a future of its own: that call hands it to [`promise`].
    async fn stats_with(&self) -> Result<JsValue, JsValue> {
        const F: &str = "space.stats";
        self.state.check(F)?;
        let s = self
            .state
            .inner
            .stats()
            .await
            .map_err(|e| self.state.failure(F, Code::Store, e))?;
        let o = Object::new();
        set_numbers(
            &o,
            [
                ("ops", s.ops),
                ("opBytes", s.op_bytes),
                ("txBytes", s.tx_bytes),
                ("rxBytes", s.rx_bytes),
                ("peers", s.peers as u64),
                ("connections", s.connections as u64),
                ("unannounced", s.unannounced as u64),
            ],
        );
        let by = Object::new();
        set_numbers(
            &by,
            crate::browser::peer::RX_KINDS
                .into_iter()
                .zip(s.rx_bytes_by_kind),
        );
        set(&o, "rxBytesByKind", &by.into());
        set(&o, "status", &status_object(&s.status));
        let n = Object::new();
        set_numbers(
            &n,
            [
                ("malformedSignals", s.net.malformed_signals),
                ("protocolCloses", s.net.conn.protocol_closes),
                ("staleFrames", s.net.conn.stale_frames),
                ("fallbacks", s.net.conn.fallbacks),
                ("glareRestarts", s.net.conn.glare_restarted),
                ("messagesReceived", s.net.conn.messages_received),
                ("rtcCmdsOverflow", s.net.rtc_cmds_overflow),
                (
                    "preflightAgentsRejected",
                    s.net.conn.preflight_agents_rejected,
                ),
                ("datagramsSent", s.net.datagrams_sent),
                ("datagramsReceived", s.net.conn.datagrams_received),
                (
                    "datagramsDropped",
                    s.net.datagrams_dropped + s.net.conn.datagrams_early,
                ),
            ],
        );
        set(&o, "net", &n.into());
        let summary = s.summary.as_ref();
        let g = summary.map_or(JsValue::NULL, |s| gossip_object(&s.gossip));
        set(&o, "gossip", &g);
        let d = summary.map_or(JsValue::NULL, |s| delivery_object(&s.counters));
        set(&o, "delivery", &d);
        Ok(o.into())
    }
}

/// `peer.join`'s arguments: the space name (or id string) and the `arc` option if given. A
/// `TypeError`/`RangeError` as [`Peer::join`] documents.
pub(super) fn join_args(
    space: &JsValue,
    options: &JsValue,
) -> Result<(String, Option<DhtArc>), JsValue> {
    const F: &str = "peer.join";
    let name = validate::string(F, "space", space)?;
    if name.is_empty() {
        return Err(range_error(format!(
            "{F}: space must be a name or a space id, got the empty string"
        )));
    }
    let o = Options::new(F, "", options, JOIN_OPTIONS)?;
    o.signal("signal")?;
    let asked = match o.get("arc")? {
        None => None,
        Some(v) => Some(arc_option(&o, &v)?),
    };
    Ok((name, asked))
}

/// `space.publish`'s arguments as the op to store (`createdAt` defaults to now). A
/// `TypeError`/`RangeError` as [`Space::publish`] documents.
pub(super) fn publish_args(payload: &JsValue, options: &JsValue) -> Result<Op, JsValue> {
    const F: &str = "space.publish";
    let payload = validate::bytes(F, "payload", payload)?;
    if payload.len() > MAX_OP_PAYLOAD_BYTES {
        return Err(range_error(format!(
            "{F}: payload is {} bytes; an op payload is at most {MAX_OP_PAYLOAD_BYTES} bytes",
            payload.len()
        )));
    }
    let o = Options::new(F, "", options, PUBLISH_OPTIONS)?;
    o.signal("signal")?;
    let created_at = o
        .time("createdAt")?
        .unwrap_or_else(crate::browser::clock::now);
    Op::new(created_at, payload).map_err(|e| range_error(format!("{F}: {e}")))
}

/// `space.publishMany`'s arguments as the ops to store, in order: `items` an Array whose
/// entries are `Bytes` or `{ payload, createdAt? }` (`createdAt` defaulting to now, the same
/// for the whole call). A `TypeError`/`RangeError` naming `items[i]` as
/// [`Space::publish_many`] documents; nothing is stored then.
pub(super) fn publish_many_args(items: &JsValue, options: &JsValue) -> Result<Vec<Op>, JsValue> {
    const F: &str = "space.publishMany";
    Options::new(F, "", options, SIGNAL_OPTIONS)?.signal("signal")?;
    let Some(items) = items.dyn_ref::<Array>() else {
        return Err(type_error(format!(
            "{F}: items must be an Array of Bytes or {{ payload, createdAt? }}, got {}",
            describe(items)
        )));
    };
    let now = crate::browser::clock::now();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| publish_item(F, i, &item, now))
        .collect()
}

/// One `publishMany` item (see [`publish_many_args`]).
fn publish_item(f: &str, i: usize, item: &JsValue, now: Timestamp) -> Result<Op, JsValue> {
    let name = format!("items[{i}]");
    let is_bytes = ArrayBuffer::is_view(item) || item.is_instance_of::<ArrayBuffer>();
    let (payload, created_at) = if is_bytes {
        (validate::bytes(f, &name, item)?, now)
    } else {
        if item.is_undefined() || item.is_null() {
            return Err(type_error(format!(
                "{f}: {name} must be Bytes or {{ payload, createdAt? }}, got {}",
                describe(item)
            )));
        }
        let o = Options::new(f, &format!("{name}."), item, ITEM_OPTIONS)?;
        let payload = o.required("payload")?;
        let payload = validate::bytes(f, &format!("{name}.payload"), &payload)?;
        (payload, o.time("createdAt")?.unwrap_or(now))
    };
    if payload.len() > MAX_OP_PAYLOAD_BYTES {
        return Err(range_error(format!(
            "{f}: {name} is {} bytes; an op payload is at most {MAX_OP_PAYLOAD_BYTES} bytes",
            payload.len()
        )));
    }
    Op::new(created_at, payload).map_err(|e| range_error(format!("{f}: {name}: {e}")))
}

/// `space.send`'s arguments: the agent id and the bytes. A `TypeError` for an agent that is
/// not an agent id or data that is not `Bytes`, a `RangeError` for data over
/// [`MAX_NOTIFY_BYTES`] bytes.
pub(super) fn send_args(
    agent: &JsValue,
    data: &JsValue,
    options: &JsValue,
) -> Result<(AgentId, Vec<u8>), JsValue> {
    const F: &str = "space.send";
    let s = validate::string(F, "agent", agent)?;
    let agent = AgentId::from_b64(&s)
        .ok()
        .filter(|a| a.as_bytes().len() == 32)
        .ok_or_else(|| {
            type_error(format!(
                "{F}: agent must be an agent id (base64url of 32 bytes), got {s:?}"
            ))
        })?;
    let data = validate::bytes(F, "data", data)?;
    if data.len() > MAX_NOTIFY_BYTES {
        return Err(range_error(format!(
            "{F}: data is {} bytes; a message is at most {MAX_NOTIFY_BYTES} bytes",
            data.len()
        )));
    }
    Options::new(F, "", options, SIGNAL_OPTIONS)?.signal("signal")?;
    Ok((agent, data))
}

/// `space.ops`'s options as the query they ask for: `from`/`to` in µs (the widest range
/// when not given), `newestFirst`, `after` (`{ id, createdAt }`: the last `HeldOp` of the
/// page before or an `op` event, whose other members are not read) and `limit` (an integer
/// from 0 to 2³² − 1). Throws its `TypeError`/`RangeError`.
pub(super) fn ops_args(options: &JsValue) -> Result<HeldOpsQuery, JsValue> {
    const F: &str = "space.ops";
    let o = Options::new(F, "", options, OPS_OPTIONS)?;
    o.signal("signal")?;
    let after = match o.get("after")? {
        None => None,
        Some(v) => {
            // An op as it is (`HeldOp`, an `op` event): only these two members are read.
            let a = Options::record(F, "after.", &v)?;
            let id = op_id(F, &a.label("id"), &a.required("id")?)?;
            let at = validate::time_ms(F, &a.label("createdAt"), &a.required("createdAt")?)?;
            Some((at, id))
        }
    };
    Ok(HeldOpsQuery {
        start: o.time("from")?.unwrap_or(HeldOpsQuery::ALL.start),
        end: o.time("to")?.unwrap_or(HeldOpsQuery::ALL.end),
        newest_first: o.boolean("newestFirst")?.unwrap_or(false),
        after,
        limit: o
            .integer("limit", 0.0, f64::from(u32::MAX))?
            .map(|n| n as usize),
    })
}

/// `space.get`'s options: only `signal` (checked).
pub(super) fn get_options(options: &JsValue) -> Result<(), JsValue> {
    Options::new("space.get", "", options, SIGNAL_OPTIONS)?.signal("signal")?;
    Ok(())
}

/// `space.get`'s argument: an op id (base64url of [`OP_ID_BYTES`] bytes), else a `TypeError`.
pub(super) fn op_id_arg(id: &JsValue) -> Result<OpId, JsValue> {
    op_id("space.get", "id", id)
}

/// An op id argument `name` of `func` (base64url of [`OP_ID_BYTES`] bytes), else a
/// `TypeError`.
fn op_id(func: &str, name: &str, v: &JsValue) -> Result<OpId, JsValue> {
    let s = validate::string(func, name, v)?;
    OpId::from_b64(&s)
        .ok()
        .filter(|id| id.as_bytes().len() == OP_ID_BYTES)
        .ok_or_else(|| {
            type_error(format!(
                "{func}: {name} must be an op id (base64url of {OP_ID_BYTES} bytes), got {s:?}"
            ))
        })
}

/// Whether the global scope has a function (a constructor) named `name`.
fn has_global(name: &str) -> bool {
    Reflect::get(&js_sys::global(), &name.into()).is_ok_and(|v| v.is_function())
}

/// Whether the global scope has `indexedDB` (windows and workers do; Node does not).
fn has_indexed_db() -> bool {
    Reflect::get(&js_sys::global(), &"indexedDB".into()).is_ok_and(|v| v.is_object())
}

/// The `storage` option of `Peer.connect`: default "indexeddb" where the scope has
/// `indexedDB` (windows, workers), else "memory" (Node); "indexeddb" where it has none is a
/// `TypeError` (it could only fail at `join`).
fn storage_option(o: &Options) -> Result<Storage, JsValue> {
    let idb = has_indexed_db();
    match o.string("storage")?.as_deref() {
        None if idb => Ok(Storage::IndexedDb),
        None => Ok(Storage::Memory),
        Some("indexeddb") if idb => Ok(Storage::IndexedDb),
        Some("indexeddb") => Err(type_error(format!(
            "{} \"indexeddb\" needs IndexedDB, which this scope lacks (Node?): use \"memory\"",
            o.name("storage")
        ))),
        Some("memory") => Ok(Storage::Memory),
        Some(other) => Err(type_error(format!(
            "{} must be \"indexeddb\" or \"memory\", got {other:?}",
            o.name("storage")
        ))),
    }
}

/// The `WebSocket` option of `Peer.connect`: a constructor, for the sbd connections of every
/// later join in this wasm instance (`Peer.connect` hands it to
/// [`crate::browser::sbd_ws::set_websocket_constructor`] once every option was accepted).
/// Without it the global `WebSocket` is used; a scope that has none (Node 20) is a `TypeError`
/// naming the option, at once rather than at `join`.
fn websocket_option(o: &Options) -> Result<Option<Function>, JsValue> {
    match o.get("WebSocket")? {
        Some(f) => f.dyn_into().map(Some).map_err(|v| {
            type_error(format!(
                "{} must be a WebSocket constructor (a function), got {}",
                o.name("WebSocket"),
                describe(&v)
            ))
        }),
        None if crate::browser::sbd_ws::websocket_constructor().is_some() => Ok(None),
        None => Err(type_error(format!(
            "{} is required here: this scope has no global WebSocket (Node 20); pass a \
             WHATWG-shaped class, e.g. the `ws` package's",
            o.name("WebSocket")
        ))),
    }
}

/// The agent key of `Peer.connect`: option `agentKey` (32 bytes), else this origin's key kept
/// in IndexedDB, else (no IndexedDB: Node) a fresh random key, a new agent on every connect.
async fn agent_key(o: &Options) -> Result<AgentKey, JsValue> {
    if let Some(bytes) = o.bytes("agentKey")? {
        let secret: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            range_error(format!(
                "{} must be 32 bytes (an ed25519 secret key), got {}",
                o.name("agentKey"),
                b.len()
            ))
        })?;
        return Ok(AgentKey::from_secret_bytes(&secret));
    }
    if !has_indexed_db() {
        return AgentKey::generate().map_err(|e| {
            fennec_error(
                Code::Store,
                format!("Peer.connect: generating an agent key: {e}"),
            )
        });
    }
    crate::browser::keystore::load_or_create_agent_key()
        .await
        .map_err(|e| {
            fennec_error(
                Code::Store,
                format!("Peer.connect: loading this origin's agent key: {e}"),
            )
        })
}

/// The `sharing` option of `Peer.connect`: `"profile"` or `"tab"` (the package entry acts on
/// it, src/js/profile/); a profile-shared node keeps its ops in IndexedDB, so `"profile"` with
/// `storage: "memory"` is a `TypeError` (a failover would lose acknowledged ops).
fn sharing(o: &Options, storage: Storage) -> Result<(), JsValue> {
    match o.string("sharing")?.as_deref() {
        None | Some("tab") => Ok(()),
        Some("profile") if matches!(storage, Storage::Memory) => Err(type_error(format!(
            "{} \"profile\" needs storage \"indexeddb\": the tabs of a profile share one \
             node, and another tab takes over its ops from IndexedDB",
            o.name("sharing")
        ))),
        Some("profile") => Ok(()),
        Some(other) => Err(type_error(format!(
            "{} must be \"profile\" or \"tab\", got {other:?}",
            o.name("sharing")
        ))),
    }
}

/// The event names of `space.on` (for the package entry's follower tabs).
pub(super) fn event_names() -> &'static [&'static str] {
    EVENTS
}

/// An event name of `space.on`/`off`: a `TypeError` for a non-string or an unknown name.
pub(super) fn event_name(func: &str, v: &JsValue) -> Result<&'static str, JsValue> {
    let s = validate::string(func, "event", v)?;
    if let Some(name) = EVENTS.iter().find(|e| **e == s) {
        return Ok(name);
    }
    let hint = match suggest(&s, EVENTS) {
        Some(near) => format!("did you mean {near:?}? "),
        None => String::new(),
    };
    Err(type_error(format!(
        "{func}: unknown event {s:?}; {hint}events: {}",
        EVENTS.join(", ")
    )))
}

/// A callback: a `TypeError` for anything but a function.
pub(super) fn function(func: &str, v: &JsValue) -> Result<Function, JsValue> {
    v.dyn_ref::<Function>().cloned().ok_or_else(|| {
        type_error(format!(
            "{func}: callback must be a function, got {}",
            describe(v)
        ))
    })
}

/// An agent id as JavaScript sees it: its base64url string, or `null`.
fn agent_or_null(a: Option<&AgentId>) -> JsValue {
    a.map(|a| JsValue::from(a.to_b64()))
        .unwrap_or(JsValue::NULL)
}

// An `OpEvent` built in one crossing: a bulk sync emits one per op, and setting its five
// properties from wasm cost five crossings and five key strings decoded per event (about a
// tenth of a syncing tab's main-thread time).
#[wasm_bindgen(
    inline_js = "export function opEvent(id, createdAt, payload, from, fromUrl) { \
    return { id, createdAt, payload, from, fromUrl }; }"
)]
extern "C" {
    #[wasm_bindgen(js_name = opEvent)]
    fn op_event(
        id: &str,
        created_at: f64,
        payload: &Uint8Array,
        from: &JsValue,
        from_url: &JsValue,
    ) -> JsValue;
}

fn set(o: &Object, k: &str, v: &JsValue) {
    // Setting a plain property on a fresh Object cannot fail.
    let _ = Reflect::set(o, &k.into(), v);
}

/// A `StatusEvent`: `{ state, attempt, nextRetryMs?, reason? }`.
fn status_object(s: &LinkStatus) -> JsValue {
    let o = Object::new();
    set(&o, "state", &s.state.as_str().into());
    set(&o, "attempt", &f64::from(s.attempt).into());
    if let Some(ms) = s.next_retry_ms {
        set(&o, "nextRetryMs", &(ms as f64).into());
    }
    if let Some(r) = &s.reason {
        set(&o, "reason", &r.as_str().into());
    }
    o.into()
}

/// The last op sender's `fromUrl` and `from` as JavaScript strings, for the next op event
/// from it: a bulk sync's op events come in runs from one sender, and every string made
/// anew is one more UTF-8 decode in the glue (with the op id's, 0.17 s of a tab's main
/// thread over 10 000 op events in the 8-tab job).
#[derive(Default)]
struct SenderStrings(RefCell<Option<LastSender>>);

/// A sender's URL and agent, and their JavaScript strings.
type LastSender = (Url, Option<AgentId>, JsValue, JsValue);

impl SenderStrings {
    /// `(fromUrl, from)` for an op from `url`, sent by `agent` (`null` if unknown).
    fn get(&self, url: &Url, agent: Option<&AgentId>) -> (JsValue, JsValue) {
        let mut last = self.0.borrow_mut();
        if let Some((u, a, url_js, agent_js)) = last.as_ref()
            && u == url
            && a.as_ref() == agent
        {
            return (url_js.clone(), agent_js.clone());
        }
        let url_js = JsValue::from(url.as_ref());
        let agent_js = agent_or_null(agent);
        *last = Some((
            url.clone(),
            agent.cloned(),
            url_js.clone(),
            agent_js.clone(),
        ));
        (url_js, agent_js)
    }
}

/// The `space.on` name an event is dispatched under (one of [`EVENTS`]), or `None` for
/// the events JavaScript does not see.
fn dispatched_as(e: &Event) -> Option<&'static str> {
    let e = match e {
        Event::Space(e) => e,
        Event::Status(_) => return Some("status"),
        Event::Failure(_) => return Some("error"),
    };
    Some(match e {
        SpaceEvent::OpReceived { .. } => "op",
        SpaceEvent::Notified { .. } => "message",
        SpaceEvent::Sync(_) => "sync",
        SpaceEvent::PeerJoined { .. }
        | SpaceEvent::PeerLeft { .. }
        | SpaceEvent::MemberSuspect { .. }
        | SpaceEvent::MemberDown { .. }
        | SpaceEvent::MemberAlive { .. }
        | SpaceEvent::MemberLeft { .. }
        | SpaceEvent::PeerMisbehaved { .. } => "peer",
        SpaceEvent::FetchFailed { .. } | SpaceEvent::StoreFailed { .. } | SpaceEvent::Error(_) => {
            "error"
        }
        _ => return None,
    })
}

/// The JavaScript object of an event [`dispatched_as`] names (`OpEvent`, `PeerEvent`, ...
/// of the TypeScript section above); `None` for the others.
fn event_object(e: &Event, senders: &SenderStrings) -> Option<JsValue> {
    let e = match e {
        Event::Space(e) => e,
        Event::Status(s) => return Some(status_object(s)),
        Event::Failure(f) => {
            let o = Object::new();
            let (kind, message) = match f {
                Failure::Bootstrap(m) => ("bootstrap", m),
                Failure::Signal(m) => ("signal", m),
            };
            set(&o, "kind", &kind.into());
            set(&o, "message", &message.as_str().into());
            return Some(o.into());
        }
    };
    // The bulk event first: it needs no Object of its own.
    if let SpaceEvent::OpReceived {
        op_id,
        op,
        from,
        agent,
    } = e
    {
        let (from_url, from_agent) = senders.get(from, agent.as_ref());
        return Some(op_event(
            &op_id.to_b64(),
            validate::to_ms(op.created_at),
            &Uint8Array::from(&op.payload[..]),
            &from_agent,
            &from_url,
        ));
    }
    let o = Object::new();
    match e {
        SpaceEvent::Notified { agent, from, data } => {
            set(&o, "from", &agent_or_null(agent.as_ref()));
            set(&o, "fromUrl", &from.to_string().into());
            set(&o, "data", &Uint8Array::from(&data[..]).into());
        }
        SpaceEvent::Sync(p) => {
            set(&o, "missing", &(p.missing as f64).into());
            set(&o, "fetched", &(p.fetched as f64).into());
            set(&o, "failed", &(p.failed as f64).into());
            set(&o, "remaining", &(p.remaining as f64).into());
        }
        SpaceEvent::PeerJoined { agent, url } => {
            set(&o, "kind", &"joined".into());
            set(&o, "agent", &agent.to_b64().into());
            if let Some(u) = url {
                set(&o, "url", &u.to_string().into());
            }
        }
        SpaceEvent::PeerLeft { agent } => {
            set(&o, "kind", &"left".into());
            set(&o, "agent", &agent.to_b64().into());
        }
        SpaceEvent::MemberSuspect { agent, url }
        | SpaceEvent::MemberDown { agent, url }
        | SpaceEvent::MemberAlive { agent, url }
        | SpaceEvent::MemberLeft { agent, url } => {
            let kind = match e {
                SpaceEvent::MemberSuspect { .. } => "suspect",
                SpaceEvent::MemberDown { .. } => "down",
                SpaceEvent::MemberAlive { .. } => "alive",
                _ => "left",
            };
            set(&o, "kind", &kind.into());
            set(&o, "agent", &agent.to_b64().into());
            if let Some(u) = url {
                set(&o, "url", &u.to_string().into());
            }
        }
        SpaceEvent::PeerMisbehaved { peer, reason } => {
            set(&o, "kind", &"misbehaved".into());
            set(&o, "url", &peer.to_string().into());
            set(&o, "reason", &reason.as_str().into());
        }
        SpaceEvent::FetchFailed {
            op_id,
            attempts,
            reason,
        } => {
            set(&o, "kind", &"fetch".into());
            set(&o, "id", &op_id.to_b64().into());
            set(
                &o,
                "message",
                &format!("gave up after {attempts} attempts: {reason:?}").into(),
            );
        }
        SpaceEvent::StoreFailed { error } => {
            set(&o, "kind", &"store".into());
            set(&o, "message", &error.to_string().into());
        }
        SpaceEvent::Error(error) => {
            let kind = match error {
                SpaceError::Sign(_) => "sign",
                SpaceError::PublishPoolFull { .. } => "announce",
                // The DHT model could not be read from the store at start.
                SpaceError::ModelLoad(_) => "store",
            };
            set(&o, "kind", &kind.into());
            set(&o, "message", &error.to_string().into());
        }
        _ => return None,
    }
    Some(o.into())
}

/// `space.stats().delivery` (the `DeliveryStats` type of the TypeScript section above).
fn delivery_object(c: &crate::core::space::SpaceStats) -> JsValue {
    let o = Object::new();
    set_numbers(
        &o,
        [
            ("published", c.ops_published),
            ("received", c.ops_received),
            ("served", c.ops_served),
            ("servedFromMemory", c.ops_served_from_memory),
            ("pushed", c.ops_pushed),
            ("pushedTaken", c.pushed_taken),
            ("pushedDeferred", c.pushed_deferred),
            ("pushedDropped", c.pushed_dropped),
            ("introduced", c.ops_introduced),
        ],
    );
    o.into()
}

/// Sets each `(name, count)` on `o` as a JS number (exact up to 2^53).
fn set_numbers<'a>(o: &Object, pairs: impl IntoIterator<Item = (&'a str, u64)>) {
    for (k, v) in pairs {
        set(o, k, &(v as f64).into());
    }
}

/// `space.stats().gossip` (the `GossipStats` type of the TypeScript section above).
fn gossip_object(g: &crate::core::space::GossipSummary) -> JsValue {
    use crate::core::gossip::DiffKind;
    use crate::model::id::Id;
    let o = Object::new();
    let st = g.stats;
    set_numbers(
        &o,
        [
            ("initiated", st.initiated),
            ("accepted", st.accepted),
            ("completed", st.completed),
            ("busyReceived", st.busy_received),
            ("busySent", st.busy_sent),
            ("timedOut", st.timed_out),
            ("refused", st.refused),
            ("idsToFetch", st.ids_to_fetch),
            ("reconciledBySketch", st.reconciled_by_sketch),
            ("reconciledByList", st.reconciled_by_list),
            ("reconcileGaveUp", st.reconcile_gave_up),
            ("deferred", g.deferred),
            ("opCount", g.op_count),
        ],
    );
    let diff = match g.last_diff {
        DiffKind::None => "none",
        DiffKind::CannotCompare => "cannotCompare",
        DiffKind::Disc => "disc",
        DiffKind::Ring => "ring",
        DiffKind::Reconciled => "reconciled",
    };
    set(&o, "lastDiff", &diff.into());
    let at = g
        .last_round_at
        .map_or(JsValue::NULL, |t| (t.as_micros() as f64 / 1000.0).into());
    set(&o, "lastRoundAt", &at);
    set(&o, "intervalMs", &(g.interval.as_millis() as f64).into());
    let hash = |b: &bytes::Bytes| JsValue::from(Id::from_bytes(b.clone()).to_string());
    set(&o, "discTopHash", &hash(&g.disc_top_hash));
    let rings = Array::new();
    for h in &g.ring_top_hashes {
        rings.push(&hash(h));
    }
    set(&o, "ringTopHashes", &rings.into());
    o.into()
}
