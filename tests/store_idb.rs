//! The op store conformance suite against `IdbOpStore` in a real browser, plus the
//! browser-only behaviours (versionchange, blocked, DOMException mapping, persistence).
//!
//! Run: `source scripts/wasm-env.sh && wasm-pack test --headless --chrome "${WASM_PACK_TEST_MODE[@]}" --test store_idb`

#![cfg(target_arch = "wasm32")]

use bytes::Bytes;
use fennec::api::{MetaOp, OpStore, StoreError};
use fennec::browser::idb::{Durability, IdbOpStore, IdbOptions};
use fennec::browser::idb::{SCHEMA_VERSION, database_name, dom_error};
use fennec::model::arc::DhtArc;
use fennec::model::id::{AgentId, OpId, SpaceId};
use fennec::model::time::Timestamp;
use fennec::testing::store_conformance::{StoreFactory, loc, op, sector};
use futures::future::LocalBoxFuture;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Opens `IdbOpStore`s named after the case, with a per-test nonce so runs never share data.
struct IdbFactory {
    nonce: String,
}

fn ids(nonce: &str, name: &str) -> (SpaceId, AgentId) {
    (
        SpaceId::from_bytes(format!("{name}-{nonce}").into_bytes()),
        AgentId::from_bytes(b"conformance-agent".to_vec()),
    )
}

fn factory() -> IdbFactory {
    IdbFactory {
        nonce: format!(
            "{}-{}",
            fennec::browser::clock::now().as_micros(),
            js_sys::Math::random()
        ),
    }
}

impl StoreFactory for IdbFactory {
    type Store = IdbOpStore;

    fn open<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<IdbOpStore, StoreError>> {
        Box::pin(async move {
            let (space, agent) = ids(&self.nonce, name);
            IdbOpStore::open(&space, &agent, IdbOptions::default()).await
        })
    }
}

fennec::op_store_conformance_tests!(browser, factory());

fn idb() -> web_sys::IdbFactory {
    js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .unchecked_into()
}

/// Resolves with the request's `success` or `error`/`blocked` event name.
async fn settle(req: &web_sys::IdbRequest, extra: Option<&web_sys::IdbOpenDbRequest>) -> String {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let r = resolve.clone();
        let ok = wasm_bindgen::closure::Closure::once_into_js(move || {
            r.call1(&wasm_bindgen::JsValue::NULL, &"success".into())
                .unwrap();
        });
        req.set_onsuccess(Some(ok.unchecked_ref()));
        let r = resolve.clone();
        let err = wasm_bindgen::closure::Closure::once_into_js(move || {
            r.call1(&wasm_bindgen::JsValue::NULL, &"error".into())
                .unwrap();
        });
        req.set_onerror(Some(err.unchecked_ref()));
        if let Some(o) = extra {
            let r = resolve.clone();
            let b = wasm_bindgen::closure::Closure::once_into_js(move || {
                r.call1(&wasm_bindgen::JsValue::NULL, &"blocked".into())
                    .unwrap();
            });
            o.set_onblocked(Some(b.unchecked_ref()));
        }
    });
    wasm_bindgen_futures::JsFuture::from(p)
        .await
        .unwrap()
        .as_string()
        .unwrap()
}

#[wasm_bindgen_test]
async fn database_is_per_agent_and_space() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "per_agent");
    let other_agent = AgentId::from_bytes(b"someone-else".to_vec());
    assert_ne!(
        database_name(&space, &agent),
        database_name(&space, &other_agent)
    );
    let a = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    let b = IdbOpStore::open(&space, &other_agent, IdbOptions::default())
        .await
        .unwrap();
    assert_eq!(
        a.process_incoming_ops(vec![op(1, "x")])
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(b.query_totals().await.unwrap().op_count, 0);
    assert!(a.name().contains(&space.to_b64()) && a.name().contains(&agent.to_b64()));
}

#[wasm_bindgen_test]
async fn another_tab_upgrading_closes_this_handle_with_a_clear_error() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "versionchange");
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    s.process_incoming_ops(vec![op(1, "x")]).await.unwrap();
    // "Another tab" with newer code opens the database at a higher version.
    let req = idb()
        .open_with_u32(&database_name(&space, &agent), SCHEMA_VERSION + 1)
        .unwrap();
    assert_eq!(
        settle(&req, Some(&req)).await,
        "success",
        "we stepped aside"
    );
    let newer: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    let err = s.query_totals().await.unwrap_err();
    assert!(matches!(err, StoreError::VersionChange { .. }), "{err}");
    assert!(err.to_string().contains("reload"), "{err}");
    let err = s.process_incoming_ops(vec![op(2, "y")]).await.unwrap_err();
    assert!(matches!(err, StoreError::VersionChange { .. }), "{err}");
    newer.close();
    // Old code meeting the newer database says so.
    let err = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer than this code"), "{err}");
}

