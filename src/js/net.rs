//! `Transport` for JavaScript: one [`WebRtcTransport`] on its own sbd connection, for
//! benchmarks and experiments below the `Peer`/`Space` API. Thin: each transport gets a fresh
//! agent key and signs one agent info for a fixed benchmark space at its own peer URL; the
//! transport sends that info in its preflight, so two such transports admit each other's
//! messages like any two peers (nothing in admission is bypassed). A message is carried as a
//! K2 NOTIFY frame for that space; the receiver gets its data back.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use futures::StreamExt;
use js_sys::{Function, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::agent::{AgentInfo, AgentInfoSigned, AgentKey};
use crate::arc::DhtArc;
use crate::id::SpaceId;
use crate::net::conn::{NetConfig, Path};
use crate::net::sbd::SbdConfig;
use crate::net::sbd_signal::SbdSignal;
use crate::net::webrtc::{NetEvent, WebRtcTransport};
use crate::time::Timestamp;
use crate::url::Url;
use crate::wire::{WireMessage, encode_notify};

/// The space every `Transport`'s agent info names (32 bytes, "fennec-transport" padded).
const TRANSPORT_SPACE: [u8; 32] = *b"fennec-transport\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransportOptions {
    #[serde(default)]
    relay_only: bool,
}

/// One WebRTC transport (sbd-signalled, relay fallback) with its own peer URL.
#[wasm_bindgen(js_name = Transport)]
pub struct JsTransport {
    net: RefCell<Option<WebRtcTransport>>,
    url: String,
    space: SpaceId,
    on_message: Rc<RefCell<Option<Function>>>,
}

fn closed() -> JsError {
    JsError::new("transport closed")
}

#[wasm_bindgen(js_class = Transport)]
impl JsTransport {
    /// Connects to the sbd server `signalUrl` (`ws://host:port`) with a fresh key.
    /// `options.relayOnly` (default false) sends everything through the sbd relay.
    ///
    /// # Errors
    /// Bad options, an unreachable signal server, or signing failing.
    pub async fn connect(
        #[wasm_bindgen(js_name = signalUrl)] signal_url: String,
        options: JsValue,
    ) -> Result<JsTransport, JsError> {
        let o: TransportOptions = if options.is_undefined() || options.is_null() {
            TransportOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| JsError::new(&format!("Transport options: {e}")))?
        };
        let (signal, rx) = SbdSignal::connect(&signal_url, SbdConfig::default())
            .await
            .map_err(|e| JsError::new(&format!("signal server {signal_url}: {e}")))?;
        let config = NetConfig {
            webrtc: !o.relay_only,
            ..NetConfig::default()
        };
        let (net, mut events) = WebRtcTransport::new(Rc::new(signal), rx, config);
        let key = AgentKey::generate().map_err(|e| JsError::new(&format!("agent key: {e}")))?;
        let space = SpaceId::from_bytes(TRANSPORT_SPACE.to_vec());
        let info = AgentInfo::new(
            key.agent_id(),
            space.clone(),
            Timestamp::now(),
            Some(net.local_url().clone()),
            DhtArc::FULL,
        );
        let signed = AgentInfoSigned::sign(&key, info)
            .map_err(|e| JsError::new(&format!("signing the agent info: {e}")))?;
        net.set_local_agents(&[signed]);
        let on_message: Rc<RefCell<Option<Function>>> = Rc::default();
        let cb = on_message.clone();
        // Ends when the transport is dropped (its event sender goes with it).
        spawn_local(async move {
            while let Some(ev) = events.next().await {
                if let NetEvent::Message {
                    peer,
                    msg: WireMessage::Notify { data, .. },
                    ..
                } = ev
                {
                    let f = cb.borrow().clone();
                    if let Some(f) = f {
                        let bytes = Uint8Array::from(&data[..]);
                        let _ = f.call2(&JsValue::NULL, &peer.as_str().into(), &bytes);
                    }
                }
            }
        });
        Ok(JsTransport {
            url: net.local_url().as_str().to_string(),
            net: RefCell::new(Some(net)),
            space,
            on_message,
        })
    }

    /// Our peer URL (`ws://host:port/<sbd pubkey>`).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn net(&self) -> Result<WebRtcTransport, JsError> {
        self.net.borrow().clone().ok_or_else(closed)
    }

    fn peer(url: &str) -> Result<Url, JsError> {
        Url::parse(url).map_err(|_| JsError::new(&format!("not a peer URL: {url:?}")))
    }

    /// Connects to `peerUrl` (if not yet) and waits for both preflights; resolves to the
    /// path, `"webrtc"` or `"relay"`.
    ///
    /// # Errors
    /// A bad URL, or the connection failing.
    #[wasm_bindgen(js_name = connectTo)]
    pub async fn connect_to(
        &self,
        #[wasm_bindgen(js_name = peerUrl)] peer_url: String,
    ) -> Result<String, JsError> {
        let net = self.net()?;
        let path = net.connect(&Self::peer(&peer_url)?).await?;
        Ok(match path {
            Path::WebRtc => "webrtc",
            Path::Relay => "relay",
        }
        .into())
    }

    /// Sends `data` to `peerUrl` (connecting on demand) as one message; resolves when it was
    /// handed to the data channel or relay, after any back-pressure wait. At most 4 MiB
    /// minus a few bytes of framing.
    ///
    /// # Errors
    /// A bad URL, a message too large, or the connection failing.
    pub async fn send(
        &self,
        #[wasm_bindgen(js_name = peerUrl)] peer_url: String,
        data: Uint8Array,
    ) -> Result<(), JsError> {
        let net = self.net()?;
        let frame = encode_notify(&self.space, Bytes::from(data.to_vec()));
        net.send(&Self::peer(&peer_url)?, frame).await?;
        Ok(())
    }

    /// Calls `cb(peerUrl, data: Uint8Array)` for each message received (replaces any
    /// earlier callback).
    #[wasm_bindgen(js_name = onMessage)]
    pub fn on_message(&self, cb: Function) {
        *self.on_message.borrow_mut() = Some(cb);
    }

    /// Closes every connection and the sbd connection; the transport is unusable after.
    pub fn close(&self) {
        if let Some(net) = self.net.borrow_mut().take() {
            net.close_all("transport closed");
        }
        *self.on_message.borrow_mut() = None;
    }
}
