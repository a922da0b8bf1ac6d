//! Deterministic tests of the sbd client core: fixed keys, a hand-advanced clock.

use super::*;
use ed25519_dalek::{Signature, Verifier};

const T0: Timestamp = Timestamp(1_000_000_000);

/// `SigningKey::from_bytes` is a scalar multiplication, slow in unoptimised test builds:
/// the keys are made once.
fn key(seed: u8) -> SigningKey {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..4).map(|s| SigningKey::from_bytes(&[s; 32])).collect())[seed as usize]
        .clone()
}

fn peer(seed: u8) -> PubKey {
    PubKey(key(seed).verifying_key().to_bytes())
}

fn cmd(c: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 28];
    v.extend_from_slice(c);
    v.extend_from_slice(body);
    v
}

fn forward(from: &PubKey, payload: &[u8]) -> Vec<u8> {
    let mut v = from.0.to_vec();
    v.extend_from_slice(payload);
    v
}

fn drain_tx(c: &mut SbdClient, now: Timestamp) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| c.poll_transmit(now)).collect()
}

fn drain_ev(c: &mut SbdClient) -> Vec<SbdEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

const NONCE: [u8; 32] = [7u8; 32];

/// A client through lbrt/lidl/areq/srdy at `T0`, with `lbrt` and `lidl` as given; the
/// `ares` has been drained.
fn ready_client(lbrt: i32, lidl: i32) -> SbdClient {
    let mut c = SbdClient::new(SbdConfig::default(), key(1), T0).unwrap();
    c.handle_message(cmd(b"lbrt", &lbrt.to_be_bytes()));
    c.handle_message(cmd(b"lidl", &lidl.to_be_bytes()));
    c.handle_message(cmd(b"areq", &NONCE));
    assert_eq!(drain_tx(&mut c, T0).len(), 1);
    c.handle_message(cmd(b"srdy", &[]));
    assert_eq!(drain_ev(&mut c), vec![SbdEvent::Ready]);
    c
}

fn closed_reason(c: &mut SbdClient) -> CloseReason {
    match drain_ev(c).pop() {
        Some(SbdEvent::Closed { reason }) => reason,
        other => panic!("expected Closed last, got {other:?}"),
    }
}

#[test]
fn handshake_signs_the_nonce_and_waits_for_srdy() {
    let mut c = SbdClient::new(SbdConfig::default(), key(1), T0).unwrap();
    assert!(!c.is_ready());
    // Forwards queued before srdy wait.
    c.send(&peer(2), b"early").unwrap();
    assert_eq!(drain_tx(&mut c, T0), Vec::<Vec<u8>>::new());

    c.handle_message(cmd(b"lbrt", &8000i32.to_be_bytes()));
    c.handle_message(cmd(b"lidl", &10_000i32.to_be_bytes()));
    assert_eq!(drain_tx(&mut c, T0), Vec::<Vec<u8>>::new());
    c.handle_message(cmd(b"areq", &NONCE));
    let tx = drain_tx(&mut c, T0);
    assert_eq!(tx.len(), 1, "only ares before srdy");
    let ares = &tx[0];
    assert_eq!(ares.len(), 96);
    assert_eq!(&ares[..28], &[0u8; 28]);
    assert_eq!(&ares[28..32], b"ares");
    let sig = Signature::from_slice(&ares[32..]).unwrap();
    key(1)
        .verifying_key()
        .verify(&NONCE, &sig)
        .expect("ares is a valid signature of the nonce by the connection key");
    assert_eq!(c.pub_key(), &peer(1));
    assert!(drain_ev(&mut c).is_empty());

    c.handle_message(cmd(b"srdy", &[]));
    assert!(c.is_ready());
    assert_eq!(drain_ev(&mut c), vec![SbdEvent::Ready]);
    // The early forward goes out once pacing after the ares allows it.
    let at = c.poll_timeout().unwrap();
    assert_eq!(at, T0.add_micros(c.pacing_cost_us(96) as i64));
    let tx = drain_tx(&mut c, at);
    assert_eq!(tx, vec![forward(&peer(2), b"early")]);
    // A late srdy is harmless.
    c.handle_message(cmd(b"srdy", &[]));
    assert!(drain_ev(&mut c).is_empty());
}

