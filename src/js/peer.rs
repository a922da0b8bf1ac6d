//! `Peer` and `Space` for JavaScript: options validated with errors that name the option,
//! events as plain objects, promises for everything that waits. Thin over [`crate::browser::peer`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::browser::peer::{BrowserPeer, BrowserSpace, Listener, PeerOptions, Storage};
use crate::core::bootstrap::{BootstrapClient, PollSchedule};
use crate::core::space::{SpaceError, SpaceEvent};
use crate::model::agent::AgentKey;
use crate::model::arc::DhtArc;
use crate::model::id::{OpId, SpaceId};
use crate::model::op::Op;
use crate::model::time::Timestamp;
use crate::net::conn::{IceServer, NetConfig};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Options of `Peer.connect`. */
export interface PeerOptions {
  /** Kitsune2 bootstrap server, e.g. "http://127.0.0.1:30000". */
  bootstrapUrl: string;
  /** sbd signal/relay server, e.g. "ws://127.0.0.1:30000" (kitsune2-bootstrap-srv serves both). */
  signalUrl: string;
  /** Where ops are kept. Default "indexeddb". */
  storage?: "indexeddb" | "memory";
  /** A 32-byte ed25519 secret. Default: this origin's key, created once and kept in IndexedDB. */
  agentKey?: Uint8Array;
  /** STUN/TURN servers. Default none (same machine or LAN). */
  iceServers?: { urls: string | string[]; username?: string; credential?: string }[];
  /** Send everything through the sbd relay, never WebRTC. Default false. */
  relayOnly?: boolean;
  /** Fall back to the relay when WebRTC has not connected after this many ms. Default 15000. */
  webrtcConnectTimeoutMs?: number;
  /** Most simultaneous connections per space. Default 32. */
  maxConnections?: number;
}
/** Options of `peer.join`. */
export interface JoinOptions {
  /** Storage arc: "full" (default), "empty" (hold nothing, e.g. a light client), or [start, end] on the u32 ring. */
  arc?: "full" | "empty" | [number, number];
}
/** Options of `space.publish`. */
export interface PublishOptions {
  /** The op's creation time, µs since the Unix epoch. Default now. */
  createdAt?: number;
}
/** An op received from a peer (`space.on("op", ...)`). */
export interface OpEvent { id: string; createdAt: number; payload: Uint8Array; from: string }
/** A peer change (`space.on("peer", ...)`). */
export interface PeerEvent { kind: "joined" | "left" | "unresponsive" | "misbehaved"; agent?: string; url?: string; reason?: string }
/** Something went wrong that the app may want to show (`space.on("error", ...)`). `sign`: a new
 * agent info could not be signed (it may expire); `announce`: a stored op was not announced
 * (publish pool full; catch-up still spreads it). */