#[wasm_bindgen_test]
async fn a_connection_that_does_not_close_blocks_with_a_clear_error() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "blocked");
    // A connection (another tab) that ignores versionchange.
    let req = idb()
        .open_with_u32(&database_name(&space, &agent), 1)
        .unwrap();
    assert_eq!(settle(&req, Some(&req)).await, "success");
    let stubborn: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    let err = IdbOpStore::delete(&space, &agent).await.unwrap_err();
    assert!(matches!(err, StoreError::Blocked { .. }), "{err}");
    assert!(err.to_string().contains("another tab"), "{err}");
    stubborn.close();
}

#[wasm_bindgen_test]
async fn delete_removes_everything() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "delete");
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    s.process_incoming_ops(vec![op(1, "x")]).await.unwrap();
    drop(s);
    IdbOpStore::delete(&space, &agent).await.unwrap();
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    assert_eq!(s.query_totals().await.unwrap().op_count, 0);
}

#[wasm_bindgen_test]
async fn relaxed_durability_still_stores() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "relaxed");
    let opts = IdbOptions {
        durability: Durability::Relaxed,
        ..IdbOptions::default()
    };
    let s = IdbOpStore::open(&space, &agent, opts).await.unwrap();
    let m = op(1, "relaxed");
    s.process_incoming_ops(vec![m.clone()]).await.unwrap();
    s.store_slice_hash(
        fennec::model::arc::DhtArc::FULL,
        1,
        Bytes::from_static(b"h"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.retrieve_ops(vec![m.op_id.clone()]).await.unwrap(),
        vec![m]
    );
}

#[wasm_bindgen_test]
fn dom_exceptions_become_clear_errors() {
    let q = web_sys::DomException::new_with_message_and_name("full", "QuotaExceededError").unwrap();
    assert_eq!(
        dom_error(&q),
        StoreError::QuotaExceeded("QuotaExceededError: full".into())
    );
    // Chromium's own has no message: the text is the name, not "QuotaExceededError: ".
    let q = web_sys::DomException::new_with_message_and_name("", "QuotaExceededError").unwrap();
    assert_eq!(
        dom_error(&q).to_string(),
        "storage quota exceeded, nothing of this batch was stored: QuotaExceededError"
    );
    let v = web_sys::DomException::new_with_message_and_name("v", "VersionError").unwrap();
    assert!(dom_error(&v).to_string().contains("newer than this code"));
    let o = web_sys::DomException::new_with_message_and_name("boom", "UnknownError").unwrap();
    assert_eq!(
        dom_error(&o),
        StoreError::Backend("UnknownError: boom".into())
    );
}

#[wasm_bindgen_test]
async fn persistent_storage_is_requested() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "persist");
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    // The store asked; its answer is the browser's own, which Chromium has (a boolean).
    let answer = s.persistence().await;
    let browser = storage_persisted().await;
    assert_eq!(answer, Some(browser), "the store's answer is the browser's");
    assert_eq!(s.persisted(), answer, "and persisted() reports it");
}

/// `navigator.storage.persisted()`: whether the browser keeps this origin's storage.
async fn storage_persisted() -> bool {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).unwrap();
    let storage = js_sys::Reflect::get(&nav, &"storage".into()).unwrap();
    let f: js_sys::Function = js_sys::Reflect::get(&storage, &"persisted".into())
        .unwrap()
        .unchecked_into();
    let p: js_sys::Promise = f.call0(&storage).unwrap().unchecked_into();
    wasm_bindgen_futures::JsFuture::from(p)
        .await
        .unwrap()
        .as_bool()
        .expect("navigator.storage.persisted() answers a boolean")
}

#[wasm_bindgen_test]
async fn a_pre_release_layout_is_refused_with_a_clear_error() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "pre_release");
    // A database as fennec laid it out before its first release: ops and meta stores.
    let req = idb()
        .open_with_u32(&database_name(&space, &agent), 1)
        .unwrap();
    let r = req.clone();
    let upgrade = wasm_bindgen::closure::Closure::once_into_js(move || {
        let db: web_sys::IdbDatabase = r.result().unwrap().unchecked_into();
        db.create_object_store("ops").unwrap();
        db.create_object_store("meta").unwrap();
    });
    req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    assert_eq!(settle(&req, None).await, "success");
    let old: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    old.close();
    let err = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pre-release"), "{err}");
    IdbOpStore::delete(&space, &agent).await.unwrap();
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    assert_eq!(s.query_totals().await.unwrap().op_count, 0);
}

