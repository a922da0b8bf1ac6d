//! Checks of what JavaScript passes to the API, shared by `Peer` and `Space`.
//!
//! Every check names the call and the argument or option in its error, and fails with the
//! error class [`super::error`] describes (`TypeError` for a wrong type or an unknown name,
//! `RangeError` for a value out of range). Nothing is converted silently: a string is not
//! bytes, `"5"` is not a number, `1` is not `true`.

use js_sys::{Array, ArrayBuffer, Date, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use super::error::{range_error, type_error};
use crate::model::time::Timestamp;

/// Largest time value in ms either side of the epoch: ECMAScript's time value range
/// (§21.4.1.1, ±8.64 × 10¹⁵ ms, ±100 000 000 days). In µs it fits an i64.
pub const MAX_TIME_MS: f64 = 8.64e15;

/// Largest timeout in ms: 2³¹ − 1, the most `setTimeout` honours (HTML timers clamp larger
/// delays to 0, i.e. fire at once).
pub const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;

/// A short description of a value's type for messages: `"a string"`, `"an Array"`, `"null"`.
pub fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if Array::is_array(v) {
        "an Array".into()
    } else if v.is_instance_of::<Date>() {
        "a Date".into()
    } else {
        let t = v.js_typeof().as_string().unwrap_or_default();
        let article = if t.starts_with('o') { "an" } else { "a" };
        format!("{article} {t}")
    }
}

/// Bytes passed from JavaScript, copied: a `Uint8Array`, an `ArrayBuffer` (all of it) or any
/// other `ArrayBufferView` (`DataView`, `Int16Array`, ...: exactly the bytes it views, from
/// `byteOffset` for `byteLength` bytes). This is WebIDL's `BufferSource`; anything else
/// (a string, an Array of numbers, a plain object) is a `TypeError`, never coerced.
pub fn bytes(func: &str, name: &str, v: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if ArrayBuffer::is_view(v) {
        let get = |k: &str| Reflect::get(v, &k.into());
        let buffer = get("buffer")?;
        let offset = get("byteOffset")?.as_f64().unwrap_or(0.0) as u32;
        let len = get("byteLength")?.as_f64().unwrap_or(0.0) as u32;
        return Ok(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, len).to_vec());
    }
    if v.is_instance_of::<ArrayBuffer>() {
        return Ok(Uint8Array::new(v).to_vec());
    }
    Err(type_error(format!(
        "{func}: {name} must be a Uint8Array, an ArrayBuffer or another ArrayBufferView \
         (DataView, typed array), got {}",
        describe(v)
    )))
}

/// A string argument; anything else is a `TypeError` (no `String(x)` coercion).
pub fn string(func: &str, name: &str, v: &JsValue) -> Result<String, JsValue> {
    v.as_string().ok_or_else(|| {
        type_error(format!(
            "{func}: {name} must be a string, got {}",
            describe(v)
        ))
    })
}

/// A point in time as JavaScript gives it: a `Date`, or a `number` of ms since the Unix epoch
/// (`Date.now()`, `date.getTime()`), fractions kept to the µs. Returned in µs, fennec's
/// internal unit (Kitsune2's). A `bigint` or anything else is a `TypeError`; an Invalid Date,
/// a non-finite number or one beyond ±8.64e15 ms (ECMAScript's Date range) a `RangeError`.
pub fn time_ms(func: &str, name: &str, v: &JsValue) -> Result<Timestamp, JsValue> {
    let ms = if let Some(d) = v.dyn_ref::<Date>() {
        let t = d.get_time();
        if t.is_nan() {
            return Err(range_error(format!("{func}: {name} is an Invalid Date")));
        }
        t
    } else if let Some(f) = v.as_f64() {
        if !f.is_finite() || f.abs() > MAX_TIME_MS {
            return Err(range_error(format!(
                "{func}: {name} must be a finite number of ms since the Unix epoch within \
                 ±8.64e15 (the Date range), got {f}"
            )));
        }
        f
    } else {
        return Err(type_error(format!(
            "{func}: {name} must be a Date or a number of ms since the Unix epoch \
             (e.g. Date.now()), got {}",
            describe(v)
        )));
    };
    Ok(Timestamp::from_micros((ms * 1000.0).round() as i64))
}

