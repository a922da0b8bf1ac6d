//! The JavaScript API (wasm-bindgen), built into `pkg/` by wasm-pack. Thin: it validates
//! input from JavaScript (`validate`), converts types and calls the browser peer and the
//! sans-IO core; it fails as `error` describes (`TypeError`/`RangeError` for arguments, a
//! `FennecError` with a stable `code` for runtime failures). The package entry `pkg/index.js`
//! (`entry.js`, assembled by `scripts/package-entry.mjs`) re-exports the wasm-bindgen glue and
//! refuses calls made before `await init()`.

use std::future::Future;
use std::pin::Pin;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

pub mod error;
mod peer;
mod profile;
mod store;
#[cfg(feature = "testing")]
mod testing;
#[cfg(feature = "testing")]
mod transport;
pub mod validate;

pub use peer::{Peer, Space, space_id_of};
pub use store::{JsOpStore, op_id};
#[cfg(feature = "testing")]
pub use transport::JsTransport;

/// The JS `Promise` of one async call of the API: resolved with `work`'s `Ok`, rejected with
/// its `Err`. `work` is boxed so that every such call goes through one `future_to_promise`:
/// as `async fn`s wasm-bindgen compiled that wrapper (its task, closures, drop glue) once per
/// call, with the call's whole state machine inside it (docs/design.md, "Size").
pub(crate) fn promise(work: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    let work: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(work);
    wasm_bindgen_futures::future_to_promise(work)
}

/// The library version, e.g. `"0.1.0"` (the crate version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
