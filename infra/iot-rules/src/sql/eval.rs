//! Evaluation of a parsed statement against one message.
//!
//! The payload is parsed at most once per message, however many rules read it, and only its top
//! level: each field keeps its raw JSON text, which `SELECT *` copies to the output unchanged.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use super::{CmpOp, Expr, Literal, Sql};

/// One message as the rules see it: the topic (without any Basic Ingest prefix), the payload,
/// the publisher's client id and the rules engine's clock.
pub(crate) struct Message<'m> {
    topic: &'m str,
    payload: &'m [u8],
    client_id: &'m str,
    now_ms: u64,
    parsed: OnceCell<Payload<'m>>,
}

/// The payload's top level.
enum Payload<'m> {
    /// A JSON object (an empty payload counts as `{}`), its fields in document order.
    Object(Vec<(Cow<'m, str>, &'m RawValue)>),
    /// Anything else: not JSON, or JSON that is not an object. AWS IoT calls these binary
    /// payloads; their fields are all Undefined.
    Binary,
}

impl<'m> Message<'m> {
    pub(crate) fn new(topic: &'m str, payload: &'m [u8], client_id: &'m str, now_ms: u64) -> Self {
        Self {
            topic,
            payload,
            client_id,
            now_ms,
            parsed: OnceCell::new(),
        }
    }

    fn payload(&self) -> &Payload<'m> {
        self.parsed.get_or_init(|| {
            if self.payload.is_empty() {
                return Payload::Object(Vec::new());
            }
            match serde_json::from_slice::<RawObject<'m>>(self.payload) {
                Ok(object) => Payload::Object(object.0),
                Err(_) => Payload::Binary,
            }
        })
    }
}

/// A JSON object read one level deep.
struct RawObject<'de>(Vec<(Cow<'de, str>, &'de RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key, value));
                }
                Ok(RawObject(fields))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// An object key, borrowed from the input unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The last field named `key` (JSON parsers keep the last of duplicate keys).
fn lookup<'v>(fields: &[(Cow<'_, str>, &'v RawValue)], key: &str) -> Option<&'v RawValue> {
    fields
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| *value)
}

/// A value in an expression. AWS IoT's `Undefined` is a value of its own: a SELECT item that
/// evaluates to it is left out of the output, and it makes comparisons Undefined too.
enum Val<'a> {
    Undefined,
    Raw(&'a RawValue),
    Str(&'a str),
    Millis(u64),
    Bool(bool),
    Lit(&'a Literal),
}

impl Val<'_> {
    fn is_defined(&self) -> bool {
        !matches!(self, Val::Undefined)
    }

    fn to_json(&self) -> Option<Cow<'_, Value>> {
        match self {
            Val::Undefined => None,
            Val::Raw(raw) => serde_json::from_str(raw.get()).ok().map(Cow::Owned),
            Val::Str(s) => Some(Cow::Owned(Value::String((*s).to_owned()))),
            Val::Millis(ms) => Some(Cow::Owned(Value::from(*ms))),
            Val::Bool(b) => Some(Cow::Owned(Value::Bool(*b))),
            Val::Lit(literal) => Some(Cow::Borrowed(&literal.value)),
        }
    }

    /// The operand of AND, OR and NOT: a boolean, or the string "true" or "false" in any case.
    fn to_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            Val::Str(s) => str_bool(s),
            _ => match self.to_json()?.as_ref() {
                Value::Bool(b) => Some(*b),
                Value::String(s) => str_bool(s),
                _ => None,
            },
        }
    }

    /// Whether a WHERE clause holding this value lets the message through: only `true` does.
    fn is_true(&self) -> bool {
        match self {
            Val::Bool(b) => *b,
            Val::Raw(raw) => raw.get() == "true",
            Val::Lit(literal) => literal.value == Value::Bool(true),
            _ => false,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Val::Undefined => {}
            Val::Raw(raw) => out.extend_from_slice(raw.get().as_bytes()),
            Val::Str(s) => write_json_str(out, s),
            Val::Millis(ms) => write_u64(out, *ms),
            Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Val::Lit(literal) => out.extend_from_slice(literal.json.as_bytes()),
        }
    }
}

fn str_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn eval<'a>(expr: &'a Expr, msg: &'a Message<'_>) -> Val<'a> {
    match expr {
        Expr::Field(path) => field(msg.payload(), path).map_or(Val::Undefined, Val::Raw),
        Expr::Literal(literal) => Val::Lit(literal),
        Expr::Topic(None) => Val::Str(msg.topic),
        Expr::Topic(Some(level)) => msg
            .topic
            .split('/')
            .nth(level - 1)
            .map_or(Val::Undefined, Val::Str),
        Expr::Timestamp => Val::Millis(msg.now_ms),
        Expr::ClientId => Val::Str(msg.client_id),
        Expr::Compare(left, op, right) => compare(*op, &eval(left, msg), &eval(right, msg)),
        Expr::And(left, right) => match (eval(left, msg).to_bool(), eval(right, msg).to_bool()) {
            (Some(l), Some(r)) => Val::Bool(l && r),
            _ => Val::Undefined,
        },
        Expr::Or(left, right) => match (eval(left, msg).to_bool(), eval(right, msg).to_bool()) {
            (Some(l), Some(r)) => Val::Bool(l || r),
            _ => Val::Undefined,
        },
        Expr::Not(inner) => eval(inner, msg)
            .to_bool()
            .map_or(Val::Undefined, |b| Val::Bool(!b)),
    }
}

