use super::*;
use crate::model::op::{Op, verify_op};
use crate::model::time::Timestamp;

fn space() -> SpaceId {
    SpaceId::from_bytes(&b"sp"[..])
}

fn b<const N: usize>(s: &'static [u8; N]) -> Bytes {
    Bytes::from_static(s)
}

fn id(n: u8) -> OpId {
    OpId::from_bytes(vec![n; 32])
}

fn arc_set() -> Option<ArcSetMessage> {
    Some(ArcSetMessage {
        value: vec![u32::MAX, 0, 1, 300],
    })
}

fn accept_response() -> Option<AcceptResponseMessage> {
    Some(AcceptResponseMessage {
        missing_agents: vec![b(b"a1")],
        provided_agents: vec![b(b"{\"agentInfo\":\"x\"}")],
        new_ops: vec![id(4).0.0],
        updated_new_since: 1_731_690_797_907_204,
    })
}

fn disc_details() -> Option<SnapshotDiscSectorDetailsMessage> {
    Some(SnapshotDiscSectorDetailsMessage {
        disc_boundary: -5,
        sector_indices: vec![0, 511],
        disc_slice_hashes: vec![
            DiscSliceHashes {
                slice_indices: vec![0, u64::MAX],
                hashes: vec![b(b"h1"), b(b"h2")],
            },
            DiscSliceHashes::default(),
        ],
    })
}

fn ring_details() -> Option<SnapshotRingSectorDetailsMessage> {
    Some(SnapshotRingSectorDetailsMessage {
        disc_boundary: 99,
        ring_indices: vec![3],
        ring_sector_hashes: vec![RingSectorHashes {
            sector_indices: vec![7, 8],
            hashes: vec![b(b"r7"), b(b"r8")],
        }],
    })
}

/// One of each gossip message, with every field set.
fn all_gossip() -> Vec<GossipMsg> {
    let s = b(b"session");
    vec![
        GossipMsg::Initiate(K2GossipInitiateMessage {
            session_id: s.clone(),
            participating_agents: vec![b(b"ag1"), b(b"ag2")],
            arc_set: arc_set(),
            tie_breaker: 0xdead_beef,
            new_since: i64::MIN,
            max_op_data_bytes: u32::MAX,
            dht_op_count: Some(0),
            fennec_reconcile: true,
        }),
        GossipMsg::Accept(K2GossipAcceptMessage {
            session_id: s.clone(),
            participating_agents: vec![b(b"ag3")],
            arc_set: arc_set(),
            missing_agents: vec![b(b"ag1")],
            new_since: 12,
            max_op_data_bytes: 1 << 20,
            new_ops: vec![id(1).0.0, id(2).0.0],
            updated_new_since: 13,
            dht_op_count: Some(u64::MAX),
            snapshot: Some(SnapshotMinimalMessage {
                disc_boundary: 100,
                disc_top_hash: b(b"top"),
                ring_top_hashes: vec![b(b"r0"), Bytes::new()],
            }),
            fennec_reconcile: true,
        }),
        GossipMsg::NoDiff(K2GossipNoDiffMessage {
            session_id: s.clone(),
            accept_response: accept_response(),
            cannot_compare: true,
        }),
        GossipMsg::DiscSectorsDiff(K2GossipDiscSectorsDiffMessage {
            session_id: s.clone(),
            accept_response: accept_response(),
            snapshot: Some(SnapshotDiscSectorsMessage {
                disc_boundary: 1,
                disc_sectors: vec![1, 2, 3],
                disc_sector_hashes: vec![b(b"x"), b(b"y"), b(b"z")],
            }),
            fennec_reconcile: Some(FennecReconcileMessage {
                from: 0,
                symbols: b(b"sym"),
                want: 0,
                ..Default::default()
            }),
        }),
        GossipMsg::DiscSectorDetailsDiff(K2GossipDiscSectorDetailsDiffMessage {
            session_id: s.clone(),
            provided_agents: vec![b(b"{}")],
            snapshot: disc_details(),
            fennec_reconcile: Some(FennecReconcileMessage {
                from: 4,
                symbols: Bytes::new(),
                want: 16,
                ..Default::default()
            }),
        }),
        GossipMsg::DiscSectorDetailsDiffResponse(K2GossipDiscSectorDetailsDiffResponseMessage {
            session_id: s.clone(),
            missing_ids: vec![id(9).0.0],
            snapshot: disc_details(),
            fennec_reconcile: Some(FennecReconcileMessage {
                ids: Bytes::from(vec![7u8; 64]),
                whole_list: true,
                ..Default::default()
            }),
        }),
        GossipMsg::RingSectorDetailsDiff(K2GossipRingSectorDetailsDiffMessage {
            session_id: s.clone(),
            accept_response: accept_response(),
            snapshot: ring_details(),
        }),
        GossipMsg::RingSectorDetailsDiffResponse(K2GossipRingSectorDetailsDiffResponseMessage {
            session_id: s.clone(),
            missing_ids: vec![id(8).0.0],
            snapshot: ring_details(),
        }),
        GossipMsg::Hashes(K2GossipHashesMessage {
            session_id: s.clone(),
            missing_ids: vec![id(7).0.0, id(6).0.0],
        }),
        GossipMsg::Agents(K2GossipAgentsMessage {
            session_id: s.clone(),
            provided_agents: vec![b(b"{\"a\":1}")],
        }),
        GossipMsg::Busy(K2GossipBusyMessage {
            session_id: s.clone(),
        }),
        GossipMsg::Terminate(K2GossipTerminateMessage {
            session_id: s,
            reason: "bored ✓".into(),
        }),
    ]
}

