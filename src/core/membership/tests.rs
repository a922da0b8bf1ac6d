//! Unit tests of [`Membership`]: codec, admission, spoofing, scope, dozing, leave, local
//! health. Cluster behaviour is in `sim_tests.rs`.

use std::time::Duration;

use foca::{Codec, Header, Message};

use super::sim_tests::{Cluster, agent, sim_config};
use super::*;

fn id(i: usize, bump: u64) -> MemberId {
    MemberId {
        agent: agent(i),
        bump,
    }
}

/// The codec of agent 2 (the destination of the headers below).
fn codec() -> WireCodec {
    WireCodec::new(Rc::new(RefCell::new(codec::Shared {
        me: agent(2),
        ..codec::Shared::default()
    })))
}

const T0: Timestamp = Timestamp(1_000_000);

fn member(i: usize) -> Membership {
    Membership::new(sim_config(), agent(i), T0, i as u64).unwrap()
}

fn sends(m: &mut Membership) -> Vec<(MemberId, Bytes)> {
    let mut v = Vec::new();
    while let Some(o) = m.poll_output() {
        if let MembershipOutput::Send { to, data } = o {
            v.push((to, data));
        }
    }
    v
}

#[test]
fn codec_round_trips_every_message_and_state() {
    let mut c = codec();
    let msgs = [
        Message::Ping(1),
        Message::Ack(2),
        Message::PingReq {
            target: id(3, 9),
            probe_number: 3,
        },
        Message::IndirectPing {
            origin: id(4, 9),
            probe_number: 4,
        },
        Message::IndirectAck {
            target: id(5, 9),
            probe_number: 5,
        },
        Message::ForwardedAck {
            origin: id(6, 9),
            probe_number: 6,
        },
        Message::Announce,
        Message::Feed,
        Message::Gossip,
        Message::Broadcast,
        Message::TurnUndead,
    ];
    for message in msgs {
        let h = Header {
            src: id(1, 7),
            src_incarnation: 3,
            dst: id(2, 8),
            message,
        };
        let mut buf = Vec::new();
        c.encode_header(&h, &mut buf).unwrap();
        assert_eq!(c.decode_header(&buf[..]).unwrap(), h);
        // Every cut is an error, never a panic.
        for len in 0..buf.len() {
            assert!(c.decode_header(&buf[..len]).is_err());
        }
    }
    for state in [State::Alive, State::Suspect, State::Down] {
        let m = Member::new(id(1, 2), 5, state);
        let mut buf = Vec::new();
        c.encode_member(&m, &mut buf).unwrap();
        assert_eq!(c.decode_member(&buf[..]).unwrap(), m);
    }
}

#[test]
fn codec_refuses_bad_input_and_leaves_no_partial_member() {
    let mut c = codec();
    assert_eq!(
        c.decode_member(&[0u8][..]).unwrap_err(),
        CodecError::BadIdLength(0)
    );
    assert_eq!(
        c.decode_member(&[65u8][..]).unwrap_err(),
        CodecError::BadIdLength(65)
    );
    let mut buf = Vec::new();
    c.encode_member(&Member::alive(id(1, 1)), &mut buf).unwrap();
    let n = buf.len();
    buf[n - 1] = 9;
    assert!(matches!(
        c.decode_member(&buf[..]),
        Err(CodecError::BadTag { what: "state", .. })
    ));
    // No room: nothing written.
    let mut small = [0u8; 10];
    let mut slice = &mut small[..];
    assert_eq!(
        c.encode_member(&Member::alive(id(1, 1)), &mut slice),
        Err(CodecError::NoRoom)
    );
    assert_eq!(small, [0u8; 10]);
}

