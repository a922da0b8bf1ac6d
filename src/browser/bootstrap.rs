//! Sends Kitsune2 bootstrap requests ([`crate::core::bootstrap`]) with the global `fetch()`
//! (`globalThis.fetch`: a window, a worker, or Node 18+, whose fetch is undici's).

use crate::core::bootstrap::{
    BootstrapClient, BootstrapError, HttpRequest, REQUEST_TIMEOUT, ResponseBody,
    parse_get_response, parse_put_response,
};
use crate::model::agent::{AgentError, AgentInfoSigned, Verifier};
use crate::model::id::SpaceId;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Sends `req`; resolves to (HTTP status, body text).
///
/// # Errors
/// [`BootstrapError::Network`] when `fetch` rejects (offline, CORS, bad URL) or the body
/// fails mid-way; [`BootstrapError::ResponseTooLarge`] for a body over the cap (the stream
/// is then cancelled); [`BootstrapError::BadResponse`] for one that is not UTF-8.
pub async fn send(req: &HttpRequest) -> Result<(u16, String), BootstrapError> {
    let promise = start(req, false)?;
    let resp: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(js_err)?
        .dyn_into()
        .map_err(js_err)?;
    Ok((resp.status(), read_body(&resp).await?))
}

/// Reads `resp`'s body chunk by chunk (Streams standard, `ReadableStreamDefaultReader`)
/// into a [`ResponseBody`], and cancels the stream, which drops the connection, as soon as
/// it passes the limit: `Response.text()` would hold any size a server sends.
///
/// # Errors
/// [`BootstrapError::ResponseTooLarge`], [`BootstrapError::BadResponse`] for a body that
/// is not UTF-8, [`BootstrapError::Network`] if the stream errors.
async fn read_body(resp: &web_sys::Response) -> Result<String, BootstrapError> {
    let mut body = ResponseBody::default();
    // A null body (Fetch standard: e.g. a 204) is an empty one.
    let Some(stream) = resp.body() else {
        return body.finish();
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    loop {
        let step: web_sys::ReadableStreamReadResult = JsFuture::from(reader.read())
            .await
            .map_err(js_err)?
            .unchecked_into();
        if step.get_done().unwrap_or(true) {
            return body.finish();
        }
        let chunk: js_sys::Uint8Array = step.get_value().dyn_into().map_err(js_err)?;
        if let Err(e) = body.push_with(chunk.length() as usize, |dst| chunk.copy_to(dst)) {
            // The rejection, if any, only repeats that the stream is gone.
            let _ = reader.cancel();
            return Err(e);
        }
    }
}

/// PUTs a signed agent info with `fetch(..., { keepalive: true })` and does not wait: the
/// request outlives the page (Fetch standard, "keepalive"), for the tombstone a closing page
/// sends from `pagehide`. The outcome is not observed (the page is going).
///
/// # Errors
/// As [`BootstrapClient::put_request`]; a `fetch` that cannot even start.
pub fn put_keepalive(
    client: &BootstrapClient,
    info: &AgentInfoSigned,
) -> Result<(), BootstrapError> {
    // The promise settles after the page is gone; nobody is left to look at it.
    start(&client.put_request(info)?, true).map(|_| ())
}

/// Starts `req` with `fetch`; `keepalive` as the Fetch standard's request flag. A request
/// that is not `keepalive` is aborted after [`REQUEST_TIMEOUT`] (`AbortSignal.timeout`, DOM
/// Standard; the abort also ends reading the body), and rejects as a network error.
fn start(req: &HttpRequest, keepalive: bool) -> Result<js_sys::Promise, BootstrapError> {
    let init = web_sys::RequestInit::new();
    if keepalive {
        js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE).map_err(js_err)?;
    } else {
        let ms = REQUEST_TIMEOUT.as_millis() as u32;
        init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(ms)));
    }
    init.set_method(req.method);
    init.set_mode(web_sys::RequestMode::Cors);
    if let Some(body) = &req.body {
        init.set_body(&JsValue::from_str(body));
        let headers = web_sys::Headers::new().map_err(js_err)?;
        headers
            .set("content-type", "application/json")
            .map_err(js_err)?;
        init.set_headers(&headers);
    }
    let request = web_sys::Request::new_with_str_and_init(&req.url, &init).map_err(js_err)?;
    fetch_in_global(&request)
}

/// PUTs a signed agent info.
///
/// # Errors
/// As [`BootstrapClient::put_request`], [`send`] and [`parse_put_response`].
pub async fn put(client: &BootstrapClient, info: &AgentInfoSigned) -> Result<(), BootstrapError> {
    let (status, body) = send(&client.put_request(info)?).await?;
    parse_put_response(status, &body)
}

/// GETs and verifies the agent infos of a space.
///
/// # Errors
/// As [`send`] and [`parse_get_response`].
pub async fn get(
    client: &BootstrapClient,
    space: &SpaceId,
    verifier: &impl Verifier,
) -> Result<Vec<Result<AgentInfoSigned, AgentError>>, BootstrapError> {
    let (status, body) = send(&client.get_request(space)).await?;
    parse_get_response(status, &body, verifier, crate::browser::clock::now())
}

/// `globalThis.fetch(request)`: any scope that has a global `fetch` (WHATWG Fetch standard),
/// not only `Window` and `WorkerGlobalScope` (Node has neither class).
fn fetch_in_global(request: &web_sys::Request) -> Result<js_sys::Promise, BootstrapError> {
    let global = js_sys::global();
    let fetch = js_sys::Reflect::get(&global, &"fetch".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or_else(|| BootstrapError::Network("no global fetch() in this scope".into()))?;
    let out = fetch.call1(&global, request).map_err(js_err)?;
    // `fetch` returns a Promise (Fetch standard); anything else is a broken polyfill.
    out.dyn_into::<js_sys::Promise>()
        .map_err(|_| BootstrapError::Network("global fetch() did not return a Promise".into()))
}

fn js_err(e: JsValue) -> BootstrapError {
    BootstrapError::Network(crate::browser::clock::describe_js(&e))
}
