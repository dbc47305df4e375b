//! Numbers the way event-ruler compares them.
//!
//! event-ruler turns a number into a fixed-width "comparable" string when it lies within
//! ±5.0e9 and has at most six digits after the decimal point (its README and EventBridge's
//! user guide: "values between -5.0e9 and +5.0e9 inclusive, with 15 digits of precision, or
//! six digits to the right of the decimal point"). Such numbers compare numerically: `1`,
//! `1.0` and `1e0` are equal and ranges apply. Here they become an exact integer count of
//! millionths ([`comparable`]).
//!
//! Numbers outside that domain are not comparable: `numeric` never matches them and
//! `numeric`/`anything-but` operands must not use them (a pattern error). An exact number
//! in a pattern still matches an equal event number outside the domain — event-ruler keeps
//! the literal text for that ("an AWS account number"); we compare the JSON numbers
//! themselves ([`NumKey`]: integers by value, fractions by their `f64`), which agrees
//! except when the same value is spelled two ways (`1e10` vs `10000000000`), where
//! event-ruler's text comparison says "different" and so do we (float vs integer).
//!
//! Note: event-ruler's newest sources widen the domain to ±5.0e11; EventBridge documents
//! ±5.0e9, which is what [`LIMIT`] implements.

use serde_json::Number;

/// The largest magnitude of a comparable number (5.0e9), in whole units.
pub const LIMIT: i64 = 5_000_000_000;
/// Millionths per unit: comparable numbers keep six decimal places.
pub(crate) const SCALE: i64 = 1_000_000;
/// [`LIMIT`] in millionths.
pub(crate) const LIMIT_MICROS: i64 = LIMIT * SCALE;

/// The identity of a JSON number for exact comparison outside the comparable domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NumKey {
    Pos(u64),
    Neg(i64),
    /// `f64` bits, with `-0.0` folded into `0.0`.
    Float(u64),
}

pub(crate) fn num_key(n: &Number) -> NumKey {
    if let Some(u) = n.as_u64() {
        NumKey::Pos(u)
    } else if let Some(i) = n.as_i64() {
        NumKey::Neg(i)
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        let f = if f == 0.0 { 0.0 } else { f };
        NumKey::Float(f.to_bits())
    }
}

/// The number in millionths when event-ruler can compare it numerically, else `None`.
pub(crate) fn comparable(n: &Number) -> Option<i64> {
    if let Some(u) = n.as_u64() {
        return (u <= LIMIT as u64).then(|| u as i64 * SCALE);
    }
    if let Some(i) = n.as_i64() {
        return (-LIMIT..=LIMIT).contains(&i).then(|| i * SCALE);
    }
    comparable_f64(n.as_f64()?)
}

/// [`comparable`] for a float: decided on its shortest round-tripping decimal spelling,
/// which is the spelling the JSON text had for any number written with ≤ 15 digits.
///
/// The float is comparable when that spelling has at most six decimals. Within ±5e9 two
/// decimals with six places lie 1e-6 apart, more than the width of any float's rounding
/// interval there (at most 2^-20), so at most one of them rounds to the float; when one
/// does, it is the shortest spelling (a spelling with more decimals has more significant
/// digits). So: the float is comparable exactly when some `m / 10^6` rounds to it, and `m`
/// is then its value in millionths. `m as f64 / 1e6` is one correctly rounded division of
/// exact operands (`|m| <= 5e15 < 2^53`), i.e. exactly "the decimal `m / 10^6` parsed", and
/// `f * 1e6` is within one unit of `m`, so trying its neighbours settles it — with no
/// formatting (the previous implementation, kept in the tests as the reference).
pub(crate) fn comparable_f64(f: f64) -> Option<i64> {
    if !f.is_finite() || f.abs() > LIMIT as f64 {
        return None;
    }
    if f.fract() == 0.0 {
        return Some(f as i64 * SCALE);
    }
    let guess = (f * SCALE as f64).round() as i64;
    [guess, guess - 1, guess + 1].into_iter().find(|&m| m as f64 / SCALE as f64 == f)
}

