//! Arguments read from JS values directly. The shapes `aggregate`, `verifyInclusion` and
//! `retrieve` take are few and flat; read through serde-wasm-bindgen, its deserializer, the
//! derived visitors and the float formatting their error messages link made up about a
//! third of the `raas-web/ids` module. Each error is `INVALID_ARGUMENT` naming the field
//! (`invalid pieces[1].pieceSize: …`), as the Node package words it.

use wasm_bindgen::{JsCast, JsValue};

use crate::error::coded;

/// `INVALID_ARGUMENT` for `path`.
pub(crate) fn bad(path: &str, reason: &str) -> JsValue {
    coded("INVALID_ARGUMENT", &format!("invalid {path}: {reason}"))
}

/// A field's path under `path` (`pieces[0]` + `pieceSize`).
pub(crate) fn at(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// `v` as a plain object (not `null`, not an array). With `known` not empty, a key outside
/// it is refused, as the Node package's `deny_unknown_fields` types refuse it.
pub(crate) fn object(v: &JsValue, path: &str, known: &[&str]) -> Result<(), JsValue> {
    if !v.is_object() || js_sys::Array::is_array(v) {
        return Err(bad(path, "expected an object"));
    }
    if !known.is_empty() {
        for key in js_sys::Object::keys(v.unchecked_ref::<js_sys::Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                return Err(bad(
                    path,
                    &format!(
                        "unknown field `{key}`, expected one of `{}`",
                        known.join("`, `")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The value of `key` on `obj` (`undefined` when absent).
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Whether a value counts as absent (`undefined` or `null`).
pub(crate) fn absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

/// A required string field.
pub(crate) fn string(obj: &JsValue, key: &str, path: &str) -> Result<String, JsValue> {
    let v = get(obj, key);
    if absent(&v) {
        return Err(bad(&at(path, key), "missing"));
    }
    v.as_string()
        .ok_or_else(|| bad(&at(path, key), "expected a string"))
}

/// `v` as an array's items.
pub(crate) fn array(v: &JsValue, path: &str) -> Result<Vec<JsValue>, JsValue> {
    if !js_sys::Array::is_array(v) {
        return Err(bad(path, "expected an array"));
    }
    Ok(js_sys::Array::from(v).iter().collect())
}

/// `v` as an array of strings.
pub(crate) fn strings(v: &JsValue, path: &str) -> Result<Vec<String>, JsValue> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_string()
                .ok_or_else(|| bad(&format!("{path}[{i}]"), "expected a string"))
        })
        .collect()
}

/// An optional array of strings.
#[cfg(feature = "chain")]
pub(crate) fn opt_strings(
    obj: &JsValue,
    key: &str,
    path: &str,
) -> Result<Option<Vec<String>>, JsValue> {
    let v = get(obj, key);
    if absent(&v) {
        return Ok(None);
    }
    strings(&v, &at(path, key)).map(Some)
}

/// `v` as a non-negative integer: a whole number up to 2^53 − 1, or a `BigInt` that fits
/// 64 bits, as the Node package takes sizes.
fn to_u64(v: &JsValue, path: &str) -> Result<u64, JsValue> {
    if v.is_bigint() {
        return u64::try_from(v.clone())
            .map_err(|_| bad(path, "expected a non-negative integer below 2^64"));
    }
    match v.as_f64() {
        Some(n) => raas_core::serde_num::whole(n).ok_or_else(|| {
            bad(
                path,
                "expected a non-negative integer (at most 2^53 − 1 as a number, or a BigInt)",
            )
        }),
        None => Err(bad(path, "expected a number")),
    }
}

/// A required non-negative integer field.
pub(crate) fn u64_field(obj: &JsValue, key: &str, path: &str) -> Result<u64, JsValue> {
    let v = get(obj, key);
    if absent(&v) {
        return Err(bad(&at(path, key), "missing"));
    }
    to_u64(&v, &at(path, key))
}

/// An optional non-negative integer field (`null` or absent is `None`).
pub(crate) fn opt_u64(obj: &JsValue, key: &str, path: &str) -> Result<Option<u64>, JsValue> {
    let v = get(obj, key);
    if absent(&v) {
        return Ok(None);
    }
    to_u64(&v, &at(path, key)).map(Some)
}

/// An optional number field, checked by the caller.
#[cfg(feature = "chain")]
pub(crate) fn opt_number(obj: &JsValue, key: &str, path: &str) -> Result<Option<f64>, JsValue> {
    let v = get(obj, key);
    if absent(&v) {
        return Ok(None);
    }
    v.as_f64()
        .map(Some)
        .ok_or_else(|| bad(&at(path, key), "expected a number"))
}
