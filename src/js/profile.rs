//! Argument checks for the package entry's `Peer`/`Space` (src/js/profile/): a tab that uses
//! its profile's shared node through another tab checks every argument itself, with the very
//! code and messages of [`super::peer`], and sends the checked, normalised values over the
//! BroadcastChannel. Not part of the public API: the entry does not re-export these (no
//! TypeScript declarations, `skip_typescript`).

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::peer::{
    arc_value, event_name, event_names, function, get_options, join_args, op_id_arg, ops_args,
    publish_args, publish_many_args, send_args,
};
use super::validate;
use crate::api::HeldOpsQuery;
use crate::model::time::Timestamp;

fn set(o: &Object, k: &str, v: &JsValue) {
    // Setting a plain property on a fresh Object cannot fail.
    let _ = Reflect::set(o, &k.into(), v);
}

/// `peer.join(space, options)` checked: `{ name, arc }`, `arc` `undefined` (not given),
/// `"full"`, `"empty"` or `[start, end]`. Throws `peer.join`'s `TypeError`/`RangeError`.
#[wasm_bindgen(js_name = profileJoinArgs, skip_typescript)]
pub fn profile_join_args(space: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let (name, arc) = join_args(&space, &options)?;
    let o = Object::new();
    set(&o, "name", &name.into());
    set(&o, "arc", &arc.map_or(JsValue::UNDEFINED, arc_value));
    Ok(o.into())
}

/// `space.publish(payload, options)` checked: `{ payload: Uint8Array, createdAt }` (ms since
/// the Unix epoch, now when not given, so that a retried publish makes the same op). Throws
/// `space.publish`'s `TypeError`/`RangeError`.
#[wasm_bindgen(js_name = profilePublishArgs, skip_typescript)]
pub fn profile_publish_args(payload: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let op = publish_args(&payload, &options)?;
    let o = Object::new();
    set(&o, "payload", &Uint8Array::from(&op.payload[..]).into());
    set(&o, "createdAt", &validate::to_ms(op.created_at).into());
    Ok(o.into())
}

/// `space.get(id, options)` checked: the op id string. Throws `space.get`'s `TypeError`.
#[wasm_bindgen(js_name = profileOpId, skip_typescript)]
pub fn profile_op_id(id: JsValue, options: JsValue) -> Result<String, JsValue> {
    let id = op_id_arg(&id)?.to_b64();
    get_options(&options)?;
    Ok(id)
}

/// `space.ops(options)` checked, as options the leader's space takes again: `{ from, to,
/// newestFirst, after: { id, createdAt }, limit }` (times in ms; `from`, `to`, `after` and
/// `limit` `undefined` when not given). Throws `space.ops`'s `TypeError`/`RangeError`.
#[wasm_bindgen(js_name = profileOpsArgs, skip_typescript)]
pub fn profile_ops_args(options: JsValue) -> Result<JsValue, JsValue> {
    let q = ops_args(&options)?;
    let ms = |t: Timestamp, unset: Timestamp| {
        if t == unset {
            JsValue::UNDEFINED
        } else {
            validate::to_ms(t).into()
        }
    };
    let o = Object::new();
    set(&o, "from", &ms(q.start, HeldOpsQuery::ALL.start));
    set(&o, "to", &ms(q.end, HeldOpsQuery::ALL.end));
    set(&o, "newestFirst", &q.newest_first.into());
    if let Some((at, id)) = &q.after {
        let a = Object::new();
        set(&a, "id", &id.to_b64().into());
        set(&a, "createdAt", &validate::to_ms(*at).into());
        set(&o, "after", &a.into());
    }
    if let Some(n) = q.limit {
        set(&o, "limit", &(n as f64).into());
    }
    Ok(o.into())
}

/// `space.publishMany(items, options)` checked: an Array of `{ payload: Uint8Array,
/// createdAt }` (ms; now when not given). Throws `space.publishMany`'s
/// `TypeError`/`RangeError`.
#[wasm_bindgen(js_name = profilePublishManyArgs, skip_typescript)]
pub fn profile_publish_many_args(items: JsValue, options: JsValue) -> Result<Array, JsValue> {
    Ok(publish_many_args(&items, &options)?
        .into_iter()
        .map(|op| {
            let o = Object::new();
            set(&o, "payload", &Uint8Array::from(&op.payload[..]).into());
            set(&o, "createdAt", &validate::to_ms(op.created_at).into());
            JsValue::from(o)
        })
        .collect())
}

/// `space.send(agent, data, options)` checked: `{ agent, data: Uint8Array }`. Throws
/// `space.send`'s `TypeError`/`RangeError`.
#[wasm_bindgen(js_name = profileSendArgs, skip_typescript)]
pub fn profile_send_args(
    agent: JsValue,
    data: JsValue,
    options: JsValue,
) -> Result<JsValue, JsValue> {
    let (agent, data) = send_args(&agent, &data, &options)?;
    let o = Object::new();
    set(&o, "agent", &agent.to_b64().into());
    set(&o, "data", &Uint8Array::from(&data[..]).into());
    Ok(o.into())
}

/// `space.on`/`off(event, callback)` checked (`func` names the call): the event name. Throws
/// their `TypeError`.
#[wasm_bindgen(js_name = profileEventArgs, skip_typescript)]
pub fn profile_event_args(
    func: &str,
    event: JsValue,
    callback: JsValue,
) -> Result<String, JsValue> {
    let name = event_name(func, &event)?;
    function(func, &callback)?;
    Ok(name.to_string())
}

/// Every event name of `space.on`, for a leader tab that forwards them all.
#[wasm_bindgen(js_name = profileEventNames, skip_typescript)]
pub fn profile_event_names() -> Array {
    event_names().iter().map(|n| JsValue::from(*n)).collect()
}