#[test]
fn malformed_and_spoofed_packets_are_refused() {
    let mut a = member(0);
    let e = a.handle_data(T0, &[agent(1)], &[], |_| true);
    assert!(matches!(e, Err(MembershipError::Malformed(_))));
    let e = a.handle_data(T0, &[agent(1)], &[0, 1, 2], |_| true);
    assert!(matches!(e, Err(MembershipError::Malformed(_))));
    // Flags this version does not know.
    let e = a.handle_data(T0, &[agent(1)], &[4, 1, 2], |_| true);
    assert!(matches!(e, Err(MembershipError::Malformed(_))));
    // A real announce from agent 1 (its source agent left out on the wire) ...
    let mut b = member(1);
    b.add_peer(T0, &agent(0));
    let (_, data) = sends(&mut b).pop().unwrap();
    assert_eq!(data[0], codec::FLAG_IMPLICIT_SRC);
    // ... from a URL hosting two agents: which one sent it is unknown.
    let e = a.handle_data(T0, &[agent(1), agent(2)], &data, |_| true);
    assert_eq!(e, Err(MembershipError::Ambiguous(2)));
    // The same announce with its source written out, delivered as if from agent 2's URL.
    let whole = codec::from_wire(&data, &[agent(1)]).unwrap();
    let mut explicit = vec![0];
    explicit.extend_from_slice(&whole);
    let e = a.handle_data(T0, &[agent(2)], &explicit, |_| true);
    assert_eq!(e, Err(MembershipError::Spoofed(agent(1))));
    assert_eq!(a.liveness(&agent(1)), None);
    assert!(a.handle_data(T0, &[agent(1)], &data, |_| true).is_ok());
    assert_eq!(a.liveness(&agent(1)), Some(Liveness::Alive));
}

/// Network input never panics: every truncation and every single-byte change (xor 0xff, +1)
/// of real packets (announces, feeds, probes, acks, indirect probes, gossip with updates,
/// dozing hints and a leave) given to a member is an error or an accepted packet. The
/// outcomes are counted so the mutations are known to reach the decoder and foca, and the
/// member still takes the unchanged packets afterwards.
#[test]
fn every_cut_and_byte_change_of_real_packets_is_handled() {
    let mut c = Cluster::new(4, sim_config(), 11);
    c.recorded = Some(Vec::new());
    c.loss = 0.3; // lost probes bring indirect probes and suspicions
    c.run_for(Duration::from_secs(6));
    c.set_dozing(1, true);
    c.run_for(Duration::from_secs(2));
    c.leave(3);
    c.run_for(Duration::from_secs(2));
    let packets = c.recorded.take().unwrap();
    assert!(packets.len() > 50, "{} packets", packets.len());
    // Outcomes: taken by foca, refused by foca (counted, not an error), refused by our
    // decoder (`Malformed`), or refused as spoofed or ambiguous.
    let (mut taken, mut foca_refused, mut malformed, mut other) = (0u64, 0u64, 0u64, 0u64);
    for (from, to, data) in &packets {
        // A member of an agent outside the cluster (9), for which every packet is
        // misaddressed, then the packet's own destination.
        for me in [9, *to] {
            let mut m = member(me);
            for d in cuts_and_byte_changes(data) {
                let refused_before = m.stats().foca_errors;
                match m.handle_data(T0, &[agent(*from)], &d, |_| true) {
                    Ok(()) if m.stats().foca_errors > refused_before => foca_refused += 1,
                    Ok(()) => taken += 1,
                    Err(MembershipError::Malformed(_)) => malformed += 1,
                    Err(_) => other += 1,
                }
                m.handle_timeout(T0.plus(Duration::from_millis(100)));
                while m.poll_output().is_some() {}
            }
            assert!(m.handle_data(T0, &[agent(*from)], data, |_| true).is_ok());
        }
    }
    assert!(
        taken > 1_000 && foca_refused > 1_000 && malformed > 1_000,
        "taken {taken}, refused by foca {foca_refused}, malformed {malformed}, other {other}"
    );
}

/// Every prefix of `data` shorter than it, and `data` with each byte xored with 0xff or
/// incremented.
fn cuts_and_byte_changes(data: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..data.len()).map(|n| data[..n].to_vec()).collect();
    for i in 0..data.len() {
        for change in [data[i] ^ 0xff, data[i].wrapping_add(1)] {
            let mut d = data.to_vec();
            d[i] = change;
            v.push(d);
        }
    }
    v
}

