//! Tests of the app-facing additions of issue 12: notify (send/message), sync progress and
//! the agent of a received op, over the shared simulated network in its instant setting.

use super::*;
use crate::model::agent::AgentKey;
use crate::testing::{SimConfig, SimNet};

const T0: Timestamp = Timestamp(1_700_000_000_000_000);

fn url(n: u8) -> Url {
    Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
}

fn agent(n: u8) -> AgentId {
    AgentKey::from_secret_bytes(&[n; 32]).agent_id()
}

/// Nodes 1..=`n`, introduced to each other and settled.
fn net(n: u8) -> SimNet {
    net_with(n, |_| {})
}

/// [`net`] with each node's config changed by `edit`.
fn net_with(n: u8, edit: impl Fn(&mut SpaceConfig)) -> SimNet {
    let mut net = SimNet::new(SimConfig::instant(T0));
    for i in 1..=n {
        let key = AgentKey::from_secret_bytes(&[i; 32]);
        let mut cfg = SpaceConfig::new(SpaceId::from_bytes(vec![5u8; 32]));
        edit(&mut cfg);
        let space = Space::new(cfg, Box::new(key), agent(i), Some(url(i)), T0, i as u64).unwrap();
        let store = net.mem_store();
        net.add(space, store);
    }
    net.introduce();
    net.settle();
    net
}

#[test]
fn a_notify_reaches_the_agent_with_its_sender_and_the_send_is_reported() {
    let mut net = net(2);
    let now = net.now();
    let ticket = net.nodes[0]
        .space
        .send_notify(now, &agent(2), Bytes::from_static(b"hi"))
        .unwrap();
    net.settle();
    assert!(net.nodes[1].has(|e| matches!(e,
        SpaceEvent::Notified { agent: Some(a), from, data }
            if a == &agent(1) && from == &url(1) && &data[..] == b"hi")));
    assert!(net.nodes[0].has(|e| matches!(e,
        SpaceEvent::NotifySent { ticket: t, result: Ok(()) } if *t == ticket)));
}

#[test]
fn a_notify_that_cannot_go_is_refused_and_sends_nothing() {
    let mut net = net(2);
    let now = net.now();
    let s = &mut net.nodes[0].space;
    let sent = s.stats().frames_sent;
    assert_eq!(
        s.send_notify(now, &agent(9), Bytes::new()),
        Err(NotifyError::Unreachable(agent(9)))
    );
    assert_eq!(
        s.send_notify(now, &agent(1), Bytes::new()),
        Err(NotifyError::ToSelf)
    );
    let big = Bytes::from(vec![0u8; MAX_NOTIFY_BYTES + 1]);
    assert_eq!(
        s.send_notify(now, &agent(2), big),
        Err(NotifyError::TooLarge(MAX_NOTIFY_BYTES + 1))
    );
    assert_eq!(s.stats().frames_sent, sent);
    s.leave(now).unwrap();
    assert_eq!(
        s.send_notify(now, &agent(2), Bytes::new()),
        Err(NotifyError::Left)
    );
}

/// Node 1 publishes 40 ops of 4 bytes at once; the net runs 2 s.
fn publish_40_small_ops(net: &mut SimNet) {
    let now = net.now();
    for i in 0..40u32 {
        net.nodes[0]
            .space
            .publish(now, i.to_le_bytes().to_vec())
            .unwrap();
    }
    net.settle();
    net.advance_to(now.add_micros(2_000_000));
}

#[test]
fn fetched_ops_report_sync_progress_to_the_end_and_name_the_sending_agent() {
    // Announced, not pushed: a sync round is about ops fetched.
    let mut net = net_with(2, |c| c.push_max_bytes = 0);
    publish_40_small_ops(&mut net);
    let b = &net.nodes[1];
    assert_eq!(b.received(), 40);
    assert!(
        b.has(|e| matches!(e, SpaceEvent::OpReceived { agent: Some(a), .. } if a == &agent(1)))
    );
    let reports: Vec<SyncProgress> = b
        .events
        .iter()
        .filter_map(|e| match e {
            SpaceEvent::Sync(p) => Some(*p),
            _ => None,
        })
        .collect();
    let first = reports.first().expect("a sync report");
    assert!(first.remaining > 0 && first.fetched == 0, "{reports:?}");
    let last = reports.last().unwrap();
    assert_eq!(
        *last,
        SyncProgress {
            missing: 40,
            fetched: 40,
            failed: 0,
            remaining: 0
        },
        "{reports:?}"
    );
    for w in reports.windows(2) {
        assert!(w[0].missing <= w[1].missing && w[0].fetched <= w[1].fetched);
    }
    // The publisher fetched nothing: no round, no report.
    assert!(!net.nodes[0].has(|e| matches!(e, SpaceEvent::Sync(_))));

    // Pushed ops (the default for a small batch) are no part of a sync round.
    let mut net = net_with(2, |_| {});
    publish_40_small_ops(&mut net);
    assert_eq!(net.nodes[1].received(), 40);
    assert_eq!(net.nodes[1].space.stats().pushed_taken, 40);
    assert!(!net.nodes[1].has(|e| matches!(e, SpaceEvent::Sync(_))));
}