#[test]
fn forward_both_ways() {
    let mut c = ready_client(0, 10_000);
    c.send(&peer(2), b"hello").unwrap();
    c.send(&peer(3), b"").unwrap();
    let tx = drain_tx(&mut c, T0);
    assert_eq!(
        tx,
        vec![forward(&peer(2), b"hello"), forward(&peer(3), b"")]
    );
    assert_eq!(&tx[0][..32], peer(2).as_bytes());

    c.handle_message(forward(&peer(2), b"world"));
    c.handle_message(forward(&peer(3), b""));
    assert_eq!(
        drain_ev(&mut c),
        vec![
            SbdEvent::Message {
                from: peer(2),
                payload: Bytes::from_static(b"world"),
            },
            SbdEvent::Message {
                from: peer(3),
                payload: Bytes::new(),
            },
        ]
    );
}

#[test]
fn lbrt_paces_sends() {
    let mut c = ready_client(8000, 10_000);
    // 16 000 + 32 bytes at 8000 ns/B + 10 % = 140 921.6 µs, rounded up.
    assert_eq!(c.pacing_cost_us(16_032), 141_082);
    assert_eq!(c.pacing_cost_us(96), 845); // 96 × 8.8 = 844.8 µs
    let payload = vec![0xab; 16_000];
    c.send(&peer(2), &payload).unwrap();
    c.send(&peer(2), &payload).unwrap();
    c.send(&peer(2), &payload).unwrap();

    // The ares went out at T0, so the first forward waits 845 µs.
    let t1 = T0.add_micros(845);
    assert_eq!(c.poll_timeout(), Some(t1));
    assert!(c.poll_transmit(T0.add_micros(844)).is_none());
    assert_eq!(drain_tx(&mut c, t1).len(), 1);
    let t2 = t1.add_micros(141_082);
    assert_eq!(c.poll_timeout(), Some(t2));
    assert!(c.poll_transmit(t2.add_micros(-1)).is_none());
    // Sending late does not bank credit beyond "now".
    let late = t2.add_micros(500_000);
    assert_eq!(drain_tx(&mut c, late).len(), 1);
    assert_eq!(c.poll_timeout(), Some(late.add_micros(141_082)));

    // The server halves the rate (lbrt doubles): the next send already costs double.
    c.handle_message(cmd(b"lbrt", &16_000i32.to_be_bytes()));
    assert_eq!(c.limit_byte_nanos(), 16_000);
    let t3 = late.add_micros(141_082);
    assert_eq!(drain_tx(&mut c, t3).len(), 1);
    assert_eq!(c.queued_bytes(), 0);
    c.send(&peer(2), b"x").unwrap();
    assert!(c.poll_transmit(t3.add_micros(282_163)).is_none());
    assert_eq!(drain_tx(&mut c, t3.add_micros(282_164)).len(), 1);

    // lbrt 0 (rate limiting disabled): everything goes at once.
    c.handle_message(cmd(b"lbrt", &0i32.to_be_bytes()));
    // The "x" (33 bytes) was paced at 16 000 ns/B: 33 × 17.6 = 580.8 µs.
    let t4 = t3.add_micros(282_164 + 581);
    for _ in 0..5 {
        c.send(&peer(2), &payload).unwrap();
    }
    assert!(c.poll_transmit(t4.add_micros(-1)).is_none());
    assert_eq!(drain_tx(&mut c, t4).len(), 5);
}