/// One of each wire message (every gossip type included).
fn all_messages() -> Vec<WireMessage> {
    let mut v = vec![
        WireMessage::Unspecified { ty: 0 },
        WireMessage::Unspecified { ty: 7 },
        WireMessage::Preflight(Bytes::new()),
        WireMessage::Preflight(b(b"{\"agents\":[]}")),
        WireMessage::Notify {
            space: space(),
            data: b(b"note"),
        },
        WireMessage::Notify {
            space: SpaceId::default(),
            data: Bytes::new(),
        },
        WireMessage::Fetch {
            space: space(),
            msg: FetchMsg::Request(vec![id(1), id(2), OpId::default()]),
        },
        WireMessage::Fetch {
            space: space(),
            msg: FetchMsg::Request(vec![]),
        },
        WireMessage::Fetch {
            space: space(),
            msg: FetchMsg::Response(vec![(id(1), b(b"data1")), (id(2), Bytes::new())]),
        },
        WireMessage::Publish {
            space: space(),
            msg: PublishMsg::Ops(vec![id(3), id(4)]),
        },
        WireMessage::Publish {
            space: space(),
            msg: PublishMsg::Introduction(vec![id(5)]),
        },
        WireMessage::Publish {
            space: space(),
            msg: PublishMsg::Agent("{\"agentInfo\":\"…\",\"signature\":\"s\"}".into()),
        },
        WireMessage::Disconnect("going away".into()),
        WireMessage::Disconnect(String::new()),
        WireMessage::Membership {
            data: Bytes::from_static(&[0, 1, 2, 3]),
        },
    ];
    v.extend(all_gossip().into_iter().map(|msg| WireMessage::Gossip {
        space: space(),
        msg,
    }));
    v
}

#[test]
fn every_message_round_trips() {
    let all = all_messages();
    assert_eq!(all.len(), 15 + 12);
    for m in all {
        let frame = m.encode();
        assert_eq!(WireMessage::decode(frame.clone()), Ok(m.clone()), "{m:?}");
        // Deterministic: re-encoding the decoded message gives the same bytes.
        assert_eq!(WireMessage::decode(frame.clone()).unwrap().encode(), frame);
    }
}

#[test]
fn gossip_msg_round_trips_alone() {
    for (i, g) in all_gossip().into_iter().enumerate() {
        assert_eq!(g.msg_type() as usize, i + 1);
        assert_eq!(g.session_id(), &b(b"session"));
        assert_eq!(GossipMsg::decode(g.encode()), Ok(g));
    }
}

