//! Go `time.Duration` syntax: parsing (`time.ParseDuration`) and formatting (`Duration.String`).
//!
//! Flux fields such as `interval` and `timeout` are `metav1.Duration`, written in Go syntax and
//! additionally restricted by the CRD pattern `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not Go duration syntax at all.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit, e.g. `5`.
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit Go does not know, e.g. `5d`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// Go accepts negative durations; Ferry's intervals and timeouts cannot be negative.
    #[error("negative duration {0:?} is not allowed")]
    Negative(String),
    /// Larger than Go's `time.Duration` range (about 292 years).
    #[error("duration {0:?} overflows")]
    Overflow(String),
    /// Valid Go syntax but not allowed by the Flux CRD pattern (units ms, s, m, h only).
    #[error(
        "duration {0:?} does not match the Flux pattern ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$ (e.g. 1m0s, 5m, 1h30m, 500ms)"
    )]
    NotFluxPattern(String),
}

const NS: u128 = 1;
const US: u128 = 1_000;
const MS: u128 = 1_000_000;
const SEC: u128 = 1_000_000_000;
const MIN: u128 = 60 * SEC;
const HOUR: u128 = 60 * MIN;
/// Go's `time.Duration` is an int64 of nanoseconds.
const MAX_NS: u128 = i64::MAX as u128;

fn unit_ns(unit: &str) -> Option<u128> {
    match unit {
        "ns" => Some(NS),
        // Go accepts the ASCII form, U+00B5 (micro sign) and U+03BC (Greek mu).
        "us" | "\u{b5}s" | "\u{3bc}s" => Some(US),
        "ms" => Some(MS),
        "s" => Some(SEC),
        "m" => Some(MIN),
        "h" => Some(HOUR),
        _ => None,
    }
}