#[test]
fn lidl_keepalive_timing() {
    let mut c = ready_client(8000, 10_000);
    assert_eq!(c.keepalive_interval_ms(), 5_000);
    // ares at T0 was the last thing sent: keep at T0 + 5 s, not before.
    let due = T0.add_micros(5_000_000);
    assert_eq!(c.poll_timeout(), Some(due));
    assert!(c.poll_transmit(due.add_micros(-1)).is_none());
    assert_eq!(drain_tx(&mut c, due), vec![cmd(b"keep", &[])]);
    // Then 5 s after the keep.
    assert_eq!(c.poll_timeout(), Some(due.add_micros(5_000_000)));
    // A forward resets the idle clock.
    let t = due.add_micros(3_000_000);
    c.send(&peer(2), b"x").unwrap();
    assert_eq!(drain_tx(&mut c, t).len(), 1);
    assert_eq!(c.poll_timeout(), Some(t.add_micros(5_000_000)));
    assert!(c.poll_transmit(t.add_micros(4_999_999)).is_none());

    // A new lidl applies; a tiny one is floored, a non-positive one ignored.
    c.handle_message(cmd(b"lidl", &1_000i32.to_be_bytes()));
    assert_eq!(c.keepalive_interval_ms(), 500);
    c.handle_message(cmd(b"lidl", &1i32.to_be_bytes()));
    assert_eq!(c.keepalive_interval_ms(), MIN_KEEPALIVE_MILLIS);
    c.handle_message(cmd(b"lidl", &(-5i32).to_be_bytes()));
    c.handle_message(cmd(b"lidl", &0i32.to_be_bytes()));
    assert_eq!(c.limit_idle_millis(), 1);
    // Even far in the future, one keep per call cycle, never a loop.
    assert_eq!(drain_tx(&mut c, t.add_micros(60_000_000)).len(), 1);
}

#[test]
fn keepalive_goes_out_while_forwards_are_paced() {
    // A huge lbrt: one forward blocks the queue for longer than the idle limit.
    let mut c = ready_client(1_000_000, 1_000);
    c.send(&peer(2), &[1; 1000]).unwrap();
    c.send(&peer(2), &[1; 1000]).unwrap();
    let t1 = T0.add_micros(c.pacing_cost_us(96) as i64);
    assert_eq!(drain_tx(&mut c, t1).len(), 1);
    let keep_at = t1.add_micros(500_000);
    assert_eq!(c.poll_timeout(), Some(keep_at));
    assert_eq!(drain_tx(&mut c, keep_at), vec![cmd(b"keep", &[])]);
}

#[test]
fn silence_is_probed_and_an_unanswered_probe_closes() {
    // An idle limit of 24 days: no keep gets in the way.
    let mut c = ready_client(0, i32::MAX);
    // srdy arrived at T0 (dated by the first timed call); the probe is due 30 s later.
    c.handle_timeout(T0);
    let due = T0.add_micros(30_000_000);
    assert_eq!(c.poll_timeout(), Some(due));
    assert!(c.poll_transmit(due.add_micros(-1)).is_none());
    // It goes ahead of queued forwards, addressed to ourselves.
    c.send(&peer(2), b"queued").unwrap();
    assert_eq!(
        drain_tx(&mut c, due),
        vec![forward(&peer(1), &[]), forward(&peer(2), b"queued")]
    );
    // Its echo answers it and is not an app message; the next probe is 30 s after it.
    let echo_at = due.add_micros(40_000);
    c.handle_message(forward(&peer(1), &[]));
    c.handle_timeout(echo_at);
    assert!(drain_ev(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(echo_at.add_micros(30_000_000)));

    // Any message answers it, not only the echo.
    let second = echo_at.add_micros(30_000_000);
    assert_eq!(drain_tx(&mut c, second), vec![forward(&peer(1), &[])]);
    c.handle_message(forward(&peer(3), b"hi"));
    c.handle_timeout(second.add_micros(20_000_000));
    assert!(c.is_ready());
    assert_eq!(drain_ev(&mut c).len(), 1);

    // Unanswered for 15 s: closed, and not a moment before.
    let third = second.add_micros(50_000_000);
    assert_eq!(drain_tx(&mut c, third), vec![forward(&peer(1), &[])]);
    let deadline = third.add_micros(15_000_000);
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline.add_micros(-1));
    assert!(c.is_ready());
    c.handle_timeout(deadline);
    assert_eq!(
        closed_reason(&mut c),
        CloseReason::Unresponsive { waited_ms: 15_000 }
    );
}

#[test]
fn a_probe_is_never_sent_before_ready() {
    let mut c = SbdClient::new(SbdConfig::default(), key(1), T0).unwrap();
    let late = T0.add_micros(19_000_000);
    assert!(drain_tx(&mut c, late).is_empty());
    assert_eq!(c.poll_timeout(), Some(T0.add_micros(20_000_000)));
    c.handle_timeout(late);
    assert!(!c.is_closed());
}