#[test]
fn prost_structs_round_trip() {
    fn rt<M: Message + Default + PartialEq + std::fmt::Debug>(m: M) {
        assert_eq!(M::decode(&m.encode_to_vec()[..]).unwrap(), m);
    }
    rt(K2Proto {
        ty: 3,
        data: b(b"d"),
        space_id: Some(Bytes::new()),
        module_id: Some(String::new()),
    });
    rt(WireOp {
        op_id: b(b"i"),
        data: b(b"d"),
    });
    rt(PublishOpEntry {
        op_id: b(b"i"),
        metadata: Some(b(b"meta")),
    });
    rt(PublishOps {
        entries: vec![PublishOpEntry::default()],
        fennec_introduction: true,
    });
    rt(K2GossipMessage {
        msg_type: 2,
        data: b(b"x"),
    });
}

// ---------------------------------------------------------------------------------------------
// Byte-level fixtures, computed by hand from the field numbers in Kitsune2's .proto files:
// key = (field_number << 3) | wire_type, wire_type 0 = varint, 2 = length-delimited.

#[test]
fn k2proto_bytes_match_hand_encoding() {
    let frame = encode_module(&space(), "Fetch", b(b"d"));
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x08, 0x03,                         // 1 ty: varint MODULE = 3
        0x12, 0x01, b'd',                   // 2 data
        0x1a, 0x02, b's', b'p',             // 3 space_id
        0x22, 0x05, b'F', b'e', b't', b'c', b'h', // 4 module_id
    ];
    assert_eq!(&frame[..], want);

    // DISCONNECT = 15, no space, no module.
    assert_eq!(
        &encode_disconnect("bye")[..],
        &[0x08, 0x0f, 0x12, 0x03, b'b', b'y', b'e']
    );
    // proto3 `optional` keeps presence: an empty space id is still written.
    let p = K2Proto {
        ty: 2,
        data: Bytes::new(),
        space_id: Some(Bytes::new()),
        module_id: None,
    };
    assert_eq!(p.encode_to_vec(), [0x08, 0x02, 0x1a, 0x00]);
    // Preflight with empty data: only the type (proto3 omits empty `bytes data`).
    assert_eq!(&encode_preflight(Bytes::new())[..], &[0x08, 0x01]);
    // Membership: fennec's type 0x4D, data, nothing else (4 bytes of envelope).
    assert_eq!(
        &encode_membership(b(b"swim"))[..],
        &[0x08, 0x4d, 0x12, 0x04, b's', b'w', b'i', b'm']
    );
}

/// Kitsune2 has no type 0x4D: its reading of a membership frame is UNSPECIFIED (ignored), and
/// fennec reads it whatever else the frame carries (the space is the connection's).
#[test]
fn membership_is_a_type_kitsune2_ignores() {
    assert!(K2WireType::try_from(WIRE_TYPE_MEMBERSHIP).is_err());
    let f = K2Proto {
        ty: WIRE_TYPE_MEMBERSHIP,
        data: b(b"p"),
        space_id: Some(b(b"another")),
        module_id: Some("Fetch".into()),
    };
    assert_eq!(
        WireMessage::decode(f.encode_to_vec().into()),
        Ok(WireMessage::Membership { data: b(b"p") })
    );
}

#[test]
fn fetch_request_bytes_match_hand_encoding() {
    let ids = [OpId::from_bytes(vec![1, 2]), OpId::from_bytes(vec![3])];
    let frame = encode_fetch_request(&space(), &ids);
    #[rustfmt::skip]
    let req: &[u8] = &[
        0x0a, 0x02, 1, 2,   // FetchRequest 1 op_ids
        0x0a, 0x01, 3,
    ];
    let mut fetch = vec![0x08, 0x01, 0x12, req.len() as u8]; // K2FetchMessage REQUEST, data
    fetch.extend_from_slice(req);
    let mut want = vec![0x08, 0x03, 0x12, fetch.len() as u8];
    want.extend_from_slice(&fetch);
    want.extend_from_slice(&[0x1a, 0x02, b's', b'p', 0x22, 0x05]);
    want.extend_from_slice(b"Fetch");
    assert_eq!(&frame[..], &want[..]);
}