export interface ErrorEvent { kind: "fetch" | "store" | "sign" | "announce"; message: string; id?: string }
/** Figures of a joined space. */
export interface SpaceStats { ops: number; opBytes: number; txBytes: number; rxBytes: number; peers: number; connections: number; net: NetStats }
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
  /** Whole messages delivered to the space. */
  messagesReceived: number;
  /** Remote signal frames dropped because a connection's command queue was full (the connection is then closed). */
  rtcCmdsOverflow: number;
  /** Preflight agent infos left out (bad signature, expired, other URL). */
  preflightAgentsRejected: number;
}
"#;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConnectOptions {
    bootstrap_url: String,
    signal_url: String,
    #[serde(default)]
    storage: Option<String>,
    #[serde(default, with = "serde_bytes")]
    agent_key: Option<Vec<u8>>,
    #[serde(default)]
    ice_servers: Vec<IceServerOption>,
    #[serde(default)]
    relay_only: bool,
    #[serde(default)]
    webrtc_connect_timeout_ms: Option<u64>,
    #[serde(default)]
    max_connections: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IceServerOption {
    urls: OneOrMany,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    credential: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinOptions {
    #[serde(default)]
    arc: Option<ArcOption>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ArcOption {
    Named(String),
    Range(u32, u32),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PublishOptions {
    #[serde(default)]
    created_at: Option<f64>,
}

fn optional<T: for<'de> Deserialize<'de> + Default>(what: &str, v: JsValue) -> Result<T, JsError> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    parse(what, v)
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, v: JsValue) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(v).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn invalid(what: &str, msg: impl std::fmt::Display) -> JsError {
    JsError::new(&format!("{what}: {msg}"))
}

/// One identity (agent) on the network; joins spaces.
#[wasm_bindgen]
pub struct Peer {
    inner: Rc<BrowserPeer>,
    spaces: RefCell<Vec<Rc<BrowserSpace>>>,
}

#[wasm_bindgen]
impl Peer {
    /// Creates a peer (`PeerOptions`). Rejects with an error naming the bad option, or the
    /// step that failed (loading the agent key).
    #[wasm_bindgen(unchecked_return_type = "Peer")]
    pub async fn connect(
        #[wasm_bindgen(unchecked_param_type = "PeerOptions")] options: JsValue,
    ) -> Result<Peer, JsError> {
        const WHAT: &str = "Peer.connect options";
        if options.is_undefined() || options.is_null() {
            return Err(invalid(WHAT, "missing: pass { bootstrapUrl, signalUrl }"));
        }
        let o: ConnectOptions = parse(WHAT, options)?;
        let bootstrap = BootstrapClient::new(&o.bootstrap_url)
            .map_err(|e| invalid(WHAT, format!("bootstrapUrl: {e}")))?;
        if !(o.signal_url.starts_with("ws://") || o.signal_url.starts_with("wss://")) {
            return Err(invalid(
                WHAT,
                format!("signalUrl must be ws:// or wss://, got {:?}", o.signal_url),
            ));
        }
        let storage = match o.storage.as_deref() {
            None | Some("indexeddb") => Storage::IndexedDb,
            Some("memory") => Storage::Memory,
            Some(other) => {
                return Err(invalid(
                    WHAT,
                    format!("storage must be \"indexeddb\" or \"memory\", got {other:?}"),
                ));
            }
        };
        let ice_servers = o
            .ice_servers
            .into_iter()
            .map(|s| IceServer {
                urls: match s.urls {
                    OneOrMany::One(u) => vec![u],
                    OneOrMany::Many(us) => us,
                },
                username: s.username,
                credential: s.credential,
            })
            .collect();
        let mut net = NetConfig {
            webrtc: !o.relay_only,
            ice_servers,
            ..NetConfig::default()
        };
        if let Some(ms) = o.webrtc_connect_timeout_ms {
            net.webrtc_connect_timeout_ms = ms;
        }
        if let Some(n) = o.max_connections {
            if n == 0 {
                return Err(invalid(WHAT, "maxConnections must be at least 1"));
            }
            net.max_connections = n;
        }
        let key = match o.agent_key {
            Some(bytes) => {
                let secret: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                    invalid(WHAT, format!("agentKey must be 32 bytes, got {}", b.len()))
                })?;
                AgentKey::from_secret_bytes(&secret)
            }
            None => crate::browser::keystore::load_or_create_agent_key()
                .await
                .map_err(|e| JsError::new(&format!("loading this origin's agent key: {e}")))?,
        };
        let options = PeerOptions {
            bootstrap,
            signal_url: o.signal_url,
            storage,
            net,
            poll: PollSchedule::default(),
        };
        Ok(Peer {
            inner: Rc::new(BrowserPeer::new(key, options)),
            spaces: RefCell::default(),
        })
    }

    /// This peer's agent id (base64url of its ed25519 public key).
    #[wasm_bindgen(getter, js_name = agentId)]
    pub fn agent_id(&self) -> String {
        self.inner.agent().to_b64()
    }

    /// Joins a space by name or id (`JoinOptions`). A 43-character base64url string of 32
    /// bytes is taken as the space id; anything else is a name, and the id is the BLAKE3 hash
    /// of `"fennec-space:" + name`.
    #[wasm_bindgen(unchecked_return_type = "Space")]
    pub async fn join(
        &self,
        space: String,
        #[wasm_bindgen(unchecked_param_type = "JoinOptions | undefined")] options: JsValue,
    ) -> Result<Space, JsError> {
        const WHAT: &str = "peer.join options";
        let o: JoinOptions = optional(WHAT, options)?;
        let arc = match o.arc {
            None => DhtArc::FULL,
            Some(ArcOption::Named(n)) if n == "full" => DhtArc::FULL,
            Some(ArcOption::Named(n)) if n == "empty" => DhtArc::Empty,
            Some(ArcOption::Named(n)) => {
                return Err(invalid(
                    WHAT,
                    format!("arc must be \"full\", \"empty\" or [start, end], got {n:?}"),
                ));
            }
            Some(ArcOption::Range(s, e)) => DhtArc::Arc(s, e),
        };
        if space.is_empty() {
            return Err(invalid("peer.join", "the space name is empty"));
        }
        let joined = self
            .inner
            .join(space_id_of(&space), arc)
            .await
            .map_err(|e| JsError::new(&format!("joining {space:?}: {e}")))?;
        self.spaces.borrow_mut().push(joined.clone());
        Ok(Space::new(joined))
    }

    /// Leaves every joined space.
    pub async fn close(&self) {
        let spaces: Vec<_> = self.spaces.borrow_mut().drain(..).collect();
        for s in spaces {
            s.leave().await;
        }
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

type Handlers = Rc<RefCell<HashMap<String, Vec<Function>>>>;

/// A joined space: publish ops, read them, watch events.
#[wasm_bindgen]
pub struct Space {
    inner: Rc<BrowserSpace>,
    handlers: Handlers,
    listener: Listener,
}

const EVENTS: [&str; 3] = ["op", "peer", "error"];

impl Space {
    fn new(inner: Rc<BrowserSpace>) -> Self {
        let handlers: Handlers = Rc::default();
        let h = handlers.clone();
        let listener: Listener = Rc::new(move |e: &SpaceEvent| {
            if let Some((name, obj)) = event_object(e) {
                let fs = h.borrow().get(name).cloned().unwrap_or_default();
                for f in fs {
                    // A throwing handler must not stop the others, nor vanish: its exception
                    // becomes an unhandled rejection, which the page sees (console,
                    // `unhandledrejection`).
                    if let Err(thrown) = f.call1(&JsValue::NULL, &obj) {
                        drop(js_sys::Promise::reject(&thrown));
                    }
                }
            }
        });
        inner.subscribe(listener.clone());
        Space {
            inner,
            handlers,
            listener,
        }
    }
}

#[wasm_bindgen]
impl Space {
    /// The space id (base64url).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.space_id().to_b64()
    }

    /// Our peer URL in this space.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.url().to_string()
    }

    /// Publishes `payload` (at most 1 MiB) as an op; resolves with its id (base64url) once
    /// IndexedDB committed it. Rejects on a bad argument or a store error.
    pub async fn publish(
        &self,
        payload: Uint8Array,
        #[wasm_bindgen(unchecked_param_type = "PublishOptions | undefined")] options: JsValue,
    ) -> Result<String, JsError> {
        let o: PublishOptions = optional("space.publish options", options)?;
        let created_at = match o.created_at {
            None => crate::browser::clock::now(),
            Some(t) if t.is_finite() && t.fract() == 0.0 && t.abs() < 9.007e15 => {
                Timestamp(t as i64)
            }
            Some(t) => {
                return Err(invalid(
                    "space.publish options",
                    format!("createdAt must be an integer of µs, got {t}"),
                ));
            }
        };
        let op = Op::new(created_at, payload.to_vec()).map_err(|e| invalid("space.publish", e))?;
        let id = self.inner.publish(op).await.map_err(|e| JsError::new(&e))?;
        Ok(id.to_b64())
    }

    /// The payload of op `id`, or `undefined` if this peer does not hold it.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array | undefined")]
    pub async fn get(&self, id: String) -> Result<JsValue, JsError> {
        let id = OpId::from_b64(&id).map_err(|e| invalid("space.get", e))?;
        let op = self
            .inner
            .get(id)
            .await
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(op
            .map(|op| Uint8Array::from(&op.payload[..]).into())
            .unwrap_or(JsValue::UNDEFINED))
    }

    /// Calls `callback(event)` for each `"op"` (OpEvent), `"peer"` (PeerEvent) or `"error"`
    /// (ErrorEvent). Throws for another event name.
    pub fn on(&self, event: String, callback: Function) -> Result<(), JsError> {
        if !EVENTS.contains(&event.as_str()) {
            return Err(invalid(
                "space.on",
                format!("unknown event {event:?}; expected one of {EVENTS:?}"),
            ));
        }
        self.handlers
            .borrow_mut()
            .entry(event)
            .or_default()
            .push(callback);
        Ok(())
    }

    /// Removes a callback added with `on`.
    pub fn off(&self, event: String, callback: Function) {
        if let Some(v) = self.handlers.borrow_mut().get_mut(&event) {
            v.retain(|f| f != &callback);
        }
    }

    /// Known peers: `[{ agent, url }]`.
    #[wasm_bindgen(unchecked_return_type = "{ agent: string; url: string | null }[]")]
    pub fn peers(&self) -> Array {
        self.inner
            .peers()
            .into_iter()
            .map(|(a, u)| {
                let o = Object::new();
                set(&o, "agent", &a.to_b64().into());
                set(
                    &o,
                    "url",
                    &u.map(|u| JsValue::from(u.to_string()))
                        .unwrap_or(JsValue::NULL),
                );
                JsValue::from(o)
            })
            .collect()
    }

    /// Ops held, bytes moved, peers known, and the transport's counters (`SpaceStats`;
    /// `net` says how malformed or hostile traffic from other peers was dealt with).
    #[wasm_bindgen(unchecked_return_type = "SpaceStats")]
    pub async fn stats(&self) -> Result<JsValue, JsError> {
        let s = self
            .inner
            .stats()
            .await
            .map_err(|e| JsError::new(&e.to_string()))?;
        let o = Object::new();
        set(&o, "ops", &(s.ops as f64).into());
        set(&o, "opBytes", &(s.op_bytes as f64).into());
        set(&o, "txBytes", &(s.tx_bytes as f64).into());
        set(&o, "rxBytes", &(s.rx_bytes as f64).into());
        set(&o, "peers", &(s.peers as f64).into());
        set(&o, "connections", &(s.connections as f64).into());
        let n = Object::new();
        for (k, v) in [
            ("malformedSignals", s.net.malformed_signals),
            ("protocolCloses", s.net.conn.protocol_closes),
            ("staleFrames", s.net.conn.stale_frames),
            ("fallbacks", s.net.conn.fallbacks),
            ("messagesReceived", s.net.conn.messages_received),
            ("rtcCmdsOverflow", s.net.rtc_cmds_overflow),
            (
                "preflightAgentsRejected",
                s.net.conn.preflight_agents_rejected,
            ),
        ] {
            set(&n, k, &(v as f64).into());
        }
        set(&o, "net", &n.into());
        Ok(o.into())
    }

    /// Leaves the space: a tombstone goes to peers and the bootstrap server; the store closes.
    pub async fn leave(&self) {
        self.inner.unsubscribe(&self.listener);
        self.inner.leave().await;
    }
}

