//! Serde helpers for sizes and ids that arrive as JS numbers: napi and serde-wasm-bindgen
//! hand large integers over as floats (`8589934592.0`), so a `u64` field also accepts a
//! float that is a whole number below 2^53 (at most `Number.MAX_SAFE_INTEGER`), and nothing else.

use std::fmt;

use serde::de::{Error, Visitor};
use serde::Deserializer;

/// The largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A JS number as a non-negative integer, if it is one exactly (whole, at most 2^53 − 1).
pub fn whole(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE).then_some(v as u64)
}

/// Accepts integers and whole floats; its `expecting` is what an error says was wanted.
struct Whole;

impl Visitor<'_> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        whole(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Float(v), &self))
    }
}

/// `Some` of a [`Whole`]; `null` or absent is `None`.
struct OptWhole;

impl<'de> Visitor<'de> for OptWhole {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        u64(d).map(Some)
    }
}

/// A `u64` from an integer or a whole float.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Whole)
}

/// An optional `u64` from an integer or a whole float (`null` or absent is `None`).
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(OptWhole)
}