#[test]
fn fetch_response_and_publish_bytes_match_hand_encoding() {
    let r = FetchResponse {
        ops: vec![WireOp {
            op_id: b(b"\x07"),
            data: b(b"\x08\x09"),
        }],
    };
    // 1 ops: message { 1 op_id, 2 data }
    assert_eq!(
        r.encode_to_vec(),
        [0x0a, 0x07, 0x0a, 0x01, 0x07, 0x12, 0x02, 0x08, 0x09]
    );
    let m = K2FetchMessage {
        fetch_message_type: FetchMessageType::Response as i32,
        data: b(b"z"),
    };
    assert_eq!(m.encode_to_vec(), [0x08, 0x02, 0x12, 0x01, b'z']);

    let mut p = PublishOps {
        entries: vec![PublishOpEntry {
            op_id: b(b"\x09"),
            metadata: Some(b(b"m")),
        }],
        // Off: the bytes are Kitsune2's exactly (false is not encoded).
        fennec_introduction: false,
    };
    // 1 entries: message { 1 op_id, 2 metadata }
    let kitsune2 = [0x0a, 0x06, 0x0a, 0x01, 0x09, 0x12, 0x01, b'm'];
    assert_eq!(p.encode_to_vec(), kitsune2);
    // On: Kitsune2's bytes, then field 1000 as a varint (key 8000 = 0xc0 0x3e), true.
    p.fennec_introduction = true;
    assert_eq!(
        p.encode_to_vec(),
        [&kitsune2[..], &[0xc0, 0x3e, 0x01]].concat()
    );
    let a = PublishAgent {
        agent_info: "{}".into(),
    };
    assert_eq!(a.encode_to_vec(), [0x0a, 0x02, b'{', b'}']);
    let k = K2PublishMessage {
        publish_message_type: PublishMessageType::Agent as i32,
        data: b(b"q"),
    };
    assert_eq!(k.encode_to_vec(), [0x08, 0x02, 0x12, 0x01, b'q']);
}

#[test]
fn gossip_bytes_match_hand_encoding() {
    let init = K2GossipInitiateMessage {
        session_id: b(b"\xaa"),
        participating_agents: vec![b(b"\xbb")],
        arc_set: Some(ArcSetMessage {
            value: vec![1, 300],
        }),
        tie_breaker: 7,
        new_since: -1,
        max_op_data_bytes: 9,
        dht_op_count: Some(0),
        // Off: the bytes are Kitsune2's exactly (false is not encoded).
        fennec_reconcile: false,
    };
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x0a, 0x01, 0xaa,                         // 1 session_id
        0x52, 0x01, 0xbb,                         // 10 participating_agents
        0x5a, 0x05, 0x0a, 0x03, 0x01, 0xac, 0x02, // 11 arc_set { 1 value packed [1, 300] }
        0x60, 0x07,                               // 12 tie_breaker
        0xa0, 0x01,                               // 20 new_since = -1 (10-byte varint)
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        0xa8, 0x01, 0x09,                         // 21 max_op_data_bytes
        0xb0, 0x01, 0x00,                         // 22 dht_op_count (optional: 0 is written)
    ];
    assert_eq!(init.encode_to_vec(), want);

    let acc = K2GossipAcceptMessage {
        session_id: b(b"\xaa"),
        missing_agents: vec![b(b"\xcc")],
        new_ops: vec![b(b"\xdd")],
        updated_new_since: 2,
        dht_op_count: Some(3),
        snapshot: Some(SnapshotMinimalMessage {
            disc_boundary: 4,
            disc_top_hash: b(b"t"),
            ring_top_hashes: vec![b(b"r")],
        }),
        ..Default::default()
    };
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x0a, 0x01, 0xaa,       // 1 session_id
        0x62, 0x01, 0xcc,       // 12 missing_agents
        0xb2, 0x01, 0x01, 0xdd, // 22 new_ops
        0xb8, 0x01, 0x02,       // 23 updated_new_since
        0xc0, 0x01, 0x03,       // 24 dht_op_count
        0xf2, 0x01, 0x08,       // 30 snapshot { 1 disc_boundary, 2 disc_top_hash, 3 ring_top_hashes }
        0x08, 0x04, 0x12, 0x01, b't', 0x1a, 0x01, b'r',
    ];
    assert_eq!(acc.encode_to_vec(), want);

    let nd = K2GossipNoDiffMessage {
        session_id: Bytes::new(),
        accept_response: Some(AcceptResponseMessage {
            updated_new_since: 5,
            new_ops: vec![b(b"o")],
            ..Default::default()
        }),
        cannot_compare: true,
    };
    // 2 accept_response { 3 new_ops, 4 updated_new_since }, 10 cannot_compare
    assert_eq!(
        nd.encode_to_vec(),
        [0x12, 0x05, 0x1a, 0x01, b'o', 0x20, 0x05, 0x50, 0x01]
    );

    let t = GossipMsg::Terminate(K2GossipTerminateMessage {
        session_id: b(b"\xaa"),
        reason: "no".into(),
    });
    // K2GossipMessage { 1 msg_type TERMINATE = 12, 2 data { 1 session_id, 2 reason } }
    assert_eq!(
        &t.encode()[..],
        &[
            0x08, 0x0c, 0x12, 0x07, 0x0a, 0x01, 0xaa, 0x12, 0x02, b'n', b'o'
        ]
    );
    let busy = GossipMsg::Busy(K2GossipBusyMessage {
        session_id: b(b"\xaa"),
    });
    assert_eq!(
        &busy.encode()[..],
        &[0x08, 0x0b, 0x12, 0x03, 0x0a, 0x01, 0xaa]
    );
}