/// Renders millionths as the shortest decimal (`301.8`, `-5`, `0.000001`).
pub(crate) fn format_micros(m: i64) -> String {
    let sign = if m < 0 { "-" } else { "" };
    let abs = m.unsigned_abs();
    let whole = abs / SCALE as u64;
    let frac = abs % SCALE as u64;
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{frac:06}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The original definition: format the float's shortest round-tripping decimal and
    /// count its decimals.
    fn comparable_f64_by_formatting(f: f64) -> Option<i64> {
        if !f.is_finite() || f.abs() > LIMIT as f64 {
            return None;
        }
        if f.fract() == 0.0 {
            return Some(f as i64 * SCALE);
        }
        // Rust prints the shortest decimal that round-trips, never in exponent form.
        let text = format!("{}", f.abs());
        let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
        let frac_part = frac_part.trim_end_matches('0');
        if frac_part.len() > 6 {
            return None;
        }
        let whole: i64 = int_part.parse().ok()?;
        let mut frac: i64 = if frac_part.is_empty() { 0 } else { frac_part.parse().ok()? };
        for _ in frac_part.len()..6 {
            frac *= 10;
        }
        let micros = whole * SCALE + frac;
        Some(if f < 0.0 { -micros } else { micros })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn comparable_f64_agrees_with_formatting(
            f in prop_oneof![
                any::<f64>(),
                -5.0e9f64..5.0e9,
                -10.0f64..10.0,
                (-5_000_000_000_000_000i64..=5_000_000_000_000_000).prop_map(|m| m as f64 / 1e6),
                (-5_000_000_000_000_000i64..=5_000_000_000_000_000, -3i64..=3)
                    .prop_map(|(m, d)| f64::from_bits((m as f64 / 1e6).to_bits().wrapping_add(d as u64))),
                (-1_000_000_000i64..=1_000_000_000, 0u32..12).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
            ]
        ) {
            prop_assert_eq!(comparable_f64(f), comparable_f64_by_formatting(f), "{:?}", f);
        }
    }

    #[test]
    fn comparable_f64_edges() {
        for f in [
            0.1,
            -0.1,
            1e-6,
            -1e-6,
            1e-7,
            5e9,
            -5e9,
            4_999_999_999.999_999,
            4_999_999_999.999_998,
            f64::from_bits(4_999_999_999.999_999f64.to_bits() + 1),
            0.000_000_5,
            1.000_000_5,
            123.456_789,
            301.8,
            2.5e-7,
            -0.0,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(comparable_f64(f), comparable_f64_by_formatting(f), "{f:?}");
        }
    }

    fn c(text: &str) -> Option<i64> {
        let n: Number = serde_json::from_str(text).unwrap();
        comparable(&n)
    }

    #[test]
    fn comparable_domain_follows_event_ruler() {
        assert_eq!(c("1"), Some(1_000_000));
        assert_eq!(c("1.0"), Some(1_000_000));
        assert_eq!(c("1e0"), Some(1_000_000));
        assert_eq!(c("3.018e2"), Some(301_800_000));
        assert_eq!(c("-0.000001"), Some(-1));
        assert_eq!(c("0.1"), Some(100_000));
        assert_eq!(c("-0"), Some(0));
        assert_eq!(c("5000000000"), Some(LIMIT_MICROS));
        assert_eq!(c("-5e9"), Some(-LIMIT_MICROS));
        assert_eq!(c("5000000000.000001"), None);
        assert_eq!(c("5000000001"), None);
        assert_eq!(c("123456789012"), None);
        assert_eq!(c("37.8078079"), None, "seven decimals are not comparable");
        assert_eq!(c("37.807807"), Some(37_807_807));
        assert_eq!(c("1e-7"), None);
        assert_eq!(c("18446744073709551615"), None);
    }

    #[test]
    fn keys_distinguish_spellings_outside_the_domain() {
        let k = |t: &str| num_key(&serde_json::from_str::<Number>(t).unwrap());
        assert_eq!(k("123456789012"), k("123456789012"));
        assert_ne!(k("1e10"), k("10000000000"));
        assert_eq!(k("-0.0"), k("0.0"));
        assert_eq!(k("-7"), NumKey::Neg(-7));
    }

    #[test]
    fn micros_render_shortest() {
        assert_eq!(format_micros(301_800_000), "301.8");
        assert_eq!(format_micros(-5_000_000), "-5");
        assert_eq!(format_micros(1), "0.000001");
        assert_eq!(format_micros(0), "0");
    }
}
