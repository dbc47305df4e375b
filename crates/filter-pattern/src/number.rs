//! Number syntax shared by pattern literals, space-delimited fields and JSON strings.
//!
//! A number is `[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?` — e.g. `200`, `-1.5`,
//! `10e3`, `1e-3`, `+.5` — and must be finite as an `f64`. Anything else (`0x10`, `1.2.3`,
//! `NaN`, `inf`, ` 1`) is not a number. Comparisons are done in `f64`, so integers beyond
//! 2^53 compare approximately.

/// Parses `text` when all of it is a number in the syntax above.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    if !is_number_syntax(text.as_bytes()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// True when `text` has number syntax, whether or not it fits in an `f64`.
pub(crate) fn is_number_syntax(bytes: &[u8]) -> bool {
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_digits = count_digits(&bytes[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(&bytes[i..]);
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(&bytes[i..]);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == bytes.len()
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_numbers() {
        for (text, value) in [
            ("200", 200.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            ("10e3", 10_000.0),
            ("1E-3", 0.001),
            ("1e+3", 1000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("0007", 7.0),
        ] {
            assert_eq!(parse_number(text), Some(value), "{text}");
        }
    }

    #[test]
    fn rejects_non_numbers() {
        for text in [
            "", "-", "+", ".", "e3", "1e", "1e+", "0x10", "1.2.3", "NaN", "inf", " 1", "1 ", "1_000", "1e999", "--1",
            "١٢",
        ] {
            assert_eq!(parse_number(text), None, "{text:?}");
        }
    }
}