// ---------------------------------------------------------------------------------------------
// Receive-path rules.

#[test]
fn notify_and_module_need_a_space() {
    for (ty, name) in [(2, "NOTIFY"), (3, "MODULE")] {
        let f = K2Proto {
            ty,
            data: Bytes::new(),
            space_id: None,
            module_id: Some("Fetch".into()),
        };
        assert_eq!(
            WireMessage::decode(f.encode_to_vec().into()),
            Err(WireError::MissingSpaceId { ty: name })
        );
    }
}

#[test]
fn module_needs_a_known_module_id() {
    let mut f = K2Proto {
        ty: 3,
        data: Bytes::new(),
        space_id: Some(b(b"sp")),
        module_id: None,
    };
    assert_eq!(
        WireMessage::decode(f.encode_to_vec().into()),
        Err(WireError::MissingModuleId)
    );
    // "fennec.swim": membership's module id before it became `WIRE_TYPE_MEMBERSHIP`.
    for m in ["fetch", "gossip", "", "sharding", "fennec.swim"] {
        f.module_id = Some(m.into());
        assert_eq!(
            WireMessage::decode(f.encode_to_vec().into()),
            Err(WireError::UnknownModule(m.into()))
        );
    }
}

#[test]
fn unknown_wire_type_is_unspecified_and_extra_fields_are_ignored() {
    for ty in [0, 4, 14, 16, -1, i32::MAX] {
        let f = K2Proto {
            ty,
            data: b(b"future"),
            space_id: None,
            module_id: None,
        };
        assert_eq!(
            WireMessage::decode(f.encode_to_vec().into()),
            Ok(WireMessage::Unspecified { ty })
        );
    }
    // A field from a future version (9, varint) is skipped.
    let mut f = encode_disconnect("x").to_vec();
    f.extend_from_slice(&[0x48, 0x01]);
    assert_eq!(
        WireMessage::decode(f.into()),
        Ok(WireMessage::Disconnect("x".into()))
    );
    // Preflight ignores space and module.
    let f = K2Proto {
        ty: 1,
        data: b(b"p"),
        space_id: Some(b(b"s")),
        module_id: Some("nope".into()),
    };
    assert_eq!(
        WireMessage::decode(f.encode_to_vec().into()),
        Ok(WireMessage::Preflight(b(b"p")))
    );
}

#[test]
fn unknown_module_message_types_are_errors() {
    for (module, ty) in [
        (MODULE_FETCH, 0),
        (MODULE_FETCH, 3),
        (MODULE_PUBLISH, 0),
        (MODULE_PUBLISH, 9),
    ] {
        let inner = K2FetchMessage {
            fetch_message_type: ty,
            data: Bytes::new(),
        }; // same layout as K2PublishMessage
        let f = encode_module(&space(), module, inner.encode_to_vec());
        assert_eq!(
            WireMessage::decode(f),
            Err(WireError::UnknownMessageType { module, ty })
        );
    }
    for ty in [0, 13, -3] {
        let g = K2GossipMessage {
            msg_type: ty,
            data: Bytes::new(),
        };
        let f = encode_module(&space(), MODULE_GOSSIP, g.encode_to_vec());
        assert_eq!(
            WireMessage::decode(f),
            Err(WireError::UnknownMessageType {
                module: MODULE_GOSSIP,
                ty
            })
        );
    }
}