#[test]
fn the_wire_form_leaves_our_agent_out_and_restores_it() {
    let mut c = codec();
    let header = Header {
        src: id(1, 7),
        src_incarnation: 3,
        dst: id(2, 9),
        message: Message::Ping(4),
    };
    let mut packet = Vec::new();
    c.encode_header(&header, &mut packet).unwrap();
    let wire = codec::to_wire(&agent(1), &packet);
    // Flags byte, then the packet without its 1 + 32 bytes of source agent.
    assert_eq!(wire.len(), packet.len() + 1 - 33);
    assert_eq!(wire[0], codec::FLAG_IMPLICIT_SRC);
    assert_eq!(codec::from_wire(&wire, &[agent(1)]).unwrap(), packet);
    assert_eq!(c.decode_header(&packet[..]).unwrap().src, id(1, 7));
    // A packet whose source is not us (never sent, but handled) goes out whole.
    let whole = codec::to_wire(&agent(3), &packet);
    assert_eq!((whole[0], &whole[1..]), (0, &packet[..]));
    assert_eq!(codec::from_wire(&whole, &[]).unwrap(), packet);
    assert_eq!(
        codec::from_wire(&wire, &[]),
        Err(codec::WireFormError::Ambiguous(0))
    );
    assert_eq!(
        codec::from_wire(&[], &[agent(1)]),
        Err(codec::WireFormError::BadFlags(None))
    );
}

/// Member 0 knows 1 and 2; it feeds member 3 (answering its announce), which admits only
/// agent 1: agent 2 never becomes a member of 3.
#[test]
fn updates_about_unadmitted_agents_are_dropped() {
    let mut a = member(3);
    a.add_peer(T0, &agent(0));
    let (_, announce) = sends(&mut a).pop().unwrap();
    let mut m0 = Membership::new(sim_config(), agent(0), T0, 0).unwrap();
    for i in [1, 2] {
        let mut x = member(i);
        x.add_peer(T0, &agent(0));
        let (_, d) = sends(&mut x).pop().unwrap();
        m0.handle_data(T0, &[agent(i)], &d, |_| true).unwrap();
    }
    sends(&mut m0);
    m0.handle_data(T0, &[agent(3)], &announce, |_| true)
        .unwrap();
    let feed: Vec<_> = sends(&mut m0)
        .into_iter()
        .filter(|(to, _)| to.agent == agent(3))
        .collect();
    assert!(!feed.is_empty());
    for (_, d) in feed {
        a.handle_data(T0, &[agent(0)], &d, |x| *x != agent(2))
            .unwrap();
    }
    assert_eq!(a.liveness(&agent(1)), Some(Liveness::Alive));
    assert_eq!(
        a.liveness(&agent(2)),
        None,
        "unadmitted agent became a member"
    );
    assert!(a.stats().updates_dropped >= 1);
}

#[test]
fn a_leave_is_reported_as_left_not_down() {
    let mut c = Cluster::new(10, sim_config(), 8);
    c.run_for(Duration::from_secs(10));
    assert!(c.converged());
    let now = c.now;
    c.leave(3);
    c.run_for(Duration::from_secs(2));
    let lefts: Vec<_> = c
        .events
        .iter()
        .filter(|(t, _, e)| *t >= now && *e == MemberEvent::Left(agent(3)))
        .collect();
    assert_eq!(lefts.len(), 9, "every other member reports left");
    assert!(c.downs_of(3).is_empty());
    // Under a second after the leave.
    assert!(
        lefts
            .iter()
            .all(|(t, _, _)| t.micros_since(now) < 1_000_000)
    );
}

#[test]
fn dozing_members_get_the_long_suspicion_timeout() {
    let mut c = Cluster::new(10, sim_config(), 9);
    c.run_for(Duration::from_secs(10));
    assert!(c.converged());
    c.set_dozing(4, true);
    c.run_for(Duration::from_secs(3));
    let at = c.now;
    c.crash(4);
    c.run_for(Duration::from_secs(20));
    // Normal suspicion is 2 s: without the hint it would be down by now.
    assert!(
        c.downs_of(4).is_empty(),
        "dozing member declared down early"
    );
    assert!(
        c.events
            .iter()
            .any(|(t, _, e)| *t >= at && *e == MemberEvent::Suspect(agent(4)))
    );
    c.run_for(Duration::from_secs(40));
    assert_eq!(c.downs_of(4).len(), 9);
}

