//! The WebRTC transport over the real sbd server (`kitsune2-bootstrap-srv` 0.4.1's embedded
//! relay): each transport has its own sbd connection; offers, answers, ICE candidates and
//! relayed data are sbd forwards.
//!
//! Run through `node scripts/devnet.mjs -- wasm-pack test ... --test webrtc_sbd`, which starts
//! the server and sets `FENNEC_SIGNAL_URL` (read at compile time: the test page has no
//! environment). No timed assertions: timings are only logged.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use bytes::Bytes;
use fennec::api::Signal;
use fennec::browser::sbd_signal::SbdSignal;
use fennec::browser::webrtc::{NetEvent, NetEvents, WebRtcTransport};
use fennec::net::conn::{NetConfig, Path};
use fennec::net::sbd::{SbdClient, SbdConfig};
use fennec::wire::encode_notify;
use fennec::{AgentInfo, AgentInfoSigned, AgentKey, DhtArc, SpaceId, Url, WireMessage};
use futures::StreamExt;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn signal_url() -> &'static str {
    let Some(url) = option_env!("FENNEC_SIGNAL_URL") else {
        panic!("FENNEC_SIGNAL_URL is not set: run the browser tests through scripts/devnet.mjs");
    };
    url
}

struct Peer {
    net: WebRtcTransport,
    events: NetEvents,
    url: Url,
}

fn random_space() -> SpaceId {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    SpaceId::from_bytes(b.to_vec())
}

/// A transport on its own sbd connection; its agent joined `space` at the sbd URL.
async fn peer(space: &SpaceId, config: NetConfig) -> Peer {
    let key = SbdClient::generate_key().unwrap();
    let (signal, rx) = SbdSignal::connect(signal_url(), SbdConfig::default(), key)
        .await
        .expect("sbd connects");
    let url = signal.local_url().clone();
    let key = AgentKey::generate().unwrap();
    let info = AgentInfo::new(
        key.agent_id(),
        space.clone(),
        fennec::browser::clock::now(),
        Some(url.clone()),
        DhtArc::FULL,
    );
    let (net, events) = WebRtcTransport::new(Rc::new(signal), rx, config).unwrap();
    net.set_local_agents(&[AgentInfoSigned::sign(&key, info).unwrap()]);
    Peer { net, events, url }
}

async fn next_notify(events: &mut NetEvents) -> (Url, Bytes) {
    loop {
        match events.next().await.expect("event stream ended") {
            NetEvent::Message {
                peer,
                msg: WireMessage::Notify { data, .. },
                ..
            } => return (peer, data),
            _ => continue,
        }
    }
}

async fn next_disconnected(events: &mut NetEvents) -> (Url, String) {
    loop {
        match events.next().await.expect("event stream ended") {
            NetEvent::Disconnected { peer, reason } => return (peer, reason),
            _ => continue,
        }
    }
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

#[wasm_bindgen_test]
async fn webrtc_signalled_through_the_real_sbd_server() {
    let space = random_space();
    let config = NetConfig {
        max_message_bytes: 16 * 1024 * 1024,
        ..NetConfig::default()
    };
    let mut a = peer(&space, config.clone()).await;
    let mut b = peer(&space, config).await;

    let t0 = js_sys::Date::now();
    assert_eq!(a.net.connect(&b.url).await.unwrap(), Path::WebRtc);
    console_log!(
        "webrtc connect over the real sbd server: {:.1} ms",
        js_sys::Date::now() - t0
    );

    a.net
        .send(&b.url, encode_notify(&space, Bytes::from_static(b"hi b")))
        .await
        .unwrap();
    assert_eq!(
        next_notify(&mut b.events).await,
        (a.url.clone(), Bytes::from_static(b"hi b"))
    );
    // 10 MiB back over the data channel.
    let big = pattern(10 * 1024 * 1024, 3);
    b.net
        .send(&a.url, encode_notify(&space, big.clone()))
        .await
        .unwrap();
    let (from, got) = next_notify(&mut a.events).await;
    assert_eq!(from, b.url);
    assert!(got == big, "10 MiB intact");
    assert_eq!(b.net.connection(&a.url).unwrap().path, Path::WebRtc);

    a.net.close(&b.url, "finished");
    let (who, reason) = next_disconnected(&mut b.events).await;
    assert_eq!(who, a.url);
    // The reason arrives in-band (a DISCONNECT before the data channel's graceful close)
    // and in the relayed close notice; never as an aborted channel's error.
    assert!(reason.contains("closed by peer: finished"), "{reason}");
}

#[wasm_bindgen_test]
async fn relay_only_through_the_real_sbd_server() {
    let space = random_space();
    let config = NetConfig {
        webrtc: false,
        ..NetConfig::default()
    };
    let mut a = peer(&space, config.clone()).await;
    let mut b = peer(&space, config).await;
    assert_eq!(a.net.connect(&b.url).await.unwrap(), Path::Relay);

    // 1 MiB each way: about 53 sbd forwards of ≤ 19 968 bytes per direction.
    let to_b = pattern(1024 * 1024, 1);
    let to_a = pattern(1024 * 1024, 2);
    let t0 = js_sys::Date::now();
    let (ra, rb) = futures::join!(
        a.net.send(&b.url, encode_notify(&space, to_b.clone())),
        b.net.send(&a.url, encode_notify(&space, to_a.clone())),
    );
    ra.unwrap();
    rb.unwrap();
    let (_, at_b) = next_notify(&mut b.events).await;
    let (_, at_a) = next_notify(&mut a.events).await;
    console_log!(
        "1 MiB each way relayed through sbd: {:.0} ms",
        js_sys::Date::now() - t0
    );
    assert!(at_b == to_b && at_a == to_a, "both intact");
    assert_eq!(a.net.stats().conn.peer_connections_created, 0);

    drop(a);
    let (_, reason) = next_disconnected(&mut b.events).await;
    assert!(reason.contains("shut down"), "{reason}");
}

#[wasm_bindgen_test]
async fn a_peer_on_another_server_is_unreachable() {
    let space = random_space();
    let a = peer(&space, NetConfig::default()).await;
    let elsewhere =
        Url::parse("ws://127.0.0.1:9/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let err = a.net.connect(&elsewhere).await.unwrap_err();
    assert!(err.to_string().contains("not reachable"), "{err}");
}
