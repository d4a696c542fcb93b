//! Serde helpers for sizes and ids that arrive as JS numbers: napi and serde-wasm-bindgen
//! hand large integers over as floats (`8589934592.0`), so a `u64` field also accepts a
//! float that is a whole number below 2^53 (at most `Number.MAX_SAFE_INTEGER`), and nothing else.

use serde::{de::Error, Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Int(u64),
    Float(f64),
}

fn whole<E: Error>(n: Num) -> Result<u64, E> {
    match n {
        Num::Int(v) => Ok(v),
        Num::Float(f)
            if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_991.0 =>
        {
            Ok(f as u64)
        }
        Num::Float(f) => Err(E::custom(format!(
            "expected a non-negative integer, got {f}"
        ))),
    }
}

/// A `u64` from an integer or a whole float.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    whole(Num::deserialize(d)?)
}

/// An optional `u64` from an integer or a whole float (`null` or absent is `None`).
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<Num>::deserialize(d)?.map(whole).transpose()
}