/// A hint that left only after members declared the tab down (its JavaScript was paused the
/// moment it was hidden) is said again once the tab renewed its identity: after that first
/// down, no other, though the tab keeps pausing 5 s of every 5.4 s. Before, members dropped
/// the hint of the down identity and declared the tab down at every pause (36 downs in the
/// minute, as in the browser soak).
#[test]
fn a_dozing_hint_sent_while_declared_down_is_said_again_after_renewal() {
    let mut c = super::sim_tests::converged(4, 7);
    c.run_for(Duration::from_secs(5));
    c.stall(3, Duration::from_secs(5));
    c.run_for(Duration::from_millis(4990));
    c.set_dozing(3, true);
    c.run_for(Duration::from_millis(410));
    let first = c.downs_of(3).len();
    assert!(first > 0, "the first pause, without the hint, is a down");
    for _ in 0..11 {
        c.stall(3, Duration::from_secs(5));
        c.run_for(Duration::from_millis(5400));
    }
    assert_eq!(c.downs_of(3).len(), first, "{:?}", c.downs_of(3));
}

/// Delivers everything `m` and `b` send each other until both are quiet.
fn exchange(now: Timestamp, m: &mut Membership, b: &mut Membership) {
    loop {
        let to_b = sends(m);
        let to_m = sends(b);
        if to_b.is_empty() && to_m.is_empty() {
            return;
        }
        for (_, d) in to_b {
            b.handle_data(now, &[m.identity().agent.clone()], &d, |_| true)
                .unwrap();
        }
        for (_, d) in to_m {
            m.handle_data(now, &[b.identity().agent.clone()], &d, |_| true)
                .unwrap();
        }
    }
}

/// The timer queue: `poll_timeout` is the earliest deadline, a wake-up a microsecond before
/// it runs nothing, and one at it runs every timer due then.
#[test]
fn timers_run_at_their_deadline_and_not_before() {
    let mut m = member(0);
    let mut b = member(1);
    m.add_peer(T0, &agent(1));
    exchange(T0, &mut m, &mut b);
    for _ in 0..20 {
        let due = m.poll_timeout().unwrap();
        m.handle_timeout(Timestamp(due.0 - 1));
        assert!(sends(&mut m).is_empty(), "a timer ran before {due:?}");
        assert_eq!(m.poll_timeout(), Some(due));
        m.handle_timeout(due);
        assert!(
            m.poll_timeout().unwrap() > due,
            "a timer due at {due:?} did not run"
        );
        exchange(due, &mut m, &mut b);
    }
    assert_eq!(m.liveness(&agent(1)), Some(Liveness::Alive));
}

#[test]
fn late_timers_raise_local_health_and_stretch_the_probe_period() {
    let mut m = member(0);
    m.add_peer(T0, &agent(1));
    let mut b = member(1);
    let (_, ann) = sends(&mut m).pop().unwrap();
    b.handle_data(T0, &[agent(0)], &ann, |_| true).unwrap();
    for (_, d) in sends(&mut b) {
        m.handle_data(T0, &[agent(1)], &d, |_| true).unwrap();
    }
    // Every wake-up a second late (b answers at once); record how far ahead each newly
    // scheduled probe is.
    let mut gaps = Vec::new();
    for _ in 0..40 {
        let due = m.poll_timeout().unwrap();
        let now = due.plus(Duration::from_secs(1));
        let before = m.next_probe();
        m.handle_timeout(now);
        exchange(now, &mut m, &mut b);
        if let Some(next) = m.next_probe().filter(|n| Some(*n) != before) {
            gaps.push(next.micros_since(now));
        }
    }
    assert_eq!(m.local_health(), sim_config().max_health);
    // The probe period grew with the score, up to (max_health + 1) periods.
    assert!(gaps.first() < gaps.last(), "{gaps:?}");
    let longest = sim_config().probe_period * (sim_config().max_health + 1);
    assert_eq!(gaps.last(), Some(&(longest.as_micros() as i64)), "{gaps:?}");
    // On-time wake-ups bring it back down.
    for _ in 0..10 {
        let due = m.poll_timeout().unwrap();
        m.handle_timeout(due);
        exchange(due, &mut m, &mut b);
    }
    assert_eq!(m.liveness(&agent(1)), Some(Liveness::Alive));
    assert_eq!(m.local_health(), 0);
}

