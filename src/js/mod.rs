//! The JavaScript API (wasm-bindgen), built into `pkg/` by wasm-pack. Thin: it validates
//! input from JavaScript, converts types and calls the sans-IO core.

use wasm_bindgen::prelude::*;

mod store;
pub use store::{JsOpStore, op_id};

/// The library version, e.g. `"0.1.0"` (the crate version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

mod keystore;
mod net;
mod peer;

pub use net::JsTransport;
pub use peer::{Peer, Space, space_id_of};
