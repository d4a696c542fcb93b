//! Retry delays shared by checks, deliveries and endpoint outages: doubling from a base,
//! capped, with jitter so that what failed together does not retry together.

use std::time::Duration;

/// The delay after `failures` failures in a row (`jitter` in `[0, 1)`): the base doubled
/// per failure up to `max`, then spread over 75–125 %.
pub fn backoff(failures: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    exp.min(max).mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_is_capped() {
        let (b, m) = (Duration::from_secs(30), Duration::from_secs(3600));
        let at = |f, j| backoff(f, b, m, j).as_secs_f64();
        assert_eq!(at(1, 0.5), 30.0);
        assert_eq!(at(3, 0.5), 120.0);
        assert_eq!(at(30, 0.5), 3600.0);
        assert!((22.0..=38.0).contains(&at(1, 0.0)) && (22.0..=38.0).contains(&at(1, 0.999)));
    }
}
