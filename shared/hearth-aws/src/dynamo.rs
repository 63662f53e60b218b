//! The DynamoDB adapters, on one table (single-table design; see `ARCHITECTURE.md`).
//!
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | device (registry) | `DEVICE#<thing>` | `META` | `HOUSEHOLD#<household>` / `DEVICE#<thing>` (once claimed) |
//! | device state (projection) | `DEVICE#<thing>` | `STATE` | — |
//! | household | `HOUSEHOLD#<household>` | `META` | — |
//! | membership | `USER#<user>` | `HOUSEHOLD#<household>` | `HOUSEHOLD#<household>` / `MEMBER#<user>` |
//! | serial (uniqueness) | `SERIAL#<product>#<serial>` | `META` | — |
//! | claim code (index) | `CLAIM#<code hash>` | `META` | — |
//!
//! Registry and state are separate items of the same item collection: a state write never
//! touches the registry record and the other way round, and state is stored for a device that is
//! not registered yet.
//!
//! The serial and claim-code items belong to enrollment ([`hearth_ports::Enrollment`]): each
//! names its device (`thing`) and is written in the same transaction as the device item, so a
//! serial is taken at most once per product and a claim code exists exactly while its device
//! is unclaimed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use hearth_domain::shadow::Object;
use hearth_ports::StoreError;

mod registry;
mod state;

pub use registry::DynamoRegistry;
pub use state::DynamoStateStore;

/// Partition key attribute.
pub const PK: &str = "PK";
/// Sort key attribute.
pub const SK: &str = "SK";
/// The GSI that lists devices and members by household.
pub const GSI1: &str = "GSI1";
/// GSI1's partition key attribute.
pub const GSI1PK: &str = "GSI1PK";
/// GSI1's sort key attribute.
pub const GSI1SK: &str = "GSI1SK";

/// An item as the SDK sees it.
type Item = HashMap<String, AttributeValue>;

fn device_pk(thing: &str) -> String {
    format!("DEVICE#{thing}")
}

/// The uniqueness item of a product's serial number. A product id never contains `#`, so
/// `(product, serial)` pairs never collide.
fn serial_pk(product: &str, serial: &str) -> String {
    format!("SERIAL#{product}#{serial}")
}

fn claim_pk(code_hash: &str) -> String {
    format!("CLAIM#{code_hash}")
}

fn household_pk(household: &str) -> String {
    format!("HOUSEHOLD#{household}")
}

fn user_pk(user: &str) -> String {
    format!("USER#{user}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// JSON documents are stored as JSON text: lossless for every JSON value (DynamoDB numbers are
/// not) and opaque to DynamoDB's reserved words and nesting limits.
fn json(value: &Object) -> AttributeValue {
    AttributeValue::S(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()))
}

fn corrupt(item: &Item, what: &str) -> StoreError {
    let key = item
        .get(PK)
        .and_then(|v| v.as_s().ok())
        .map_or("?", String::as_str);
    StoreError::Rejected(format!(
        "stored item {key} has a corrupt `{what}` attribute"
    ))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(corrupt(item, name)),
    }
}

fn get_n(item: &Item, name: &str) -> Result<Option<u64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| corrupt(item, name)),
        Some(_) => Err(corrupt(item, name)),
    }
}

fn get_json(item: &Item, name: &str) -> Result<Option<Object>, StoreError> {
    get_s(item, name)?
        .map(|text| serde_json::from_str(text).map_err(|_| corrupt(item, name)))
        .transpose()
}

fn required<T>(value: Option<T>, item: &Item, name: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| corrupt(item, name))
}

fn parse_id<T, E>(parsed: Result<T, E>, item: &Item, name: &str) -> Result<T, StoreError> {
    parsed.map_err(|_| corrupt(item, name))
}
