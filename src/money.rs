//! USD amounts as callers read them: held as integer picodollars and printed as exact
//! decimal JSON numbers (`0.000025`, `10000.5`), never through a float.
//!
//! serde_json keeps numbers of a `Value` as `f64`, which is exact only up to about 15
//! significant digits, so an amount is never put in a `Value` as a number. Typed replies
//! hold a [`Usd`], which serializes its digits as they are; replies built as a `Value`
//! hold the amount's [`tagged`] form, `{"$usd": "<decimal>"}`, which [`Exact`] writes
//! out as the number. The Account object's answers carry tagged amounts to the worker.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The key of a tagged amount.
const TAG: &str = "$usd";

/// An amount of USD in picodollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Usd(pub u128);

impl Usd {
    pub fn from_picos(picos: u64) -> Usd {
        Usd(u128::from(picos))
    }

    /// Parses the decimal text of an amount (`"0.000025"`, `"12"`); more than 12
    /// decimals, a sign or anything else is refused.
    pub fn parse(text: &str) -> Option<Usd> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 12 {
            return None;
        }
        let whole: u128 = int.parse().ok()?;
        let frac_picos: u128 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<12}").parse().ok()?
        };
        whole
            .checked_mul(u128::from(PICOS_PER_USD))?
            .checked_add(frac_picos)
            .map(Usd)
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = u128::from(PICOS_PER_USD);
        let (whole, frac) = (
            self.0.checked_div(per).unwrap_or(0),
            self.0.checked_rem(per).unwrap_or(0),
        );
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let frac = format!("{frac:012}");
        write!(f, "{whole}.{}", frac.trim_end_matches('0'))
    }
}

impl Serialize for Usd {
    /// The decimal digits as a JSON number, exactly (serde_json's raw value).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.to_string()) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

impl<'de> Deserialize<'de> for Usd {
    /// An upstream's `cost` (a number, or a tagged amount from the Account object).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let v = Value::deserialize(d)?;
        from_value(&v).ok_or_else(|| serde::de::Error::custom("not a USD amount"))
    }
}

/// An amount read from JSON: a tagged amount exactly; a plain number (an upstream's
/// own report, informative only) rounded to the picodollar.
fn from_value(v: &Value) -> Option<Usd> {
    match v {
        Value::Object(m) => m.get(TAG).and_then(Value::as_str).and_then(Usd::parse),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                return u128::from(u)
                    .checked_mul(u128::from(PICOS_PER_USD))
                    .map(Usd);
            }
            let f = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
            picos_from_usd_text(&format!("{f:.12}")).map(Usd::from_picos)
        }
        _ => None,
    }
}

/// `picos` as a tagged amount, for a reply built as a `Value`.
pub fn tagged(picos: u128) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(TAG.into(), Value::String(Usd(picos).to_string()));
    Value::Object(m)
}

/// Writes a `Value` with its tagged amounts as exact numbers.
pub struct Exact<'a>(pub &'a Value);

impl Serialize for Exact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(m) => {
                if let Some(usd) = (m.len() == 1).then(|| from_value(self.0)).flatten() {
                    return usd.serialize(s);
                }
                let mut out = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    out.serialize_entry(k, &Exact(v))?;
                }
                out.end()
            }
            Value::Array(a) => {
                let mut out = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    out.serialize_element(&Exact(v))?;
                }
                out.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Picodollars (10^-12 USD) in a dollar: fine enough for every published per-token
/// price, so that costs add up exactly in integers.
pub const PICOS_PER_USD: u64 = 1_000_000_000_000;

/// Parses a non-negative decimal USD amount (`"0.00000015"`) into picodollars, exactly
/// for up to 12 decimals (further digits are rounded).
pub fn parse_picos(s: &str) -> Option<u64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut picos: u64 = 0;
    for (i, d) in frac.bytes().take(12).enumerate() {
        // Digits only (checked above); at most 12 of them.
        let place = 10u64.pow(11u32.saturating_sub(u32::try_from(i).unwrap_or(11)));
        picos = picos.saturating_add(u64::from(d.saturating_sub(b'0')).saturating_mul(place));
    }
    if frac.as_bytes().get(12).is_some_and(|d| *d >= b'5') {
        picos = picos.saturating_add(1);
    }
    whole.checked_mul(PICOS_PER_USD)?.checked_add(picos)
}

/// A catalogue price: picodollars per unit (a token, a request, an image, a search).
/// The catalogue writes prices as decimal USD text (`"0.000000075"`); they are parsed
/// once, when the catalogue is loaded, by [`parse_picos`] (exact to the picodollar,
/// further digits rounded), compared and multiplied as integers from then on, and
/// written back out as exact decimal text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(pub u64);

impl Price {
    pub const ZERO: Price = Price(0);

