//! The one place where core errors become JS errors: `err.code` is the core's stable code.

use napi::bindgen_prelude::{JsObjectValue, JsValue};
use napi::Error;
use raas_core::ErrorCode;

/// A stable error code used as the napi status, which napi sets as the thrown error's `code`.
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// Result of every exported function (named `Result` so napi-derive recognises it).
pub type Result<T> = std::result::Result<T, Error<Code>>;

/// Converts any core error into a JS error carrying its code.
pub fn to_js<E: ErrorCode>(err: E) -> Error<Code> {
    Error::new(Code(err.code()), err.to_string())
}

/// Builds a JS `Error` with `code` set, wrapped so napi rejects a promise with exactly that
/// object. Async tasks need this: their error type carries napi's fixed `Status` enum.
pub fn to_js_in_env<E: ErrorCode>(env: &napi::Env, err: E) -> napi::Error {
    let code = err.code();
    let built = env
        .create_error(napi::Error::new(
            napi::Status::GenericFailure,
            err.to_string(),
        ))
        .and_then(|mut obj| {
            obj.set_named_property("code", code)?;
            Ok(obj)
        });
    match built {
        Ok(obj) => napi::Error::from(obj.to_unknown()),
        Err(e) => e,
    }
}

/// Runs `fut` on napi's tokio runtime and returns a Promise of its serialised result; a
/// failure rejects with a JS error carrying its code.
pub fn spawn<'env, T, E, F>(
    env: &'env napi::Env,
    fut: F,
) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'env, serde_json::Value>>
where
    F: std::future::Future<Output = std::result::Result<T, E>> + Send + 'static,
    T: serde::Serialize + Send + 'static,
    E: ErrorCode + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, out| match out {
        Ok(v) => serde_json::to_value(v).map_err(|e| napi::Error::from_reason(e.to_string())),
        Err(e) => Err(to_js_in_env(env, e)),
    })
}