#[test]
fn unknown_commands_are_ignored() {
    let mut c = ready_client(0, 10_000);
    c.handle_message(cmd(b"zzzz", b"some future extension data"));
    c.handle_message(cmd(b"none", &[]));
    c.handle_message(cmd(b"keep", &[])); // client-only command from the server
    c.handle_message(cmd(b"ares", &[9; 64]));
    c.handle_message(cmd(b"LBRT", &[1, 2]));
    assert!(c.is_ready());
    assert!(drain_ev(&mut c).is_empty());
    assert_eq!(drain_tx(&mut c, T0), Vec::<Vec<u8>>::new());
    c.handle_message(forward(&peer(2), b"still here"));
    assert_eq!(drain_ev(&mut c).len(), 1);
    // Unknown commands before the handshake are ignored too.
    let mut c = SbdClient::new(SbdConfig::default(), key(1), T0).unwrap();
    c.handle_message(cmd(b"wxyz", &[1, 2, 3]));
    c.handle_message(cmd(b"areq", &NONCE));
    assert_eq!(drain_tx(&mut c, T0).len(), 1);
}

#[test]
fn hostile_frames_close_with_a_reason() {
    let cases: Vec<(Vec<u8>, CloseReason)> = vec![
        (vec![], ProtocolError::Short { len: 0 }.into()),
        (vec![1; 31], ProtocolError::Short { len: 31 }.into()),
        (
            vec![1; MAX_MESSAGE_BYTES + 1],
            ProtocolError::Oversize { len: 20_001 }.into(),
        ),
        (
            vec![0; 1 << 20],
            ProtocolError::Oversize { len: 1 << 20 }.into(),
        ),
        (
            cmd(b"lbrt", &[0, 0, 1]),
            ProtocolError::BadCommandLength {
                cmd: "lbrt".into(),
                len: 35,
            }
            .into(),
        ),
        (
            cmd(b"lidl", &[0, 0, 0, 1, 0]),
            ProtocolError::BadCommandLength {
                cmd: "lidl".into(),
                len: 37,
            }
            .into(),
        ),
        (
            cmd(b"areq", &[1; 31]),
            ProtocolError::BadCommandLength {
                cmd: "areq".into(),
                len: 63,
            }
            .into(),
        ),
        (
            cmd(b"areq", &[]),
            ProtocolError::BadCommandLength {
                cmd: "areq".into(),
                len: 32,
            }
            .into(),
        ),
        (
            forward(&peer(2), b"too early"),
            ProtocolError::ForwardBeforeReady.into(),
        ),
        (cmd(b"srdy", &[]), ProtocolError::ReadyBeforeAuth.into()),
    ];
    for (frame, want) in cases {
        let mut c = SbdClient::new(SbdConfig::default(), key(1), T0).unwrap();
        c.send(&peer(2), b"queued").unwrap();
        c.handle_message(frame);
        assert!(c.is_closed());
        assert_eq!(closed_reason(&mut c), want);
        // Closed is final: no output, inputs ignored, sends refused, no timer.
        assert_eq!(drain_tx(&mut c, T0), Vec::<Vec<u8>>::new());
        c.handle_message(cmd(b"areq", &NONCE));
        c.handle_message(vec![1; 3]);
        c.close(CloseReason::Local);
        assert!(drain_ev(&mut c).is_empty());
        assert_eq!(c.send(&peer(2), b"x"), Err(SendError::Closed));
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.queued_bytes(), 0);
    }

    // A second areq after ours was answered.
    let mut c = ready_client(0, 10_000);
    c.handle_message(cmd(b"areq", &NONCE));
    assert_eq!(
        closed_reason(&mut c),
        ProtocolError::RepeatedAuthRequest.into()
    );

    // Exactly 20 000 bytes is fine, and a bare 32-byte forward has an empty payload.
    let mut c = ready_client(0, 10_000);
    c.handle_message(forward(&peer(2), &[5; MAX_PAYLOAD_BYTES]));
    c.handle_message(forward(&peer(2), &[]));
    let ev = drain_ev(&mut c);
    assert!(
        matches!(&ev[0], SbdEvent::Message { payload, .. } if payload.len() == MAX_PAYLOAD_BYTES)
    );
    assert!(matches!(&ev[1], SbdEvent::Message { payload, .. } if payload.is_empty()));
    // Negative lbrt is read as "unlimited", not a panic or a wrap.
    c.handle_message(cmd(b"lbrt", &i32::MIN.to_be_bytes()));
    assert_eq!(c.limit_byte_nanos(), 0);
    c.handle_message(cmd(b"lbrt", &i32::MAX.to_be_bytes()));
    assert_eq!(c.pacing_cost_us(MAX_MESSAGE_BYTES), 47_244_640_234);
}

