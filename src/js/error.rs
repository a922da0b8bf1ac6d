//! How the JavaScript API fails.
//!
//! - A bad **argument** (wrong type, unknown option, a number out of range) is a `TypeError`
//!   or a `RangeError`, thrown by a synchronous call or the rejection of a promise-returning
//!   one, before anything happened. The split follows ECMAScript and WebIDL: a value of the
//!   wrong type, or a string outside an enumeration, is a `TypeError` (WebIDL §3.2, converting
//!   to IDL types and enumerations); a value of the right type outside the allowed set or range
//!   (a fraction where an integer is needed, `maxConnections: 0`, an Invalid Date) is a
//!   `RangeError` (ECMAScript §20.5.5.2, like `new Array(-1)` or `"x".repeat(-1)`). The message
//!   names the call and the argument or option: `"Peer.connect: option maxConnections must be
//!   an integer from 1 to 400, got 0"`.
//! - A **runtime failure** is a [`FennecError`](self) (JavaScript class `FennecError`, an
//!   `Error` with `name` `"FennecError"`) whose `code` is one of [`Code`]'s stable strings.
//!
//! The class is defined in `error.js` (a wasm-bindgen snippet) and exported by the package
//! entry, so applications can test `err instanceof FennecError`.

use std::fmt::Display;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/js/error.js")]
extern "C" {
    #[wasm_bindgen(extends = js_sys::Error, js_name = FennecError)]
    type JsFennecError;

    #[wasm_bindgen(constructor, js_class = "FennecError")]
    fn new(code: &str, message: &str) -> JsFennecError;

    /// `console.error(message, error)`.
    #[wasm_bindgen(js_name = consoleError)]
    pub(crate) fn console_error(message: &str, error: &JsValue);
}

/// The stable `code` of a `FennecError`. `"not-initialised"` (a call before `await init()`)
/// is raised by the package entry (`entry.js`), not from Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `"closed"`: the peer was closed (`peer.close()`); also every call on its spaces.
    Closed,
    /// `"left"`: the space was left (`space.leave()`), or its task stopped.
    Left,
    /// `"joined"`: `peer.join` of a space this peer already joined, with a different `arc`.
    Joined,
    /// `"signal"`: the sbd signal server could not be reached (joining).
    Signal,
    /// `"store"`: the op store (IndexedDB) or this origin's key store failed.
    Store,
    /// `"unreachable"`: `space.send` found no live, reachable peer with that agent id, or the
    /// transport could not send to it.
    Unreachable,
}

impl Code {
    /// The code as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Closed => "closed",
            Code::Left => "left",
            Code::Joined => "joined",
            Code::Signal => "signal",
            Code::Store => "store",
            Code::Unreachable => "unreachable",
        }
    }
}

/// A `FennecError` with `code` and `message`.
pub fn fennec_error(code: Code, message: impl Display) -> JsValue {
    JsFennecError::new(code.as_str(), &message.to_string()).into()
}

/// A `TypeError` (wrong type, unknown option or enumeration value).
pub fn type_error(message: impl Display) -> JsValue {
    js_sys::TypeError::new(&message.to_string()).into()
}

/// A `RangeError` (right type, value outside the allowed set or range).
pub fn range_error(message: impl Display) -> JsValue {
    js_sys::RangeError::new(&message.to_string()).into()
}
