//! The agent key of this origin, kept in IndexedDB (database `fennec-keys`, object store
//! `keys`, key `"agent"`: the 32-byte ed25519 secret) so a tab keeps its identity across
//! reloads. A key the caller supplies is used as is and not stored.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

use crate::browser::clock::describe_js;
use crate::model::agent::AgentKey;

const DB_NAME: &str = "fennec-keys";
const STORE: &str = "keys";
const AGENT_KEY: &str = "agent";

/// Loads this origin's agent key, or generates and stores one.
///
/// # Errors
/// A message naming what failed (IndexedDB unavailable, blocked, or a stored value that is not
/// 32 bytes).
pub async fn load_or_create_agent_key() -> Result<AgentKey, String> {
    let db = open().await?;
    let got = request(store(&db, IdbTransactionMode::Readonly)?.get(&AGENT_KEY.into())).await?;
    if !got.is_undefined() {
        let bytes = Uint8Array::new(&got).to_vec();
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the stored agent key is not 32 bytes".to_string())?;
        db.close();
        return Ok(AgentKey::from_secret_bytes(&secret));
    }
    let key = AgentKey::generate().map_err(|e| e.to_string())?;
    let value = Uint8Array::from(&key.secret_bytes()[..]);
    request(store(&db, IdbTransactionMode::Readwrite)?.put_with_key(&value, &AGENT_KEY.into()))
        .await?;
    db.close();
    Ok(key)
}

fn store(db: &IdbDatabase, mode: IdbTransactionMode) -> Result<web_sys::IdbObjectStore, String> {
    db.transaction_with_str_and_mode(STORE, mode)
        .and_then(|tx| tx.object_store(STORE))
        .map_err(|e| describe_js(&e))
}

async fn open() -> Result<IdbDatabase, String> {
    let factory = js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .map_err(|e| describe_js(&e))?
        .dyn_into::<web_sys::IdbFactory>()
        .map_err(|_| "IndexedDB is not available in this context".to_string())?;
    let req: IdbOpenDbRequest = factory
        .open_with_u32(DB_NAME, 1)
        .map_err(|e| describe_js(&e))?;
    let upgrading = req.clone();
    let on_upgrade = Closure::<dyn FnMut()>::new(move || {
        if let Ok(db) = upgrading
            .result()
            .map(|r| r.unchecked_into::<IdbDatabase>())
        {
            let _ = db.create_object_store(STORE);
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let on_blocked = Closure::<dyn FnMut()>::new(|| {});
    req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
    let db = request(Ok(req.clone().unchecked_into())).await?;
    drop((on_upgrade, on_blocked));
    Ok(db.unchecked_into())
}

/// Resolves with the request's result once `success` fires, or its error.
async fn request(req: Result<IdbRequest, JsValue>) -> Result<JsValue, String> {
    let req = req.map_err(|e| describe_js(&e))?;
    let (tx, rx) = oneshot::channel::<Result<JsValue, String>>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let (t1, t2) = (tx.clone(), tx);
    let r1 = req.clone();
    let ok = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = t1.borrow_mut().take() {
            let _ = tx.send(r1.result().map_err(|e| describe_js(&e)));
        }
    });
    let r2 = req.clone();
    let err = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = t2.borrow_mut().take() {
            let msg = r2.error().ok().flatten().map(|e| e.message());
            let _ = tx.send(Err(msg.unwrap_or_else(|| "IndexedDB request failed".into())));
        }
    });
    req.set_onsuccess(Some(ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(err.as_ref().unchecked_ref()));
    let out = rx
        .await
        .unwrap_or_else(|_| Err("IndexedDB request dropped".into()));
    req.set_onsuccess(None);
    req.set_onerror(None);
    out
}