/// A schema-1 database (one record per op) as the released code wrote it, with 40 ops whose
/// stored-at order is the reverse of their creation order.
async fn schema_1_database(space: &SpaceId, agent: &AgentId, ops: &[MetaOp]) {
    let req = idb()
        .open_with_u32(&database_name(space, agent), 1)
        .unwrap();
    let (r, ops) = (req.clone(), ops.to_vec());
    let upgrade = wasm_bindgen::closure::Closure::once_into_js(move || {
        let db: web_sys::IdbDatabase = r.result().unwrap().unchecked_into();
        let tx = r.transaction().unwrap();
        fennec::browser::idb::upgrade(&db, &tx, 0, 1).unwrap();
        let store = tx.object_store("ops").unwrap();
        let mut bytes = 0;
        for (i, m) in ops.iter().enumerate() {
            let created_at = 2000 - i as i64;
            let mut key = m.op_id.as_bytes().to_vec();
            key.extend_from_slice(&(m.op_data.len() as u32).to_be_bytes());
            key.extend_from_slice(&((created_at as u64) ^ (1 << 63)).to_be_bytes());
            let value = js_sys::Object::new();
            let set = |k: &str, v: &wasm_bindgen::JsValue| {
                js_sys::Reflect::set(&value, &k.into(), v).unwrap();
            };
            set("d", &js_sys::Uint8Array::from(&m.op_data[..]).into());
            set("t", &(created_at as f64).into());
            set("s", &f64::from(sector(loc(m))).into());
            set("a", &(1_000_000.0 - i as f64).into());
            store
                .add_with_key(&value, &js_sys::Uint8Array::from(&key[..]))
                .unwrap();
            bytes += m.op_data.len();
        }
        let totals = js_sys::Object::new();
        js_sys::Reflect::set(&totals, &"c".into(), &(ops.len() as f64).into()).unwrap();
        js_sys::Reflect::set(&totals, &"b".into(), &(bytes as f64).into()).unwrap();
        tx.object_store("info")
            .unwrap()
            .put_with_key(&totals, &"totals".into())
            .unwrap();
    });
    req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    assert_eq!(settle(&req, None).await, "success");
    let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    db.close();
}

#[wasm_bindgen_test]
async fn a_schema_1_database_is_packed_on_open() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "schema_1");
    let ops: Vec<MetaOp> = (0..40i64)
        .map(|i| op(2000 - i, format!("schema-1-{i}")))
        .collect();
    schema_1_database(&space, &agent, &ops).await;

    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    let all: Vec<OpId> = ops.iter().map(|m| m.op_id.clone()).collect();
    let t = s.query_totals().await.unwrap();
    assert_eq!(t.op_count, 40);
    assert_eq!(s.retrieve_ops(all.clone()).await.unwrap(), ops);
    let slice = s
        .retrieve_op_hashes_in_time_slice(DhtArc::FULL, Timestamp(0), Timestamp(3000))
        .await
        .unwrap();
    let oldest_first: Vec<OpId> = all.iter().rev().cloned().collect();
    assert_eq!(slice.op_ids, oldest_first);
    // Stored order survives: the schema-1 stamps ran backwards through `ops`.
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, Timestamp(i64::MIN), u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, oldest_first);
    let since = s
        .retrieve_op_ids_bounded(DhtArc::FULL, Timestamp(1_000_000 - 9), u32::MAX)
        .await
        .unwrap();
    assert_eq!(since.op_ids, oldest_first[30..].to_vec());
    assert!(
        s.process_incoming_ops(ops.clone())
            .await
            .unwrap()
            .is_empty(),
        "the copied ops are held"
    );
    assert_eq!(
        s.earliest_timestamp_in_arc(DhtArc::FULL).await.unwrap(),
        Some(Timestamp(1961))
    );
    s.close();

    let req = idb().open(&database_name(&space, &agent)).unwrap();
    assert_eq!(settle(&req, None).await, "success");
    let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    assert_eq!(db.version() as u32, SCHEMA_VERSION);
    assert!(
        !db.object_store_names().contains("ops"),
        "schema 1's store is gone"
    );
    db.close();
    IdbOpStore::delete(&space, &agent).await.unwrap();
}