/// A time in µs as JavaScript's ms `number` (fractional below 1 ms), the inverse of
/// [`time_ms`] for every µs a `Date` can hold.
pub fn to_ms(t: Timestamp) -> f64 {
    t.as_micros() as f64 / 1000.0
}

/// The options object of a call: a plain object (or, at the top level, `undefined`/`null`,
/// meaning none, as WebIDL dictionaries do) whose own enumerable keys must all be known.
/// Members set to `undefined` count as absent (WebIDL). An unknown key is a `TypeError` naming
/// it and the near known one: "unknown option `relayonly`; did you mean `relayOnly`?".
pub struct Options {
    func: String,
    prefix: String,
    obj: Option<Object>,
}

impl Options {
    /// Checks `v` against the `known` option names of `func`. `prefix` names a nested object in
    /// messages (`"iceServers[0]."`), empty at the top.
    pub fn new(func: &str, prefix: &str, v: &JsValue, known: &[&str]) -> Result<Self, JsValue> {
        let o = Self::record(func, prefix, v)?;
        let Some(obj) = &o.obj else {
            return Ok(o);
        };
        for key in Object::keys(obj).iter() {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                let hint = match suggest(&key, known) {
                    Some(near) => format!("did you mean `{prefix}{near}`?"),
                    None => format!("known options: {}", known.join(", ")),
                };
                return Err(type_error(format!(
                    "{func}: unknown option `{prefix}{key}`; {hint}"
                )));
            }
        }
        Ok(o)
    }

    /// Like [`Self::new`], but other keys are allowed and not read: for a record the caller
    /// already has (an op given as a cursor), not an options bag. Only the top-level bag may
    /// be `undefined`/`null`; a nested one (`prefix` not empty, as `"after."`) given as
    /// `null` is an error naming it, not an empty object whose members are then "required".
    pub fn record(func: &str, prefix: &str, v: &JsValue) -> Result<Self, JsValue> {
        let mut o = Options {
            func: func.to_string(),
            prefix: prefix.to_string(),
            obj: None,
        };
        if prefix.is_empty() && (v.is_undefined() || v.is_null()) {
            return Ok(o);
        }
        if !v.is_object() || Array::is_array(v) || v.is_function() {
            let what = if prefix.is_empty() {
                "options".to_string()
            } else {
                format!("option {}", prefix.trim_end_matches('.'))
            };
            return Err(type_error(format!(
                "{func}: {what} must be an object, got {}",
                describe(v)
            )));
        }
        o.obj = Some(v.clone().unchecked_into());
        Ok(o)
    }

    /// `"Peer.connect: option maxConnections"`, for messages.
    pub fn name(&self, key: &str) -> String {
        format!("{}: {}", self.func, self.label(key))
    }

    /// `"option after.id"`: the name of option `key` without the call, for the checks that
    /// take the call separately ([`time_ms`], [`bytes()`]).
    pub fn label(&self, key: &str) -> String {
        format!("option {}{key}", self.prefix)
    }

    /// The value of option `key`, `None` when absent or `undefined`. A throwing getter's
    /// exception is passed on.
    pub fn get(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        let Some(obj) = &self.obj else {
            return Ok(None);
        };
        let v = Reflect::get(obj, &key.into())?;
        Ok(if v.is_undefined() { None } else { Some(v) })
    }

    /// A required option: absent is a `TypeError`.
    pub fn required(&self, key: &str) -> Result<JsValue, JsValue> {
        self.get(key)?
            .ok_or_else(|| type_error(format!("{} is required", self.name(key))))
    }

    fn wrong(&self, key: &str, want: &str, v: &JsValue) -> JsValue {
        type_error(format!(
            "{} must be {want}, got {}",
            self.name(key),
            describe(v)
        ))
    }

    /// The `signal` option of a call that waits: an `AbortSignal` (DOM Standard §3.1),
    /// `TypeError` for anything else. The package entry acts on it (src/js/profile/api.js).
    pub fn signal(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        self.get(key)?
            .map(|v| {
                if v.is_instance_of::<JsAbortSignal>() {
                    Ok(v)
                } else {
                    Err(self.wrong(key, "an AbortSignal", &v))
                }
            })
            .transpose()
    }

    /// A string option (`TypeError` for any other type).
    pub fn string(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.get(key)?
            .map(|v| v.as_string().ok_or_else(|| self.wrong(key, "a string", &v)))
            .transpose()
    }

    /// A boolean option (`TypeError` for any other type: `1` and `"true"` are not `true`).
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, JsValue> {
        self.get(key)?
            .map(|v| v.as_bool().ok_or_else(|| self.wrong(key, "a boolean", &v)))
            .transpose()
    }

    /// An integer option in `min..=max`: `TypeError` if not a `number`, `RangeError` for a
    /// fraction, NaN, ±Infinity or a value outside the range.
    pub fn integer(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, JsValue> {
        let Some(v) = self.get(key)? else {
            return Ok(None);
        };
        let f = v.as_f64().ok_or_else(|| self.wrong(key, "a number", &v))?;
        if f.fract() != 0.0 || !(min..=max).contains(&f) {
            return Err(range_error(format!(
                "{} must be an integer from {min} to {max}, got {f}",
                self.name(key)
            )));
        }
        Ok(Some(f))
    }

    /// A timeout in ms: a finite `number` > 0 and ≤ 2³¹ − 1 (see [`MAX_TIMEOUT_MS`]); a
    /// fraction is rounded up to whole ms. `TypeError` if not a number, `RangeError` else.
    pub fn timeout_ms(&self, key: &str) -> Result<Option<u64>, JsValue> {
        let Some(v) = self.get(key)? else {
            return Ok(None);
        };
        let f = v
            .as_f64()
            .ok_or_else(|| self.wrong(key, "a number of ms", &v))?;
        if !(f > 0.0 && f <= MAX_TIMEOUT_MS) {
            return Err(range_error(format!(
                "{} must be a number of ms > 0 and ≤ {MAX_TIMEOUT_MS}, got {f}",
                self.name(key)
            )));
        }
        Ok(Some(f.ceil() as u64))
    }

    /// A time option: a `Date` or ms since the epoch, in µs (see [`time_ms`]).
    pub fn time(&self, key: &str) -> Result<Option<Timestamp>, JsValue> {
        let Some(v) = self.get(key)? else {
            return Ok(None);
        };
        time_ms(&self.func, &self.label(key), &v).map(Some)
    }

    /// A bytes option (see [`bytes()`]).
    pub fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, JsValue> {
        let Some(v) = self.get(key)? else {
            return Ok(None);
        };
        bytes(&self.func, &self.label(key), &v).map(Some)
    }
}

/// The known name `given` was most likely meant to be: the same ignoring case, a known name
/// that `given` starts (at least 3 characters), or one within a small edit distance (at most
/// a third of its length, at least 1).
pub fn suggest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    let g = given.to_lowercase();
    if let Some(k) = known.iter().find(|k| k.to_lowercase() == g) {
        return Some(k);
    }
    if g.len() >= 3
        && let Some(k) = known.iter().find(|k| k.to_lowercase().starts_with(&g))
    {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (edit_distance(&g, &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance in chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[wasm_bindgen]
extern "C" {
    /// The global `AbortSignal` class, for an `instanceof` check only.
    #[wasm_bindgen(js_name = AbortSignal)]
    type JsAbortSignal;
}
