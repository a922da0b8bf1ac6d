//! Browser tests of the WebRTC transport: two (or three) transports in one page, signalled
//! through the in-page loopback hub. Real `RTCPeerConnection`s and data channels in headless
//! Chromium; the relay path goes through the hub as it would through sbd (same 19 968-byte
//! message limit).
//!
//! `wasm-pack test --headless --chrome --test webrtc` (see README). No timed assertions:
//! timings are only logged.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use fennec::browser::webrtc::{
    NetError, NetEvent, NetEvents, WebRtcTransport, page_peer_connections,
};
use fennec::net::conn::{NetConfig, Path};
use fennec::testing::LoopbackHub;
use fennec::wire::{encode_notify, encode_publish_ops};
use fennec::{AgentInfo, AgentInfoSigned, AgentKey, DhtArc, SpaceId, Url, WireMessage};
use futures::StreamExt;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

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

/// A transport on `hub` whose agent joined `spaces` (its preflight carries their infos).
fn peer(hub: &LoopbackHub, spaces: &[&SpaceId], config: NetConfig) -> Peer {
    let key = AgentKey::generate().unwrap();
    let url = Url::parse(&format!("ws://127.0.0.1:1/{}", key.agent_id().to_b64())).unwrap();
    let (signal, rx) = hub.endpoint(url.clone());
    let (net, events) = WebRtcTransport::new(Rc::new(signal), rx, config).unwrap();
    let infos: Vec<AgentInfoSigned> = spaces
        .iter()
        .map(|s| {
            let info = AgentInfo::new(
                key.agent_id(),
                (*s).clone(),
                fennec::browser::clock::now(),
                Some(url.clone()),
                DhtArc::FULL,
            );
            AgentInfoSigned::sign(&key, info).unwrap()
        })
        .collect();
    net.set_local_agents(&infos);
    Peer { net, events, url }
}

async fn next_message(events: &mut NetEvents) -> (Url, WireMessage) {
    loop {
        match events.next().await.expect("event stream ended") {
            NetEvent::Message { peer, msg, .. } => return (peer, msg),
            _ => continue,
        }
    }
}