#[test]
fn disconnect_reason_is_lossy_utf8() {
    let f = K2Proto {
        ty: 15,
        data: b(b"a\xffb"),
        space_id: None,
        module_id: None,
    };
    assert_eq!(
        WireMessage::decode(f.encode_to_vec().into()),
        Ok(WireMessage::Disconnect("a\u{fffd}b".into()))
    );
}

#[test]
fn publish_metadata_is_accepted_and_dropped() {
    let ops = PublishOps {
        entries: vec![PublishOpEntry {
            op_id: id(1).0.0,
            metadata: Some(b(b"holochain stuff")),
        }],
        fennec_introduction: false,
    };
    let inner = K2PublishMessage {
        publish_message_type: 1,
        data: ops.encode_to_vec().into(),
    };
    let f = encode_module(&space(), MODULE_PUBLISH, inner.encode_to_vec());
    assert_eq!(
        WireMessage::decode(f),
        Ok(WireMessage::Publish {
            space: space(),
            msg: PublishMsg::Ops(vec![id(1)])
        })
    );
}

#[test]
fn fetched_ops_verify_end_to_end() {
    let op = Op::new(Timestamp(1_700_000_000_000_000), b(b"hello")).unwrap();
    let frame = encode_fetch_response(&space(), &[(op.id(), op.encode())]);
    let Ok(WireMessage::Fetch {
        msg: FetchMsg::Response(ops),
        ..
    }) = WireMessage::decode(frame)
    else {
        panic!("not a fetch response");
    };
    let (got_id, data) = &ops[0];
    assert_eq!(verify_op(got_id, data), Ok(op));
}

// ---------------------------------------------------------------------------------------------
// Hostile input: always an Err (or a harmless message), never a panic.

#[test]
fn oversized_frames_are_rejected_before_parsing() {
    let f = Bytes::from(vec![0u8; MAX_FRAME_BYTES + 1]);
    assert_eq!(
        WireMessage::decode(f),
        Err(WireError::FrameTooLarge {
            len: MAX_FRAME_BYTES + 1,
            max: MAX_FRAME_BYTES
        })
    );
    let f = encode_fetch_request(&space(), &[id(1), id(2)]);
    assert!(decode_frame(f.clone(), f.len()).is_ok());
    assert_eq!(
        decode_frame(f.clone(), f.len() - 1),
        Err(WireError::FrameTooLarge {
            len: f.len(),
            max: f.len() - 1
        })
    );
}

#[test]
fn truncated_frames_are_errors() {
    for m in all_messages() {
        let frame = m.encode();
        for len in 0..frame.len() {
            let r = WireMessage::decode(frame.slice(..len));
            match &m {
                // Space-scoped frames end with space_id (and module_id): every proper prefix
                // either cuts a field or drops a required one.
                WireMessage::Notify { .. }
                | WireMessage::Fetch { .. }
                | WireMessage::Publish { .. }
                | WireMessage::Gossip { .. }
                    if len > 0 =>
                {
                    assert!(r.is_err(), "{m:?} cut at {len}: {r:?}")
                }
                // After the type, only a cut inside the data is an error; at a boundary it
                // is an empty membership packet (which the membership codec refuses).
                WireMessage::Membership { .. } if len > 2 => {
                    assert!(r.is_err(), "{m:?} cut at {len}: {r:?}")
                }
                // Others may stop at a field boundary and still be a valid (shorter) message.
                _ => drop(r),
            }
        }
    }
    assert_eq!(
        WireMessage::decode(Bytes::new()),
        Ok(WireMessage::Unspecified { ty: 0 })
    );
}