#[test]
fn garbage_never_panics() {
    // xorshift64*: deterministic garbage of every length class, in every state.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let to = peer(2);
    for round in 0..1_000 {
        let mut c = if round % 4 == 0 {
            ready_client(8000, 10_000)
        } else {
            SbdClient::new(SbdConfig::default(), key(1), T0).unwrap()
        };
        for step in 0..8 {
            let len = match next() % 6 {
                0 => (next() % 32) as usize,
                1 => 32,
                2 => 36,
                3 => 64,
                4 => (next() % 20_100) as usize,
                _ => 33 + (next() % 100) as usize,
            };
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Often make it a command so the command paths get garbage too.
            if len >= 32 && next() % 2 == 0 {
                frame[..28].fill(0);
                let cmds: [&[u8; 4]; 6] = [b"lbrt", b"lidl", b"areq", b"srdy", b"keep", b"ares"];
                frame[28..32].copy_from_slice(cmds[(next() % 6) as usize]);
            }
            c.handle_message(frame);
            let now = T0.add_micros((step * 1_000_000) as i64);
            c.handle_timeout(now);
            let _ = c.send(&to, &[0; 100]);
            let _ = drain_tx(&mut c, now);
            let _ = drain_ev(&mut c);
            let _ = c.poll_timeout();
        }
    }
}

#[test]
fn outbound_limits() {
    let mut c = ready_client(0, 10_000);
    assert_eq!(
        c.send(&peer(2), &[0; MAX_PAYLOAD_BYTES + 1]),
        Err(SendError::TooLarge {
            len: 19_969,
            max: 19_968
        })
    );
    c.send(&peer(2), &[0; MAX_PAYLOAD_BYTES]).unwrap();
    let tx = drain_tx(&mut c, T0);
    assert_eq!(tx[0].len(), MAX_MESSAGE_BYTES);
    let mut cmd_like = [0u8; 32];
    cmd_like[28..].copy_from_slice(b"keep");
    assert_eq!(
        c.send(&PubKey(cmd_like), b"x"),
        Err(SendError::CommandLikeDestination)
    );
    assert!(PubKey(cmd_like).is_command_like());
    assert!(!peer(2).is_command_like());
}

#[test]
fn back_pressure_full_then_writable() {
    let cfg = SbdConfig {
        send_queue_bytes: 4 * 10_032,
        ..SbdConfig::default()
    };
    let mut c = SbdClient::new(cfg, key(1), T0).unwrap();
    for _ in 0..4 {
        c.send(&peer(2), &[0; 10_000]).unwrap();
    }
    assert_eq!(c.queued_bytes(), 40_128);
    assert_eq!(
        c.send(&peer(2), b"one more"),
        Err(SendError::Full {
            queued: 40_128,
            capacity: 40_128
        })
    );
    c.handle_message(cmd(b"lbrt", &0i32.to_be_bytes()));
    c.handle_message(cmd(b"areq", &NONCE));
    c.handle_message(cmd(b"srdy", &[]));
    // Draining: Writable once the queue is at half capacity, and only once.
    assert_eq!(c.poll_transmit(T0).unwrap().len(), 96);
    assert!(c.poll_transmit(T0).is_some());
    assert_eq!(drain_ev(&mut c), vec![SbdEvent::Ready]);
    assert!(c.poll_transmit(T0).is_some());
    assert_eq!(drain_ev(&mut c), vec![SbdEvent::Writable]);
    assert_eq!(drain_tx(&mut c, T0).len(), 2);
    assert!(drain_ev(&mut c).is_empty());
    // An empty queue always takes one full message, even with a tiny capacity.
    let cfg = SbdConfig {
        send_queue_bytes: 10,
        ..SbdConfig::default()
    };
    let mut c = SbdClient::new(cfg, key(1), T0).unwrap();
    c.send(&peer(2), &[0; MAX_PAYLOAD_BYTES]).unwrap();
    assert!(matches!(c.send(&peer(2), b""), Err(SendError::Full { .. })));
}