/// `abandon_writes` (a closing page, before the leave's model write): an op write under way
/// is aborted and stores nothing, and the store's later writes run as before. Chromium runs
/// one read-write transaction of a database at a time, so a model write issued behind a
/// running op write waited for it, and the page's end dropped both.
#[wasm_bindgen_test]
async fn an_abandoned_write_stores_nothing_and_later_writes_run() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "abandon");
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    let ops: Vec<MetaOp> = (0..200i64)
        .map(|i| op(i + 1, format!("abandoned-{i}")))
        .collect();
    let mut write = Box::pin(s.process_incoming_ops(ops.clone()));
    assert!(
        futures::poll!(&mut write).is_pending(),
        "the write is under way"
    );
    s.abandon_writes();
    assert!(write.await.is_err(), "the abandoned write failed");
    assert_eq!(s.query_totals().await.unwrap().op_count, 0);
    assert_eq!(
        s.retrieve_ops(vec![ops[0].op_id.clone()]).await.unwrap(),
        vec![]
    );

    s.abandon_writes(); // none under way: nothing to abort
    assert_eq!(
        s.process_incoming_ops(ops.clone()).await.unwrap().len(),
        200
    );
    s.store_slice_hash(DhtArc::FULL, 1, Bytes::from_static(b"h"))
        .await
        .unwrap();
    assert_eq!(s.query_totals().await.unwrap().op_count, 200);
    assert_eq!(
        s.retrieve_ops(vec![ops[0].op_id.clone()]).await.unwrap(),
        vec![ops[0].clone()]
    );
}

/// The records of the `slice_batches` store of `space`/`agent`'s database, counted over a
/// second connection.
async fn slice_batch_records(space: &SpaceId, agent: &AgentId) -> u32 {
    let req = idb().open(&database_name(space, agent)).unwrap();
    assert_eq!(settle(&req, None).await, "success");
    let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    let count = db
        .transaction_with_str("slice_batches")
        .unwrap()
        .object_store("slice_batches")
        .unwrap()
        .count()
        .unwrap();
    assert_eq!(settle(&count, None).await, "success");
    db.close();
    count.result().unwrap().as_f64().unwrap() as u32
}

fn hash(tag: &str) -> Bytes {
    Bytes::from(tag.as_bytes().to_vec())
}

/// A model write is one record however many hashes it holds (a closing page's write of
/// 22 587 records was cut; one record is one `add`); a handle merges the records into one
/// once 32 accumulated, keeping the latest hash of each `(arc, index)`; a closing page's
/// writes never merge.
#[wasm_bindgen_test]
async fn model_writes_are_one_record_each_and_merge_after_32() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "slice_batches");
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    let sector = |i: u32| DhtArc::of_sectors(i, i);
    let many: Vec<(DhtArc, u64, Bytes)> = (0..2000u32)
        .map(|i| {
            (
                sector(i % 512),
                u64::from(i / 512),
                hash(&format!("first-{i}")),
            )
        })
        .collect();
    s.store_slice_hashes(many).await.unwrap();
    assert_eq!(slice_batch_records(&space, &agent).await, 1);
    // 31 more writes, each replacing slice 0 of sector 7 and adding one of sector 9.
    for w in 1..32u64 {
        s.store_slice_hashes(vec![
            (sector(7), 0, hash(&format!("w{w}"))),
            (sector(9), 100 + w, hash(&format!("n{w}"))),
        ])
        .await
        .unwrap();
    }
    assert_eq!(slice_batch_records(&space, &agent).await, 32);
    s.store_slice_hash(sector(7), 1, hash("merged"))
        .await
        .unwrap();
    assert_eq!(slice_batch_records(&space, &agent).await, 1, "merged");
    let seven = s.retrieve_slice_hashes(sector(7)).await.unwrap();
    assert_eq!(
        seven,
        vec![
            (0, hash("w31")),
            (1, hash("merged")),
            (2, hash("first-1031")),
            (3, hash("first-1543"))
        ]
    );
    let nine = s.retrieve_slice_hashes(sector(9)).await.unwrap();
    assert_eq!(nine.len(), 4 + 31);
    assert_eq!(nine[4], (101, hash("n1")));
    assert_eq!(s.slice_hash_count(sector(9)).await.unwrap(), 132);
    assert_eq!(
        s.retrieve_sector_slice_hashes().await.unwrap().len(),
        2000 + 31
    );

    s.abandon_writes(); // the page is closing: each write stays one `add`
    for w in 0..40u64 {
        s.store_slice_hash(sector(3), w, hash("closing"))
            .await
            .unwrap();
    }
    assert_eq!(slice_batch_records(&space, &agent).await, 41);
    assert_eq!(s.slice_hash_count(sector(3)).await.unwrap(), 40);
    s.close();
    IdbOpStore::delete(&space, &agent).await.unwrap();
}