#[test]
fn malformed_protobuf_is_an_error() {
    let cases: &[(&str, &[u8])] = &[
        ("ty as length-delimited", &[0x0a, 0x00]),
        ("data as varint", &[0x08, 0x03, 0x10, 0x01]),
        ("module_id as varint", &[0x08, 0x03, 0x1a, 0x00, 0x20, 0x01]),
        (
            "module_id not UTF-8",
            &[0x08, 0x03, 0x1a, 0x00, 0x22, 0x02, 0xff, 0xfe],
        ),
        ("length past end", &[0x08, 0x01, 0x12, 0x05, 1, 2]),
        ("length 4 GiB", &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        (
            "length u64::MAX",
            &[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
        (
            "overlong varint",
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
        ("truncated varint", &[0x08, 0x80]),
        ("truncated key", &[0x80]),
        ("field number 0", &[0x00, 0x01]),
        ("wire type 7", &[0x0f, 0x00]),
        ("end group without start", &[0x0c]),
        ("unterminated group", &[0x2b, 0x08, 0x01]),
    ];
    for (what, bytes) in cases {
        let r = WireMessage::decode(Bytes::from_static(bytes));
        assert!(
            matches!(
                r,
                Err(WireError::Decode {
                    what: "K2Proto",
                    ..
                })
            ),
            "{what}: {r:?}"
        );
    }
}

#[test]
fn malformed_inner_messages_are_errors() {
    let cases: Vec<(&str, Bytes)> = vec![
        // K2FetchMessage whose data claims more bytes than it has.
        (
            "K2FetchMessage",
            encode_module(&space(), MODULE_FETCH, b(b"\x08\x01\x12\x10abc")),
        ),
        // FetchRequest with op_ids (1) sent as a varint.
        (
            "FetchRequest",
            encode_module(&space(), MODULE_FETCH, b(b"\x08\x01\x12\x02\x08\x01")),
        ),
        // FetchResponse op entry whose inner length overflows the entry.
        (
            "FetchResponse",
            encode_module(
                &space(),
                MODULE_FETCH,
                b(b"\x08\x02\x12\x04\x0a\x02\x0a\x09"),
            ),
        ),
        // PublishAgent with invalid UTF-8 JSON.
        (
            "PublishAgent",
            encode_module(&space(), MODULE_PUBLISH, b(b"\x08\x02\x12\x03\x0a\x01\xff")),
        ),
        (
            "PublishOps",
            encode_module(&space(), MODULE_PUBLISH, b(b"\x08\x01\x12\x02\x0a\x05")),
        ),
        (
            "K2GossipMessage",
            encode_module(&space(), MODULE_GOSSIP, b(b"\x12\x7f")),
        ),
        // Initiate whose arc_set (11) nested length overflows.
        (
            "K2GossipInitiateMessage",
            encode_module(
                &space(),
                MODULE_GOSSIP,
                b(b"\x08\x01\x12\x04\x5a\x02\x0a\x7f"),
            ),
        ),
        // Terminate reason not UTF-8.
        (
            "K2GossipTerminateMessage",
            encode_module(&space(), MODULE_GOSSIP, b(b"\x08\x0c\x12\x03\x12\x01\xc0")),
        ),
    ];
    for (what, frame) in cases {
        let r = WireMessage::decode(frame);
        match r {
            Err(WireError::Decode { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_an_error() {
    // 200 nested unknown groups (field 5, start group = wire type 3) exceed prost's recursion
    // limit of 100.
    let mut f = vec![0x2b; 200];
    f.extend(std::iter::repeat_n(0x2c, 200));
    assert!(matches!(
        WireMessage::decode(f.into()),
        Err(WireError::Decode { .. })
    ));
}

/// xorshift64: deterministic, dependency-free pseudo-random bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    for _ in 0..10_000 {
        let len = (rng.next() % 300) as usize;
        let buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if WireMessage::decode(buf.into()).is_err() {
            errors += 1;
        }
    }
    assert!(
        errors > 9_000,
        "random bytes mostly invalid, got {errors} errors"
    );
}

#[test]
fn mutated_valid_frames_never_panic() {
    // Random byte flips in valid frames reach the inner decoders far more often than noise.
    let frames: Vec<Bytes> = all_messages()
        .iter()
        .map(WireMessage::encode)
        .filter(|f| !f.is_empty())
        .collect();
    let mut rng = XorShift(42);
    for i in 0..10_000 {
        let mut f = frames[i % frames.len()].to_vec();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % f.len();
            f[at] = rng.next() as u8;
        }
        let _ = WireMessage::decode(f.into());
    }
}
