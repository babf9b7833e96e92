//! Go `strconv.ParseFloat(s, 64)` syntax and rounding, as used by Flux's numerical policy.
//!
//! Rust's `f64::from_str` accepts a different language (no `_` separators, no hex floats,
//! `1e400` silently becomes infinity), so the Go grammar is validated here first and only the
//! decimal conversion itself is delegated to the (correctly rounded) standard library.

use thiserror::Error;

/// Why a string is not a Go float literal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseFloatError {
    /// The text is not in Go's float syntax (Go: `invalid syntax`).
    #[error("strconv.ParseFloat: parsing {0:?}: invalid syntax")]
    Syntax(String),
    /// The value does not fit a float64 (Go: `value out of range`).
    #[error("strconv.ParseFloat: parsing {0:?}: value out of range")]
    Range(String),
}

/// Parses `s` exactly as Go's `strconv.ParseFloat(s, 64)` would.
///
/// Accepted: optional sign, decimal mantissa with optional `.` and `e` exponent, hexadecimal
/// mantissa (`0x`) with mandatory `p` exponent, `_` separators only between digits (or after
/// the base prefix), and case-insensitive `inf`, `infinity` (signed) and `nan` (unsigned).
/// Overflow is an error; underflow rounds to (signed) zero like Go.
pub fn parse_go_float(s: &str) -> Result<f64, ParseFloatError> {
    if let Some(v) = special(s) {
        return Ok(v);
    }
    let syntax = || ParseFloatError::Syntax(s.to_owned());
    let b = s.as_bytes();
    let mut i = 0;
    let mut neg = false;
    if let Some(&c) = b.first()
        && (c == b'+' || c == b'-')
    {
        neg = c == b'-';
        i = 1;
    }
    // Go only treats `0x` as a prefix when at least one more byte follows it.
    let hex = i + 2 < b.len() && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
    if hex {
        i += 2;
    }
    let mant_start = i;
    let mut underscores = false;
    let mut saw_dot = false;
    let mut saw_digits = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'_' => underscores = true,
            b'.' if !saw_dot => saw_dot = true,
            b'0'..=b'9' => saw_digits = true,
            _ if hex && (c | 0x20).is_ascii_hexdigit() && (c | 0x20) >= b'a' => saw_digits = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return Err(syntax());
    }
    let mant_end = i;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exp_range: Option<(usize, usize)> = None;
    if i < b.len() && (b[i] | 0x20) == exp_char {
        i += 1;
        let start = i;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if i >= b.len() || !b[i].is_ascii_digit() {
            return Err(syntax());
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            if b[i] == b'_' {
                underscores = true;
            }
            i += 1;
        }
        exp_range = Some((start, i));
    } else if hex {
        return Err(syntax());
    }
    if i != b.len() {
        return Err(syntax());
    }
    if underscores && !underscore_ok(s) {
        return Err(syntax());
    }
    if hex {
        let exp = exp_range.map(|(a, e)| parse_exp(&b[a..e])).unwrap_or(0);
        return hex_to_f64(&b[mant_start..mant_end], exp, neg)
            .ok_or_else(|| ParseFloatError::Range(s.to_owned()));
    }
    // Decimal: the syntax is validated, so the std parser (which also accepts this grammar once
    // the separators are gone) gives the correctly rounded value.
    let v: f64 = if underscores {
        s.chars().filter(|&c| c != '_').collect::<String>().parse()
    } else {
        s.parse()
    }
    .map_err(|_| syntax())?;
    if v.is_infinite() {
        return Err(ParseFloatError::Range(s.to_owned()));
    }
    Ok(v)
}

/// `inf`, `infinity` (optionally signed) and `nan` (unsigned), case-insensitive, whole string.
fn special(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    if rest.len() == s.len() && rest.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    None
}