/// Parses a Go duration string (`time.ParseDuration` syntax): a sequence of decimal numbers with
/// optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `1m0s`, `1.5h`,
/// `500ms`. `0` alone is allowed. Negative values are rejected.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        // Fraction part.
        let mut frac_digits = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (f, r) = rest.split_at(frac_len);
            frac_digits = f;
            s = r;
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid());
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let scale = unit_ns(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
            input: input.to_string(),
        })?;
        let overflow = || DurationError::Overflow(input.to_string());
        let mut int: u128 = 0;
        for b in int_digits.bytes() {
            int = int
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .filter(|v| *v <= MAX_NS)
                .ok_or_else(overflow)?;
        }
        let mut value = int.checked_mul(scale).ok_or_else(overflow)?;
        if !frac_digits.is_empty() {
            value = value
                .checked_add(fraction_ns(frac_digits, scale))
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > MAX_NS {
            return Err(overflow());
        }
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    let secs =
        u64::try_from(total / SEC).map_err(|_| DurationError::Overflow(input.to_string()))?;
    // total % SEC < 1e9 always fits in u32.
    let nanos = u32::try_from(total % SEC).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// A unit's fraction in nanoseconds, with Go's arithmetic: the fraction digits as an integer
/// (accumulation stops on overflow), then one float64 multiplication, truncated.
fn fraction_ns(frac_digits: &str, scale: u128) -> u128 {
    let mut f: u64 = 0;
    let mut f_scale: f64 = 1.0;
    for b in frac_digits.bytes() {
        if f > (i64::MAX as u64) / 10 {
            break;
        }
        let y = f * 10 + u64::from(b - b'0');
        if y > 1u64 << 63 {
            break;
        }
        f = y;
        f_scale *= 10.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let frac_ns = (f as f64 * (scale as f64 / f_scale)) as u128;
    frac_ns
}

static FLUX_PATTERN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$").ok());

/// Parses a duration as Flux's CRDs accept it: Go syntax restricted to the pattern
/// `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$` (no sign, no `ns`/`us`, no bare `0`).
pub fn parse_flux_duration(input: &str) -> Result<Duration, DurationError> {
    let d = parse_go_duration(input)?;
    match FLUX_PATTERN.as_ref() {
        Some(re) if re.is_match(input) => Ok(d),
        _ => Err(DurationError::NotFluxPattern(input.to_string())),
    }
}

/// Formats like Go's `Duration.String()`: `0s`, `500ms`, `1.5s`, `1m0s`, `1h30m0s`, `1µs`, `100ns`.
pub fn format_go_duration(d: Duration) -> String {
    let total = d.as_nanos().min(MAX_NS);
    if total == 0 {
        return "0s".to_string();
    }
    if total < SEC {
        // Sub-second: one unit with a fraction.
        let (unit, scale, prec) = if total < US {
            return format!("{total}ns");
        } else if total < MS {
            ("\u{b5}s", US, 3)
        } else {
            ("ms", MS, 6)
        };
        return format!("{}{}{}", total / scale, frac(total % scale, prec), unit);
    }
    let hours = total / HOUR;
    let mins = (total % HOUR) / MIN;
    let secs = (total % MIN) / SEC;
    let sub = total % SEC;
    let secs_str = format!("{secs}{}s", frac(sub, 9));
    if hours > 0 {
        format!("{hours}h{mins}m{secs_str}")
    } else if mins > 0 {
        format!("{mins}m{secs_str}")
    } else {
        secs_str
    }
}

/// `.ddd` with trailing zeros removed, or empty when the fraction is zero.
fn frac(value: u128, prec: usize) -> String {
    if value == 0 {
        return String::new();
    }
    let digits = format!("{value:0prec$}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// A Flux duration field (`metav1.Duration`): deserialized from Go syntax restricted to the
/// Flux CRD pattern, serialized with [`format_go_duration`].
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// The duration as `std::time::Duration`.
    pub fn as_duration(&self) -> Duration {
        self.0
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(d)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

impl fmt::Debug for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoDuration({})", format_go_duration(self.0))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_go_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        parse_flux_duration(&s)
            .map(GoDuration)
            .map_err(|e| match e {
                DurationError::NotFluxPattern(_) => serde::de::Error::custom(e),
                other => serde::de::Error::custom(format_args!(
                    "{other} (expected a Go duration such as 1m0s, 5m, 1h30m, 500ms)"
                )),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn parses_go_examples() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("5s", Duration::from_secs(5)),
            ("30s", Duration::from_secs(30)),
            ("1478s", Duration::from_secs(1478)),
            ("-0", Duration::ZERO),
            ("+5s", Duration::from_secs(5)),
            ("5.0s", Duration::from_secs(5)),
            ("5.6s", Duration::from_millis(5600)),
            ("5.s", Duration::from_secs(5)),
            (".5s", Duration::from_millis(500)),
            ("1.0s", Duration::from_secs(1)),
            ("1.00s", Duration::from_secs(1)),
            ("1.004s", Duration::from_millis(1004)),
            ("100.00100s", Duration::from_millis(100_001)),
            ("10ns", ns(10)),
            ("11us", ns(11_000)),
            ("12\u{b5}s", ns(12_000)),
            ("12\u{3bc}s", ns(12_000)),
            ("13ms", Duration::from_millis(13)),
            ("14s", Duration::from_secs(14)),
            ("15m", Duration::from_secs(15 * 60)),
            ("16h", Duration::from_secs(16 * 3600)),
            ("3h30m", Duration::from_secs(3 * 3600 + 30 * 60)),
            ("10.5s4m", Duration::from_millis(4 * 60_000 + 10_500)),
            ("1h2m3s4ms5us6ns", ns(3_723_004_005_006)),
            ("39h9m14.425s", Duration::from_millis(140_954_425)),
            ("52763797000ns", ns(52_763_797_000)),
            ("0.3333333333333333333h", ns(1_200_000_000_000)),
            ("9007199254740993ns", ns(9_007_199_254_740_993)),
            ("9223372036854775807ns", ns(9_223_372_036_854_775_807)),
            ("1m0s", Duration::from_secs(60)),
            ("1.5h", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input).as_ref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_go_errors() {
        for input in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1.5x",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "-5s",
            "5 m",
        ] {
            assert!(parse_go_duration(input).is_err(), "{input:?} should fail");
        }
        assert!(matches!(
            parse_go_duration("3"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_go_duration("1d"),
            Err(DurationError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn flux_pattern() {
        for ok in ["1m0s", "5m", "1h30m", "500ms", "1.5h", "0s", "10m0s"] {
            assert!(parse_flux_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "10us", "-1m", "+1m", ".5s", "5.s", "1 m", "5"] {
            assert!(parse_flux_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (ns(1), "1ns"),
            (ns(1100), "1.1\u{b5}s"),
            (ns(2_200_000), "2.2ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(3300), "3.3s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(4 * 60 + 5), "4m5s"),
            (Duration::from_millis(4 * 60_000 + 5_001), "4m5.001s"),
            (Duration::from_secs(5 * 3600 + 6 * 60 + 7), "5h6m7s"),
            (
                ns(5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_000_000_001),
                "5h6m7.000000001s",
            ),
            (Duration::from_secs(8 * 3600 + 1), "8h0m1s"),
            (Duration::from_secs(5400), "1h30m0s"),
            (ns(9_223_372_036_854_775_807), "2562047h47m16.854775807s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go_duration(*d), *want);
        }
    }

    #[test]
    fn round_trip() {
        for s in [
            "1m0s",
            "1h30m0s",
            "500ms",
            "1.5s",
            "2562047h47m16.854775807s",
        ] {
            let d = parse_go_duration(s).unwrap();
            assert_eq!(format_go_duration(d), s);
        }
    }
}
