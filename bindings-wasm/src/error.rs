//! The one place where core errors become JS errors: an `Error` whose `code` is the core's
//! stable code, exactly as in the Node package.

use raas_core::ErrorCode;
use wasm_bindgen::JsValue;

/// Builds a JS `Error` with `message` and `code`.
pub(crate) fn coded(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    err.into()
}

/// Converts any core error into a JS error carrying its code.
pub(crate) fn to_js<E: ErrorCode>(err: E) -> JsValue {
    coded(err.code(), &err.to_string())
}

/// An argument of the wrong JS type.
pub(crate) fn invalid_argument(message: &str) -> JsValue {
    coded("INVALID_ARGUMENT", message)
}

/// A result as a plain JS value (objects, not `Map`s; numbers for sizes), shared by every
/// export so both packages' shapes come from the core's serde types.
pub(crate) fn to_js_value<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| coded("INTERNAL", &e.to_string()))
}
