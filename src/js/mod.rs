//! The JavaScript API (wasm-bindgen), built into `pkg/` by wasm-pack. Thin: it validates
//! input from JavaScript, converts types and calls the browser peer and the sans-IO core.

use wasm_bindgen::prelude::*;

mod peer;
mod store;
#[cfg(feature = "testing")]
mod transport;

pub use peer::{Peer, Space, space_id_of};
pub use store::{JsOpStore, op_id};
#[cfg(feature = "testing")]
pub use transport::JsTransport;

/// The library version, e.g. `"0.1.0"` (the crate version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