/// A field path (`a.b.c`) in the payload; `None` (Undefined) when a level is missing or is not
/// an object.
fn field<'a>(payload: &'a Payload<'_>, path: &[String]) -> Option<&'a RawValue> {
    let Payload::Object(fields) = payload else {
        return None;
    };
    let (first, rest) = path.split_first()?;
    let mut value = lookup(fields, first)?;
    for key in rest {
        let object: RawObject<'a> = serde_json::from_str(value.get()).ok()?;
        value = lookup(&object.0, key)?;
    }
    Some(value)
}

/// The comparison operators as the AWS IoT SQL reference defines them: an Undefined operand
/// makes the result Undefined; `=` and `<>` compare values of the same type (numbers as
/// numbers, whatever their representation) and find values of different types unequal; the
/// ordering operators compare numbers and strings that read as numbers, and are Undefined for
/// anything else.
fn compare<'a>(op: CmpOp, left: &Val<'_>, right: &Val<'_>) -> Val<'a> {
    let (Some(l), Some(r)) = (left.to_json(), right.to_json()) else {
        return Val::Undefined;
    };
    let ordering = match op {
        CmpOp::Eq => return Val::Bool(json_eq(&l, &r)),
        CmpOp::Ne => return Val::Bool(!json_eq(&l, &r)),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => match (Decimal::of(&l), Decimal::of(&r)) {
            (Some(l), Some(r)) => l.cmp(r),
            _ => return Val::Undefined,
        },
    };
    let Some(ordering) = ordering else {
        return Val::Bool(false);
    };
    Val::Bool(match op {
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Eq | CmpOp::Ne => false,
    })
}

fn json_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => number_cmp(l, r) == Some(Ordering::Equal),
        _ => left == right,
    }
}

fn number_cmp(left: &Number, right: &Number) -> Option<Ordering> {
    match (Decimal::of_number(left), Decimal::of_number(right)) {
        (Some(l), Some(r)) => l.cmp(r),
        _ => None,
    }
}

/// A number for the ordering operators: integers compare exactly, anything else as `f64`.
#[derive(Clone, Copy)]
enum Decimal {
    Int(i128),
    Float(f64),
}

impl Decimal {
    fn of(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => Self::of_number(n),
            Value::String(s) => {
                let s = s.trim();
                if let Ok(i) = s.parse::<i64>() {
                    return Some(Decimal::Int(i128::from(i)));
                }
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Decimal::Float)
            }
            _ => None,
        }
    }

    fn of_number(n: &Number) -> Option<Self> {
        if let Some(i) = n.as_i64() {
            Some(Decimal::Int(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(Decimal::Int(i128::from(u)))
        } else {
            n.as_f64().map(Decimal::Float)
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            // Precision loss is acceptable: this only compares an integer with a fraction.
            #[allow(clippy::cast_precision_loss)]
            Decimal::Int(i) => i as f64,
            Decimal::Float(f) => f,
        }
    }

    fn cmp(self, other: Self) -> Option<Ordering> {
        match (self, other) {
            (Decimal::Int(l), Decimal::Int(r)) => Some(l.cmp(&r)),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

impl Sql {
    /// Evaluates WHERE, then SELECT (the FROM filter is the caller's business).
    pub(crate) fn evaluate(&self, msg: &Message<'_>) -> Option<Vec<u8>> {
        if let Some(condition) = &self.condition
            && !eval(condition, msg).is_true()
        {
            return None;
        }
        if self.items.is_empty() {
            // `SELECT *` alone: the payload as published, JSON or not.
            return Some(msg.payload.to_vec());
        }
        let values: Vec<Val<'_>> = self.items.iter().map(|i| eval(&i.expr, msg)).collect();
        let mut out = Vec::with_capacity(msg.payload.len() + 48 * self.items.len());
        out.push(b'{');
        if self.star {
            // Adding fields to a payload that is not a JSON object is not something AWS IoT
            // does: the rule fails (see the crate documentation).
            let Payload::Object(fields) = msg.payload() else {
                return None;
            };
            for (key, value) in fields {
                let replaced = self
                    .items
                    .iter()
                    .zip(&values)
                    .any(|(item, v)| v.is_defined() && item.name == *key);
                if replaced {
                    continue;
                }
                if out.len() > 1 {
                    out.push(b',');
                }
                write_json_str(&mut out, key);
                out.push(b':');
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        for (i, (item, value)) in self.items.iter().zip(&values).enumerate() {
            if !value.is_defined() {
                continue;
            }
            let overridden = self.items[i + 1..]
                .iter()
                .zip(&values[i + 1..])
                .any(|(later, v)| v.is_defined() && later.name == item.name);
            if overridden {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(item.key.as_bytes());
            value.write(&mut out);
        }
        out.push(b'}');
        Some(out)
    }
}

/// Where JSON text is written: the output buffer, or a `String` at parse time.
pub(crate) trait JsonSink {
    fn put(&mut self, s: &str);
}

impl JsonSink for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

impl JsonSink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Writes `s` as a JSON string literal.
pub(crate) fn write_json_str(out: &mut impl JsonSink, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put("\"");
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte escaped here is ASCII, so `i` is a char boundary.
        out.put(&s[start..i]);
        if escape.is_empty() {
            let code = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ];
            out.put(std::str::from_utf8(&code).unwrap_or_default());
        } else {
            out.put(escape);
        }
        start = i + 1;
    }
    out.put(&s[start..]);
    out.put("\"");
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + u8::try_from(n % 10).unwrap_or_default();
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