fn set(o: &Object, k: &str, v: &JsValue) {
    // Setting a plain property on a fresh Object cannot fail.
    let _ = Reflect::set(o, &k.into(), v);
}

fn event_object(e: &SpaceEvent) -> Option<(&'static str, JsValue)> {
    let o = Object::new();
    let name = match e {
        SpaceEvent::OpReceived { op_id, op, from } => {
            set(&o, "id", &op_id.to_b64().into());
            set(&o, "createdAt", &(op.created_at.0 as f64).into());
            set(&o, "payload", &Uint8Array::from(&op.payload[..]).into());
            set(&o, "from", &from.to_string().into());
            "op"
        }
        SpaceEvent::PeerJoined { agent, url } => {
            set(&o, "kind", &"joined".into());
            set(&o, "agent", &agent.to_b64().into());
            if let Some(u) = url {
                set(&o, "url", &u.to_string().into());
            }
            "peer"
        }
        SpaceEvent::PeerLeft { agent } => {
            set(&o, "kind", &"left".into());
            set(&o, "agent", &agent.to_b64().into());
            "peer"
        }
        SpaceEvent::PeerUnresponsive { peer } => {
            set(&o, "kind", &"unresponsive".into());
            set(&o, "url", &peer.to_string().into());
            "peer"
        }
        SpaceEvent::PeerMisbehaved { peer, reason } => {
            set(&o, "kind", &"misbehaved".into());
            set(&o, "url", &peer.to_string().into());
            set(&o, "reason", &reason.as_str().into());
            "peer"
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
            "error"
        }
        SpaceEvent::StoreFailed { error } => {
            set(&o, "kind", &"store".into());
            set(&o, "message", &error.to_string().into());
            "error"
        }
        SpaceEvent::Error(error) => {
            let kind = match error {
                SpaceError::Sign(_) => "sign",
                SpaceError::PublishPoolFull { .. } => "announce",
            };
            set(&o, "kind", &kind.into());
            set(&o, "message", &error.to_string().into());
            "error"
        }
        _ => return None,
    };
    Some((name, o.into()))
}