/// Go's rule: `_` may only sit between digits, or between a base prefix and a digit.
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some(&c) = b.first()
        && (c == b'+' || c == b'-')
    {
        b = &b[1..];
    }
    // 'd' = digit or base prefix, '_' = underscore, '^' = start, '!' = anything else.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'd';
        hex = (b[1] | 0x20) == b'x';
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'd';
            continue;
        }
        if c == b'_' {
            if saw != b'd' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Exponent digits (with optional sign and `_`), saturated far beyond the float64 range.
fn parse_exp(b: &[u8]) -> i64 {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut e: i64 = 0;
    for &c in digits {
        if c.is_ascii_digit() && e < 1_000_000 {
            e = e * 10 + i64::from(c - b'0');
        }
    }
    if neg { -e } else { e }
}

/// Converts hex mantissa digits (with optional `.` and `_`) times `2^exp` to f64 with
/// round-half-to-even; `None` on overflow.
fn hex_to_f64(digits: &[u8], exp: i64, neg: bool) -> Option<f64> {
    // Keep the first 16 significant hex digits (64 bits); later non-zero digits only set the
    // sticky bit, later integer digits scale the exponent.
    let mut mant: u64 = 0;
    let mut taken = 0u32;
    let mut sticky = false;
    let mut e2: i64 = exp;
    let mut frac = false;
    for &c in digits {
        let d = match c {
            b'.' => {
                frac = true;
                continue;
            }
            b'_' => continue,
            b'0'..=b'9' => u64::from(c - b'0'),
            _ => u64::from((c | 0x20) - b'a' + 10),
        };
        if mant == 0 && d == 0 {
            if frac {
                e2 -= 4;
            }
            continue;
        }
        if taken < 16 {
            mant = (mant << 4) | d;
            taken += 1;
            if frac {
                e2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !frac {
                e2 += 4;
            }
        }
    }
    let sign = if neg { -1.0 } else { 1.0 };
    if mant == 0 {
        return Some(sign * 0.0);
    }
    round_to_f64(mant, e2, sticky).map(|v| sign * v)
}

/// `mant * 2^e2` (plus a sticky "something non-zero was dropped" bit) rounded to nearest even.
fn round_to_f64(mant: u64, e2: i64, sticky: bool) -> Option<f64> {
    let nbits = i64::from(64 - mant.leading_zeros());
    // Exponent of the lowest kept bit: 53 significant bits for normals, 2^-1074 for subnormals.
    let top = e2 + nbits - 1;
    if top > 1023 + 1 {
        return None;
    }
    let low = (top - 52).max(-1074);
    let drop = low - e2;
    let (mut q, mut k) = if drop <= 0 {
        // Exact: shift left (bounded because q stays below 2^53).
        (mant << (-drop) as u32, low)
    } else if drop > 64 {
        // Everything lies below half of the smallest unit: rounds to zero.
        (0u64, low)
    } else {
        let d = drop as u32;
        let kept = if d == 64 { 0 } else { mant >> d };
        let rem_mask = if d == 64 { u64::MAX } else { (1u64 << d) - 1 };
        let rem = mant & rem_mask;
        let half = 1u64 << (d - 1);
        let round_up = rem > half || (rem == half && (sticky || kept & 1 == 1));
        let q = if round_up { kept + 1 } else { kept };
        (q, low)
    };
    if q == 1u64 << 53 {
        q >>= 1;
        k += 1;
    }
    if q == 0 {
        return Some(0.0);
    }
    let bits = if q >= 1u64 << 52 {
        let field = k + 52 + 1023;
        if field >= 2047 {
            return None;
        }
        ((field as u64) << 52) | (q & ((1u64 << 52) - 1))
    } else {
        // Subnormal (k == -1074) or carried into the smallest normal above.
        q
    };
    Some(f64::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> f64 {
        parse_go_float(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> ParseFloatError {
        parse_go_float(s).expect_err(s)
    }

    #[test]
    fn decimals_and_signs() {
        assert_eq!(ok("0"), 0.0);
        assert_eq!(ok("-62"), -62.0);
        assert_eq!(ok("+1.5"), 1.5);
        assert_eq!(ok("1."), 1.0);
        assert_eq!(ok(".5"), 0.5);
        assert_eq!(ok("1e3"), 1000.0);
        assert_eq!(ok("1E+3"), 1000.0);
        assert_eq!(ok("2.5e-1"), 0.25);
        assert_eq!(ok("1606364286"), 1_606_364_286.0);
        assert_eq!(ok("53.47333823144817"), 53.47333823144817);
        assert!(ok("-0").is_sign_negative());
        assert_eq!(ok("1e-400"), 0.0);
    }

    #[test]
    fn underscores_follow_go_rules() {
        assert_eq!(ok("1_000"), 1000.0);
        assert_eq!(ok("1_000.000_1"), 1000.0001);
        assert_eq!(ok("0x_1p0"), 1.0);
        assert_eq!(ok("1e1_0"), 1e10);
        for s in ["_1", "1_", "1__0", "1_.5", "1._5", "1_e5", "+_1"] {
            assert!(matches!(bad(s), ParseFloatError::Syntax(_)), "{s}");
        }
    }

    #[test]
    fn hex_floats() {
        assert_eq!(ok("0x1p-2"), 0.25);
        assert_eq!(ok("0X1P+2"), 4.0);
        assert_eq!(ok("0x1.8p1"), 3.0);
        assert_eq!(ok("-0x.8p0"), -0.5);
        assert_eq!(ok("0xFFp0"), 255.0);
        assert_eq!(ok("0x1p-1074"), f64::from_bits(1));
        assert_eq!(ok("0x1p-1075"), 0.0); // exactly half the smallest subnormal: ties to even (0)
        assert_eq!(ok("0x3p-1076"), f64::from_bits(1)); // 0.75 units rounds up
        assert_eq!(ok("0x1.fffffffffffffp1023"), f64::MAX);
        assert_eq!(ok("0x10000000000000001p0"), 18446744073709551616.0); // 2^64 + 1 rounds to 2^64
        assert_eq!(ok("0x20000000000001p0"), 9007199254740992.0); // 2^53 + 1: tie to even
        assert_eq!(ok("0x20000000000003p0"), 9007199254740996.0); // 2^53 + 3: tie to even (up)
        assert!(matches!(bad("0x1p1024"), ParseFloatError::Range(_)));
        assert!(matches!(bad("0x1"), ParseFloatError::Syntax(_))); // exponent is mandatory
        assert!(matches!(bad("0x"), ParseFloatError::Syntax(_)));
        assert!(matches!(bad("0xp1"), ParseFloatError::Syntax(_)));
        // Ties to even on the 53-bit boundary.
        assert_eq!(ok("0x1.00000000000008p0"), 1.0);
        assert_eq!(ok("0x1.00000000000018p0"), 1.0 + 2.0 * f64::EPSILON);
        assert_eq!(ok("0x1.000000000000080000001p0"), 1.0 + f64::EPSILON);
    }

    #[test]
    fn specials() {
        assert_eq!(ok("inf"), f64::INFINITY);
        assert_eq!(ok("+Inf"), f64::INFINITY);
        assert_eq!(ok("-INFINITY"), f64::NEG_INFINITY);
        assert!(ok("NaN").is_nan());
        assert!(ok("nan").is_nan());
        for s in ["+nan", "-nan", "infin", "infinityy", "in", "nana"] {
            assert!(matches!(bad(s), ParseFloatError::Syntax(_)), "{s}");
        }
    }

    #[test]
    fn rejects_non_go_syntax() {
        for s in [
            "", "+", "-", ".", "e5", "1e", "1e+", "1a", "b", "0b1", "0o7", " 1", "1 ", "1.2.3", "١",
        ] {
            assert!(matches!(bad(s), ParseFloatError::Syntax(_)), "{s:?}");
        }
        assert!(matches!(bad("1e400"), ParseFloatError::Range(_)));
        assert!(matches!(bad("-1e400"), ParseFloatError::Range(_)));
    }
}