async fn next_connected(events: &mut NetEvents) -> (Url, Path, usize) {
    loop {
        match events.next().await.expect("event stream ended") {
            NetEvent::Connected { peer, path, agents } => return (peer, path, agents.len()),
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

fn notify_data(msg: WireMessage) -> Bytes {
    match msg {
        WireMessage::Notify { data, .. } => data,
        other => panic!("expected a notify, got {other:?}"),
    }
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[wasm_bindgen_test]
async fn two_transports_connect_over_webrtc_and_talk_both_ways() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let mut a = peer(&hub, &[&space], NetConfig::default());
    let mut b = peer(&hub, &[&space], NetConfig::default());

    let t0 = now_ms();
    let path = a.net.connect(&b.url).await.expect("connect");
    console_log!(
        "webrtc connect (offer → both preflights exchanged): {:.1} ms",
        now_ms() - t0
    );
    assert_eq!(path, Path::WebRtc);
    assert_eq!(
        next_connected(&mut a.events).await,
        (b.url.clone(), Path::WebRtc, 1)
    );
    assert_eq!(
        next_connected(&mut b.events).await,
        (a.url.clone(), Path::WebRtc, 1)
    );

    a.net
        .send(
            &b.url,
            encode_notify(&space, Bytes::from_static(b"hello b")),
        )
        .await
        .unwrap();
    let (from, msg) = next_message(&mut b.events).await;
    assert_eq!(from, a.url);
    assert_eq!(notify_data(msg), Bytes::from_static(b"hello b"));

    // The reply reuses the connection the peer opened.
    b.net
        .send(
            &a.url,
            encode_notify(&space, Bytes::from_static(b"hello a")),
        )
        .await
        .unwrap();
    let (from, msg) = next_message(&mut a.events).await;
    assert_eq!(from, b.url);
    assert_eq!(notify_data(msg), Bytes::from_static(b"hello a"));

    let (ca, cb) = (
        a.net.connection(&b.url).unwrap(),
        b.net.connection(&a.url).unwrap(),
    );
    assert_eq!(ca.conn, cb.conn, "one connection, the same on both sides");
    assert_eq!((ca.path, cb.path), (Path::WebRtc, Path::WebRtc));
    assert_eq!(a.net.stats().conn.peer_connections_created, 1);
    assert_eq!(b.net.stats().conn.peer_connections_created, 1);
    assert_eq!(a.net.stats().conn.messages_received, 1);
}

#[wasm_bindgen_test]
fn invalid_config_is_refused_naming_the_field() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let (signal, rx) = hub.endpoint(Url::parse("ws://127.0.0.1:1/bad").unwrap());
    let config = NetConfig {
        send_low_water_bytes: 2,
        send_high_water_bytes: 1,
        ..NetConfig::default()
    };
    let err = WebRtcTransport::new(Rc::new(signal), rx, config)
        .err()
        .unwrap();
    assert_eq!(err.field, "net.send_low_water_bytes");
}

#[wasm_bindgen_test]
async fn ten_mib_in_both_directions_arrives_intact() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let config = NetConfig {
        max_message_bytes: 16 * 1024 * 1024,
        ..NetConfig::default()
    };
    let mut a = peer(&hub, &[&space], config.clone());
    let mut b = peer(&hub, &[&space], config);
    let big = |seed: u32| -> Bytes {
        let mut x = seed;
        (0..10 * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect::<Vec<u8>>()
            .into()
    };
    let (to_b, to_a) = (big(1), big(2));
    a.net.connect(&b.url).await.unwrap();

    let t0 = now_ms();
    let (ra, rb) = futures::join!(
        a.net.send(&b.url, encode_notify(&space, to_b.clone())),
        b.net.send(&a.url, encode_notify(&space, to_a.clone())),
    );
    ra.unwrap();
    rb.unwrap();
    let (_, at_b) = next_message(&mut b.events).await;
    let (_, at_a) = next_message(&mut a.events).await;
    console_log!(
        "10 MiB each way over one data channel, concurrently: {:.0} ms",
        now_ms() - t0
    );
    assert!(notify_data(at_b) == to_b, "A → B intact");
    assert!(notify_data(at_a) == to_a, "B → A intact");
    assert_eq!(a.net.connection(&b.url).unwrap().path, Path::WebRtc);
}

#[wasm_bindgen_test]
async fn closing_one_side_is_seen_as_disconnected_by_the_other() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let a = peer(&hub, &[&space], NetConfig::default());
    let mut b = peer(&hub, &[&space], NetConfig::default());
    a.net.connect(&b.url).await.unwrap();
    next_connected(&mut b.events).await;

    a.net.close(&b.url, "done here");
    let (who, reason) = next_disconnected(&mut b.events).await;
    assert_eq!(who, a.url);
    assert!(reason.contains("done here"), "{reason}");
    assert!(b.net.connection(&a.url).is_none());

    // Dropping a whole transport is seen too.
    let c = peer(&hub, &[&space], NetConfig::default());
    c.net.connect(&b.url).await.unwrap();
    next_connected(&mut b.events).await;
    drop(c);
    let (_, reason) = next_disconnected(&mut b.events).await;
    assert!(reason.contains("shut down"), "{reason}");
}

#[wasm_bindgen_test]
async fn pagehide_closes_every_connection_cleanly() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let mut a = peer(&hub, &[&space], NetConfig::default());
    let mut b = peer(&hub, &[&space], NetConfig::default());
    a.net.connect(&b.url).await.unwrap();
    next_connected(&mut a.events).await;
    next_connected(&mut b.events).await;

    let window = web_sys::window().unwrap();
    window
        .dispatch_event(&web_sys::Event::new("pagehide").unwrap())
        .unwrap();
    // Both transports live in this page: both close, each says why. A `pagehide` that is not
    // `persisted` (here: a plain Event) means the page is being discarded: "page closed".
    let (_, ra) = next_disconnected(&mut a.events).await;
    let (_, rb) = next_disconnected(&mut b.events).await;
    assert!(ra.contains("page closed"), "{ra}");
    assert!(rb.contains("page closed"), "{rb}");
    assert_eq!((a.net.connection_count(), b.net.connection_count()), (0, 0));
}