/// A schema-2 database's slice hashes (one record each in `slices`) move into one slice
/// batch on open, with the same answers to every read.
#[wasm_bindgen_test]
async fn a_schema_2_databases_slice_hashes_move_into_one_batch() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "schema_2");
    let req = idb()
        .open_with_u32(&database_name(&space, &agent), 2)
        .unwrap();
    let r = req.clone();
    let upgrade = wasm_bindgen::closure::Closure::once_into_js(move || {
        let db: web_sys::IdbDatabase = r.result().unwrap().unchecked_into();
        let tx = r.transaction().unwrap();
        fennec::browser::idb::upgrade(&db, &tx, 0, 2).unwrap();
        let slices = tx.object_store("slices").unwrap();
        // Sector 5's slices 0 and 2^40 (an index past 32 bits), the watermark (arc [0, 0]).
        let s5 = DhtArc::of_sectors(5, 5);
        let DhtArc::Arc(a, b) = s5 else {
            unreachable!()
        };
        for (key, value) in [
            ([a, b, 0, 0], "zero"),
            ([a, b, 256, 0], "big"),
            ([0, 0, 0, 6], "watermark"),
        ] {
            let key: js_sys::Array = key
                .iter()
                .map(|k| wasm_bindgen::JsValue::from(*k))
                .collect();
            slices
                .put_with_key(&js_sys::Uint8Array::from(value.as_bytes()), &key)
                .unwrap();
        }
    });
    req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    assert_eq!(settle(&req, None).await, "success");
    let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    db.close();

    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    let s5 = DhtArc::of_sectors(5, 5);
    assert_eq!(
        s.retrieve_slice_hashes(s5).await.unwrap(),
        vec![(0, hash("zero")), (1 << 40, hash("big"))]
    );
    let watermark = DhtArc::Arc(0, 0);
    assert_eq!(s.slice_hash_count(watermark).await.unwrap(), 7);
    assert_eq!(
        s.retrieve_slice_hash(watermark, 6).await.unwrap(),
        Some(hash("watermark"))
    );
    assert_eq!(
        s.retrieve_sector_slice_hashes().await.unwrap(),
        vec![(5, 0, hash("zero")), (5, 1 << 40, hash("big"))]
    );
    s.close();
    assert_eq!(slice_batch_records(&space, &agent).await, 1);
    let req = idb().open(&database_name(&space, &agent)).unwrap();
    assert_eq!(settle(&req, None).await, "success");
    let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    assert_eq!(db.version() as u32, SCHEMA_VERSION);
    assert!(
        !db.object_store_names().contains("slices"),
        "schema 2's store is gone"
    );
    db.close();
    IdbOpStore::delete(&space, &agent).await.unwrap();
}

/// A `slice_batches` record of another shape (a corrupt database) fails every read of the
/// slice hashes with an error that says so; nothing is made up.
#[wasm_bindgen_test]
async fn a_corrupt_slice_batch_is_a_clear_error() {
    let f = factory();
    let (space, agent) = ids(&f.nonce, "corrupt_batch");
    let s = IdbOpStore::open(&space, &agent, IdbOptions::default())
        .await
        .unwrap();
    let a = DhtArc::of_sectors(1, 1);
    s.store_slice_hash(a, 0, hash("good")).await.unwrap();
    let req = idb().open(&database_name(&space, &agent)).unwrap();
    assert_eq!(settle(&req, None).await, "success");
    let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    let tx = db
        .transaction_with_str_and_mode("slice_batches", web_sys::IdbTransactionMode::Readwrite)
        .unwrap();
    // Says one 4-byte hash, holds 3 bytes.
    let bad = js_sys::Object::new();
    let m = js_sys::Uint32Array::from(&[0u32, 0, 0, 1, 4][..]);
    js_sys::Reflect::set(&bad, &"m".into(), &m).unwrap();
    js_sys::Reflect::set(&bad, &"d".into(), &js_sys::Uint8Array::from(&b"abc"[..])).unwrap();
    let put = tx.object_store("slice_batches").unwrap().add(&bad).unwrap();
    assert_eq!(settle(&put, None).await, "success");
    db.close();
    let err = s.retrieve_slice_hashes(a).await.unwrap_err();
    assert!(
        err.to_string().contains("corrupt slice hash batch"),
        "{err}"
    );
    assert!(s.retrieve_sector_slice_hashes().await.is_err());
    s.close();
    IdbOpStore::delete(&space, &agent).await.unwrap();
}