    pub fn picos(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for Price {
    type Err = String;

    fn from_str(s: &str) -> Result<Price, String> {
        parse_picos(s)
            .map(Price)
            .ok_or_else(|| format!("{s:?} is not a decimal USD price"))
    }
}

/// Test catalogues write prices as text, as the real one does.
#[cfg(test)]
impl From<&str> for Price {
    fn from(s: &str) -> Price {
        s.parse().unwrap()
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Usd::from_picos(self.0).fmt(f)
    }
}

impl Serialize for Price {
    /// As the catalogue and OpenRouter's listings write prices: decimal text.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Price;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price as decimal USD text, such as \"0.000001\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Price, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

/// The largest single amount of USD the API takes (a grant, a key limit).
pub const MAX_USD_AMOUNT: u64 = 1_000_000;

/// `percent` of `picos`, rounded up to the picodollar (a BYOK generation's fee), in
/// integers only.
pub fn percent_up(picos: u64, percent: u64) -> u64 {
    let share = u128::from(picos)
        .saturating_mul(u128::from(percent))
        .saturating_add(99)
        / 100;
    u64::try_from(share).unwrap_or(u64::MAX)
}

/// USD as callers send it (the decimal text of a JSON number or a string, `"12.5"`,
/// `1e3`) to picodollars, without passing through a float; refuses negative amounts,
/// more than 12 decimals and more than [`MAX_USD_AMOUNT`].
pub fn picos_from_usd_text(text: &str) -> Option<u64> {
    let t = text.trim();
    // Exponent notation, as a JSON number may print (`1e16`, `2.5E-7`).
    let (mantissa, exp) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !(-30..=30).contains(&exp) {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Shift the decimal point by the exponent over the digit string.
    let digits = format!("{int}{frac}");
    let point = i32::try_from(int.len()).ok()?.checked_add(exp)?;
    let (int, frac) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        )
    } else {
        let p = usize::try_from(point).ok()?;
        if p >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(p.saturating_sub(digits.len()))),
                String::new(),
            )
        } else {
            (digits.get(..p)?.to_string(), digits.get(p..)?.to_string())
        }
    };
    let frac = frac.trim_end_matches('0');
    if frac.len() > 12 {
        return None;
    }
    let whole = int.trim_start_matches('0');
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if whole > MAX_USD_AMOUNT {
        return None;
    }
    let picos = parse_picos(&format!("0.{frac}")).unwrap_or(0);
    let total = whole.checked_mul(PICOS_PER_USD)?.checked_add(picos)?;
    (total <= MAX_USD_AMOUNT * PICOS_PER_USD).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_and_parses_exact_decimals() {
        for (picos, text) in [
            (0u128, "0"),
            (25_000_000, "0.000025"),
            (10_000 * 1_000_000_000_000, "10000"),
            (1, "0.000000000001"),
            // Past 2^53 picodollars and past u64: no float could hold these.
            (9_007_199_254_740_993, "9007.199254740993"),
            (123_456_789_012_345_678_901_234, "123456789012.345678901234"),
        ] {
            assert_eq!(Usd(picos).to_string(), text);
            assert_eq!(Usd::parse(text), Some(Usd(picos)));
            assert_eq!(serde_json::to_string(&Usd(picos)).unwrap(), text);
        }
        for bad in ["", "-1", "1.0000000000001", "1e3", ".5", "1.2.3", "x"] {
            assert_eq!(Usd::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn prices_are_read_once_and_written_back_exactly() {
        for (text, picos, back) in [
            ("0.000000075", 75_000, "0.000000075"),
            ("0.00000150", 1_500_000, "0.0000015"),
            ("2", 2 * PICOS_PER_USD, "2"),
            ("0", 0, "0"),
            ("0.0000000000015", 2, "0.000000000002"),
        ] {
            let p: Price = serde_json::from_value(json!(text)).unwrap();
            assert_eq!(p, Price(picos), "{text}");
            assert_eq!(serde_json::to_value(p).unwrap(), json!(back));
        }
        for bad in [json!("cheap"), json!("-1"), json!(0.5), json!(null)] {
            assert!(
                serde_json::from_value::<Price>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tagged_amounts_are_written_as_numbers() {
        let v = json!({
            "data": {"total_usage": tagged(9_007_199_254_740_993), "label": "k"},
            "list": [tagged(1), {"$usd": "not a number"}, {"$usd": "1", "other": 2}],
        });
        assert_eq!(
            serde_json::to_string(&Exact(&v)).unwrap(),
            r#"{"data":{"label":"k","total_usage":9007.199254740993},"list":[0.000000000001,{"$usd":"not a number"},{"$usd":"1","other":2}]}"#
        );
    }

    #[test]
    fn reads_upstream_and_tagged_amounts() {
        let read = |v: Value| serde_json::from_value::<Usd>(v).ok();
        assert_eq!(read(json!(0.000025)), Some(Usd(25_000_000)));
        assert_eq!(read(json!(2)), Some(Usd(2_000_000_000_000)));
        assert_eq!(read(tagged(7)), Some(Usd(7)));
        assert_eq!(read(json!(-1.0)), None);
        assert_eq!(read(json!("1")), None);
    }
}