#[wasm_bindgen_test]
async fn relay_only_mode_works_through_the_loopback_relay() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let config = NetConfig {
        webrtc: false,
        ..NetConfig::default()
    };
    let mut a = peer(&hub, &[&space], config.clone());
    let mut b = peer(&hub, &[&space], config);
    assert_eq!(a.net.connect(&b.url).await.unwrap(), Path::Relay);

    // 1 MiB: about 53 relayed chunks each way.
    let to_b: Bytes = (0..1024 * 1024)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<_>>()
        .into();
    let to_a = Bytes::from_static(b"small reply");
    a.net
        .send(&b.url, encode_notify(&space, to_b.clone()))
        .await
        .unwrap();
    b.net
        .send(&a.url, encode_notify(&space, to_a.clone()))
        .await
        .unwrap();
    assert!(notify_data(next_message(&mut b.events).await.1) == to_b);
    assert_eq!(notify_data(next_message(&mut a.events).await.1), to_a);
    assert_eq!(a.net.stats().conn.peer_connections_created, 0);
    assert_eq!(b.net.stats().conn.peer_connections_created, 0);
    assert_eq!(b.net.connection(&a.url).unwrap().path, Path::Relay);

    a.net.close(&b.url, "bye");
    let (_, reason) = next_disconnected(&mut b.events).await;
    assert!(reason.contains("bye"), "{reason}");
}

#[wasm_bindgen_test]
async fn an_offer_to_a_relay_only_peer_is_answered_with_no_rtc() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let mut a = peer(&hub, &[&space], NetConfig::default());
    let b = peer(
        &hub,
        &[&space],
        NetConfig {
            webrtc: false,
            ..NetConfig::default()
        },
    );
    // A offers; B refuses WebRTC at once, A relays (no connect timeout involved: it is 15 s).
    assert_eq!(a.net.connect(&b.url).await.unwrap(), Path::Relay);
    b.net
        .send(
            &a.url,
            encode_notify(&space, Bytes::from_static(b"via relay")),
        )
        .await
        .unwrap();
    assert_eq!(
        notify_data(next_message(&mut a.events).await.1),
        Bytes::from_static(b"via relay")
    );
    assert_eq!(a.net.stats().conn.fallbacks, 1);
}

#[wasm_bindgen_test]
async fn falls_back_to_the_relay_when_webrtc_does_not_connect() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    // The signal server passes everything but ICE candidates: the peer connection can never
    // find a route, like two peers behind hostile NATs without TURN.
    hub.set_filter(|_, _, msg| msg.first() != Some(&0x03));
    let space = random_space();
    let config = NetConfig {
        webrtc_connect_timeout: Duration::from_millis(500),
        ..NetConfig::default()
    };
    let mut a = peer(&hub, &[&space], config.clone());
    let mut b = peer(&hub, &[&space], config);
    a.net
        .send(
            &b.url,
            encode_notify(&space, Bytes::from_static(b"eventually")),
        )
        .await
        .unwrap();
    assert_eq!(
        notify_data(next_message(&mut b.events).await.1),
        Bytes::from_static(b"eventually")
    );
    assert_eq!(a.net.connection(&b.url).unwrap().path, Path::Relay);
    assert_eq!(b.net.connection(&a.url).unwrap().path, Path::Relay);
    assert_eq!(a.net.stats().conn.fallbacks, 1);
    assert!(hub.filtered() > 0, "candidates were withheld");
    // And back the other way on the same relayed connection.
    b.net
        .send(&a.url, encode_notify(&space, Bytes::from_static(b"ack")))
        .await
        .unwrap();
    assert_eq!(
        notify_data(next_message(&mut a.events).await.1),
        Bytes::from_static(b"ack")
    );
}

#[wasm_bindgen_test]
async fn simultaneous_connects_end_in_one_connection() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let mut a = peer(&hub, &[&space], NetConfig::default());
    let mut b = peer(&hub, &[&space], NetConfig::default());
    let (ra, rb) = futures::join!(
        a.net
            .send(&b.url, encode_notify(&space, Bytes::from_static(b"from a"))),
        b.net
            .send(&a.url, encode_notify(&space, Bytes::from_static(b"from b"))),
    );
    ra.unwrap();
    rb.unwrap();
    assert_eq!(
        notify_data(next_message(&mut b.events).await.1),
        Bytes::from_static(b"from a")
    );
    assert_eq!(
        notify_data(next_message(&mut a.events).await.1),
        Bytes::from_static(b"from b")
    );
    let (ca, cb) = (
        a.net.connection(&b.url).unwrap(),
        b.net.connection(&a.url).unwrap(),
    );
    assert_eq!(ca.conn, cb.conn);
    // Exactly one side (the larger URL) abandoned its attempt. Whether the winner ever saw
    // the loser's offer depends on timing (the loser may yield before its offer is made).
    let (sa, sb) = (a.net.stats().conn, b.net.stats().conn);
    let (winner, loser) = if a.url.as_str() < b.url.as_str() {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    assert_eq!(
        (winner.glare_yielded, loser.glare_yielded),
        (0, 1),
        "{sa:?} {sb:?}"
    );
    assert!(winner.glare_won <= 1, "{sa:?} {sb:?}");
}