#[test]
fn handshake_timeout_and_local_close() {
    let mut c = SbdClient::new(
        SbdConfig {
            handshake_timeout: Duration::from_secs(1),
            ..SbdConfig::default()
        },
        key(1),
        T0,
    )
    .unwrap();
    let deadline = T0.add_micros(1_000_000);
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_message(cmd(b"areq", &NONCE));
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline.add_micros(-1));
    assert!(!c.is_closed());
    c.handle_timeout(deadline);
    assert_eq!(closed_reason(&mut c), CloseReason::HandshakeTimeout);

    // No handshake timeout once ready.
    let mut c = ready_client(0, 10_000);
    c.handle_timeout(T0.add_micros(3_600_000_000));
    assert!(!c.is_closed());
    c.close(CloseReason::Local);
    c.close(CloseReason::Transport("later".into()));
    assert_eq!(
        drain_ev(&mut c),
        vec![SbdEvent::Closed {
            reason: CloseReason::Local
        }]
    );
}

#[test]
fn clock_going_backwards_is_harmless() {
    let mut c = ready_client(8000, 10_000);
    c.send(&peer(2), b"a").unwrap();
    let back = T0.add_micros(-10_000_000);
    assert!(c.poll_transmit(back).is_none());
    assert!(c.poll_transmit(Timestamp(i64::MIN)).is_none());
    // At the end of time a probe is due as well; each goes out once, never a loop.
    assert_eq!(
        drain_tx(&mut c, Timestamp(i64::MAX)),
        vec![forward(&peer(1), &[]), forward(&peer(2), b"a")]
    );
}

#[test]
fn urls_and_keys() {
    let k = peer(1);
    let b64 = k.to_b64url();
    assert_eq!(b64.len(), 43);
    assert!(!b64.contains(['=', '+', '/']));
    assert_eq!(PubKey::from_b64url(&b64), Ok(k));
    assert!(PubKey::from_b64url("AAAA").is_err());
    assert!(PubKey::from_b64url("not base64!").is_err());
    assert_eq!(
        connect_url("ws://127.0.0.1:1234", &k),
        format!("ws://127.0.0.1:1234/{b64}")
    );
    assert_eq!(
        connect_url("ws://127.0.0.1:1234/", &k),
        format!("ws://127.0.0.1:1234/{b64}")
    );
    let c = SbdClient::new(SbdConfig::default(), key(1), T0).unwrap();
    assert_eq!(
        c.url("wss://sbd.example"),
        format!("wss://sbd.example/{b64}")
    );
    assert_eq!(format!("{k}"), b64);
}

#[test]
fn generated_keys_are_fresh() {
    let a = SbdClient::generate(SbdConfig::default(), T0).unwrap();
    let b = SbdClient::generate(SbdConfig::default(), T0).unwrap();
    assert_ne!(a.pub_key(), b.pub_key());
    assert!(!a.pub_key().is_command_like());
}

/// An invalid config is refused by [`SbdClient::new`] and [`SbdClient::generate`], naming
/// the field.
#[test]
fn invalid_config_refused_naming_the_field() {
    for timeout in [Duration::ZERO, Duration::from_nanos(999)] {
        let cfg = SbdConfig {
            handshake_timeout: timeout,
            ..SbdConfig::default()
        };
        let err = SbdClient::new(cfg.clone(), key(1), T0).err().unwrap();
        assert_eq!(err.field, "sbd.handshake_timeout");
        assert!(matches!(
            SbdClient::generate(cfg, T0),
            Err(GenerateError::Config(ConfigError {
                field: "sbd.handshake_timeout",
                ..
            }))
        ));
    }
    let cfg = SbdConfig {
        handshake_timeout: Duration::from_micros(1),
        ..SbdConfig::default()
    };
    assert!(SbdClient::new(cfg, key(1), T0).is_ok());
}