#[test]
fn config_errors_name_the_field() {
    let cfg = MembershipConfig {
        probe_rtt: Duration::from_secs(2),
        ..MembershipConfig::default()
    };
    assert_eq!(cfg.validate().unwrap_err().field, "membership.probe_rtt");
    let cfg = MembershipConfig {
        max_members: 0,
        ..MembershipConfig::default()
    };
    assert_eq!(cfg.validate().unwrap_err().field, "membership.max_members");
}

#[test]
fn forgetting_a_member_is_silent() {
    let mut c = Cluster::new(4, sim_config(), 10);
    c.run_for(Duration::from_secs(5));
    assert!(c.converged());
    let n = c.events.len();
    c.forget(0, 2);
    assert_eq!(c.member(0).liveness(&agent(2)), Some(Liveness::Left));
    assert_eq!(
        c.events.len(),
        n,
        "no event: the space reported the agent gone"
    );
}

/// Lifeguard's buddy system: the moment `m` suspects `b`, it sends `b` a Ping carrying the
/// suspicion; `b` refutes before it acks, so the ack alone brings `m` back to alive, no
/// timer needed.
#[test]
fn a_suspected_member_is_told_at_once_and_its_ack_refutes() {
    let mut m = member(0);
    m.add_peer(T0, &agent(1));
    let mut b = member(1);
    exchange(T0, &mut m, &mut b);
    // Members 2..=5 keep answering, so m's next probe after the suspicion goes to one of
    // them (foca probes round-robin): only the buddy message tells b at once.
    let mut xs: Vec<Membership> = (2..=5).map(member).collect();
    for x in &mut xs {
        let a = x.identity().agent.clone();
        m.add_peer(T0, &a);
        exchange(T0, &mut m, x);
    }
    assert_eq!(m.liveness(&agent(1)), Some(Liveness::Alive));
    // b hears nothing from now on, until m suspects it; x hears only what is for x.
    let mut c = WireCodec::new(Rc::new(RefCell::new(codec::Shared {
        me: agent(1),
        ..codec::Shared::default()
    })));
    // A Ping to b whose only update is b's suspicion.
    let mut is_buddy = |data: &Bytes| {
        let Ok(packet) = codec::from_wire(data, &[agent(0)]) else {
            return false;
        };
        let mut buf = &packet[..];
        let Ok(h) = c.decode_header(&mut buf) else {
            return false;
        };
        if !matches!(h.message, Message::Ping(_)) || bytes::Buf::get_u16(&mut buf) != 1 {
            return false;
        }
        c.decode_member(&mut buf)
            .is_ok_and(|u| u.id().agent == agent(1) && u.state() == State::Suspect)
    };
    let mut told = None;
    for _ in 0..500 {
        let now = m.poll_timeout().unwrap();
        m.handle_timeout(now);
        let mut out = sends(&mut m);
        for x in &mut xs {
            let a = x.identity().agent.clone();
            for (_, d) in out.extract_if(.., |(to, _)| to.agent == a) {
                x.handle_data(now, &[agent(0)], &d, |_| true).unwrap();
            }
            for (_, d) in sends(x) {
                m.handle_data(now, std::slice::from_ref(&a), &d, |_| true)
                    .unwrap();
            }
        }
        out.extend(sends(&mut m));
        if m.liveness(&agent(1)) == Some(Liveness::Suspect) {
            told = out
                .into_iter()
                .find(|(to, d)| to.agent == agent(1) && is_buddy(d))
                .map(|(_, d)| (now, d));
            break;
        }
    }
    let (now, data) = told.expect("m suspects b and tells it at once");
    // b refutes and acks; the ack alone clears the suspicion at m.
    b.handle_data(now, &[agent(0)], &data, |_| true).unwrap();
    for (_, d) in sends(&mut b) {
        m.handle_data(now, &[agent(1)], &d, |_| true).unwrap();
    }
    assert_eq!(m.liveness(&agent(1)), Some(Liveness::Alive));
}