/// The transport admits nothing by itself (the one admission rule is the space's peer
/// store): after the preflight, every message reaches the application decoded, in order,
/// even for a space the sender holds no agent info for.
#[wasm_bindgen_test]
async fn the_transport_delivers_decoded_messages_and_leaves_admission_to_the_space() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let joined = random_space();
    let other = random_space();
    let mut a = peer(&hub, &[&joined], NetConfig::default());
    let b = peer(&hub, &[&joined], NetConfig::default());
    b.net
        .send(&a.url, encode_publish_ops(&other, &[]))
        .await
        .unwrap();
    b.net
        .send(
            &a.url,
            encode_notify(&joined, Bytes::from_static(b"second")),
        )
        .await
        .unwrap();
    let (_, first) = next_message(&mut a.events).await;
    assert!(
        matches!(first, WireMessage::Publish { ref space, .. } if space == &other),
        "{first:?}"
    );
    let (_, second) = next_message(&mut a.events).await;
    assert_eq!(notify_data(second), Bytes::from_static(b"second"));
    assert_eq!(a.net.stats().conn.messages_received, 2);
}

#[wasm_bindgen_test]
async fn a_malformed_frame_closes_the_connection_with_a_reason() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let mut a = peer(&hub, &[&space], NetConfig::default());
    let mut b = peer(&hub, &[&space], NetConfig::default());
    a.net.connect(&b.url).await.unwrap();
    next_connected(&mut a.events).await;
    next_connected(&mut b.events).await;
    // Not a K2Proto: B must close and say why; A learns the reason.
    a.net
        .send(&b.url, Bytes::from_static(&[0xFF, 0xFF, 0xFF]))
        .await
        .unwrap();
    let (_, at_b) = next_disconnected(&mut b.events).await;
    assert!(
        at_b.contains("protocol violation: malformed frame"),
        "{at_b}"
    );
    let (_, at_a) = next_disconnected(&mut a.events).await;
    assert!(
        at_a.contains("closed by peer: protocol violation"),
        "{at_a}"
    );
    assert_eq!(b.net.stats().conn.protocol_closes, 1);
}

#[wasm_bindgen_test]
async fn unreachable_peers_and_oversize_messages_are_clear_errors() {
    let hub = LoopbackHub::new(LoopbackHub::SBD_LIKE);
    let space = random_space();
    let a = peer(&hub, &[&space], NetConfig::default());
    let nobody = Url::parse("ws://127.0.0.1:1/nobody").unwrap();
    let before = page_peer_connections();
    let err = a
        .net
        .send(&nobody, encode_notify(&space, Bytes::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NetError::Closed { reason, .. } if reason.contains("not reachable")),
        "{err}"
    );
    assert_eq!(a.net.connection_count(), 0);
    assert_eq!(
        page_peer_connections(),
        before + 1,
        "the page-wide count grows"
    );

    let relay_only = peer(
        &hub,
        &[&space],
        NetConfig {
            webrtc: false,
            ..NetConfig::default()
        },
    );
    let err = relay_only.net.connect(&nobody).await.unwrap_err();
    assert!(
        matches!(&err, NetError::Closed { reason, .. } if reason.contains("not reachable")),
        "{err}"
    );

    let max = a.net.config().max_message_bytes;
    let err = a
        .net
        .send(&relay_only.url, Bytes::from(vec![0u8; max + 1]))
        .await
        .unwrap_err();
    assert_eq!(err, NetError::TooLarge { len: max + 1, max });
}

#[wasm_bindgen_test]
fn only_a_peer_s_page_closed_notice_is_a_departure() {
    use fennec::browser::webrtc::{PAGE_CLOSED, PAGE_HIDDEN, closed_by_departed_peer};
    assert!(closed_by_departed_peer(&format!(
        "closed by peer: {PAGE_CLOSED}"
    )));
    assert!(!closed_by_departed_peer(&format!(
        "closed by peer: {PAGE_HIDDEN}"
    )));
    assert!(
        !closed_by_departed_peer(PAGE_CLOSED),
        "our own close is not a departure"
    );
    assert!(!closed_by_departed_peer("closed by peer: idle"));
}
