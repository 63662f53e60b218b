//! The device state projection on DynamoDB: forward-only writes, one condition per concern.
//!
//! Each [`StateStore::apply`] first tries one `UpdateItem` that writes every concern of the
//! update, conditioned on each concern being newer than the stored one (the conditions encode
//! exactly the rules of [`DeviceState::merge`]). That is the common case: one write per device
//! and batch. If any condition fails, DynamoDB returns the stored item
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`); the pure merge then decides which concerns
//! still advance, and a second write stores exactly those, conditioned on the item's revision
//! counter (`rev`) being unchanged. A stale concern therefore never blocks another, and a
//! concurrent writer makes the loop read again rather than lose an update.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use hearth_domain::device::{DeviceId, ProductId};
use hearth_domain::projection::{
    Changes, Connectivity, DeviceState, PresenceKind, ShadowProjection, Telemetry,
};
use hearth_ports::{StateStore, StoreError};

use super::{
    Item, PK, SK, corrupt, device_pk, get_json, get_n, get_s, json, n, parse_id, required, s,
};
use crate::classify;

const STATE_SK: &str = "STATE";
/// Attempts of the read-merge-write loop before giving up (transient: the message is retried).
const MAX_ATTEMPTS: usize = 5;
/// DynamoDB errors that mean the write itself is invalid.
const PERMANENT: &[&str] = &[
    "ValidationException",
    "ItemCollectionSizeLimitExceededException",
];

/// The [`StateStore`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    /// A store on `table`, with a client built from `config`.
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), table)
    }

    /// A store on `table` with an existing client.
    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn write(&self, thing: &DeviceId, expr: Expr) -> Result<Written, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(device_pk(thing.as_str())))
            .key(SK, s(STATE_SK))
            .update_expression(expr.update_expression())
            .condition_expression(expr.conditions.join(" AND "))
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Done),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok(
                    Written::Conflict(failed.item().cloned().unwrap_or_default()),
                ),
                _ => Err(classify(&error, PERMANENT)),
            },
        }
    }
}

enum Written {
    Done,
    /// A condition failed; the item as it was.
    Conflict(Item),
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn apply(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, StoreError> {
        // Normalise (e.g. drop a document older than the update's own delete).
        let mut normalized = DeviceState::default();
        let all = normalized.merge(update);
        if !all.any() {
            return Ok(Changes::default());
        }
        let mut stored = match self.write(thing, fast_path(thing, &normalized)).await? {
            Written::Done => return Ok(all),
            Written::Conflict(item) => item,
        };
        for _ in 0..MAX_ATTEMPTS {
            let (mut state, rev) = decode(&stored)?;
            let changes = state.merge(&normalized);
            if !changes.any() {
                return Ok(changes);
            }
            match self
                .write(thing, exact(thing, &state, changes, rev))
                .await?
            {
                Written::Done => return Ok(changes),
                Written::Conflict(item) => stored = item,
            }
        }
        Err(StoreError::Transient(format!(
            "state of {thing} changed concurrently {MAX_ATTEMPTS} times"
        )))
    }

    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(device_pk(thing.as_str())))
            .key(SK, s(STATE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&e, PERMANENT))?;
        output
            .item()
            .map(|item| decode(item).map(|(state, _)| state))
            .transpose()
    }
}

/// One `UpdateItem`: SET and REMOVE clauses, conditions, and the placeholders they use.
#[derive(Debug, Default)]
struct Expr {
    sets: Vec<String>,
    removes: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// `#attr`, registered.
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// `:attr`, registered with `value`.
    fn value(&mut self, attr: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{attr}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn set(&mut self, attr: &str, value: AttributeValue) {
        let name = self.name(attr);
        let value = self.value(attr, value);
        self.sets.push(format!("{name} = {value}"));
    }

    fn set_or_remove(&mut self, attr: &str, value: Option<AttributeValue>) {
        match value {
            Some(value) => self.set(attr, value),
            None => {
                let name = self.name(attr);
                self.removes.push(name);
            }
        }
    }

    /// `attribute_not_exists(attr) OR attr < :value` (the value registered under `attr`).
    fn newer_than_stored(&mut self, attr: &str, op: &str, value_of: &str) -> String {
        let name = self.name(attr);
        format!("(attribute_not_exists({name}) OR {name} {op} :{value_of})")
    }

    fn update_expression(&self) -> String {
        let mut out = format!("SET {}", self.sets.join(", "));
        if !self.removes.is_empty() {
            out.push_str(" REMOVE ");
            out.push_str(&self.removes.join(", "));
        }
        out
    }
}

/// The common case: write every concern of `update`, each conditioned on being newer.
fn fast_path(thing: &DeviceId, update: &DeviceState) -> Expr {
    let mut expr = Expr::default();
    header(&mut expr, thing);
    let rev = expr.name("rev");
    expr.sets
        .push(format!("{rev} = if_not_exists({rev}, :zero) + :one"));
    expr.values.insert(":zero".to_owned(), n(0));
    expr.values.insert(":one".to_owned(), n(1));

    if let Some(deleted_at) = update.shadow_deleted_at {
        write_shadow(&mut expr, update);
        // Applies wholesale only if the stored delete is older and the stored document is from
        // before this delete (so it is cleared, as the merge would).
        let newer = expr.newer_than_stored("shadow_deleted_at", "<", "shadow_deleted_at");
        let cleared = expr.newer_than_stored("shadow_received_at", "<=", "deleted_at_bound");
        expr.value("deleted_at_bound", n(deleted_at));
        expr.conditions.push(newer);
        expr.conditions.push(cleared);
    } else if let Some(doc) = &update.shadow {
        write_shadow(&mut expr, update);
        let after_delete = expr.newer_than_stored("shadow_deleted_at", "<", "shadow_received_at");
        expr.conditions.push(after_delete);
        let version_rule = if doc.version == 1 {
            // Version 1 starts a new epoch: newer than any document received before it.
            expr.newer_than_stored("shadow_received_at", "<", "shadow_received_at")
        } else {
            expr.newer_than_stored("shadow_version", "<", "shadow_version")
        };
        expr.conditions.push(version_rule);
    }
    if update.connectivity.is_some() {
        write_connectivity(&mut expr, update);
        let rule = expr.newer_than_stored("conn_order", "<", "conn_order");
        expr.conditions.push(rule);
    }
    if update.last_seen.is_some() {
        write_last_seen(&mut expr, update);
        let rule = expr.newer_than_stored("last_seen", "<", "last_seen");
        expr.conditions.push(rule);
    }
    if update.telemetry.is_some() {
        write_telemetry(&mut expr, update);
        let rule = expr.newer_than_stored("telemetry_order", "<", "telemetry_order");
        expr.conditions.push(rule);
    }
    expr
}

/// After a conflict: write the concerns the merge changed, as merged, if the item is still at
/// revision `rev`.
fn exact(thing: &DeviceId, merged: &DeviceState, changes: Changes, rev: Option<u64>) -> Expr {
    let mut expr = Expr::default();
    header(&mut expr, thing);
    let name = expr.name("rev");
    match rev {
        Some(rev) => {
            expr.value("expected_rev", n(rev));
            expr.conditions.push(format!("{name} = :expected_rev"));
        }
        None => expr
            .conditions
            .push(format!("attribute_not_exists({name})")),
    }
    expr.set("rev", n(rev.unwrap_or(0) + 1));
    if changes.shadow {
        write_shadow(&mut expr, merged);
    }
    if changes.connectivity {
        write_connectivity(&mut expr, merged);
    }
    if changes.last_seen {
        write_last_seen(&mut expr, merged);
    }
    if changes.telemetry {
        write_telemetry(&mut expr, merged);
    }
    expr
}

fn header(expr: &mut Expr, thing: &DeviceId) {
    expr.set("entity", s("state"));
    expr.set("thing", s(thing.as_str()));
}

fn write_shadow(expr: &mut Expr, state: &DeviceState) {
    if let Some(deleted_at) = state.shadow_deleted_at {
        expr.set("shadow_deleted_at", n(deleted_at));
    }
    let doc = state.shadow.as_ref();
    expr.set_or_remove("shadow_version", doc.map(|d| n(d.version)));
    expr.set_or_remove("shadow_received_at", doc.map(|d| n(d.received_at)));
    expr.set_or_remove("shadow_timestamp", doc.map(|d| n(d.timestamp)));
    expr.set_or_remove(
        "shadow_client_token",
        doc.and_then(|d| d.client_token.clone()).map(s),
    );
    expr.set_or_remove("desired", doc.and_then(|d| d.desired.as_ref()).map(json));
    expr.set_or_remove("reported", doc.and_then(|d| d.reported.as_ref()).map(json));
}

/// Presence order as one sortable string: version number, timestamp, connect before disconnect.
fn conn_order(c: &Connectivity) -> String {
    let rank = match c.event {
        PresenceKind::Connected => 0,
        PresenceKind::Disconnected => 1,
    };
    format!("{:020}.{:020}.{rank}", c.version_number, c.timestamp)
}

fn write_connectivity(expr: &mut Expr, state: &DeviceState) {
    let Some(c) = &state.connectivity else { return };
    expr.set("conn_order", s(conn_order(c)));
    expr.set("connected", AttributeValue::Bool(c.connected));
    let event = match c.event {
        PresenceKind::Connected => "connected",
        PresenceKind::Disconnected => "disconnected",
    };
    expr.set("conn_event", s(event));
    expr.set("conn_version", n(c.version_number));
    expr.set("conn_timestamp", n(c.timestamp));
    expr.set_or_remove("disconnect_reason", c.disconnect_reason.clone().map(s));
}

fn write_last_seen(expr: &mut Expr, state: &DeviceState) {
    if let Some(seen) = state.last_seen {
        expr.set("last_seen", n(seen));
    }
}

/// Telemetry order as one sortable string: receive time, then the payload's `seq`.
fn telemetry_order(t: &Telemetry) -> String {
    let (received_at, seq) = t.order();
    format!("{received_at:020}.{seq:020}")
}

fn write_telemetry(expr: &mut Expr, state: &DeviceState) {
    let Some(t) = &state.telemetry else { return };
    expr.set("telemetry_order", s(telemetry_order(t)));
    expr.set("telemetry_received_at", n(t.received_at));
    expr.set("telemetry_product", s(t.product.as_str()));
    expr.set("telemetry", json(&t.payload));
}

/// A stored state item and its revision.
fn decode(item: &Item) -> Result<(DeviceState, Option<u64>), StoreError> {
    let shadow = match get_n(item, "shadow_version")? {
        None => None,
        Some(version) => Some(ShadowProjection {
            version,
            received_at: required(
                get_n(item, "shadow_received_at")?,
                item,
                "shadow_received_at",
            )?,
            timestamp: get_n(item, "shadow_timestamp")?.unwrap_or(0),
            desired: get_json(item, "desired")?,
            reported: get_json(item, "reported")?,
            client_token: get_s(item, "shadow_client_token")?.map(str::to_owned),
        }),
    };
    let connectivity = match get_s(item, "conn_order")? {
        None => None,
        Some(_) => Some(Connectivity {
            connected: match item.get("connected") {
                Some(AttributeValue::Bool(b)) => *b,
                _ => return Err(corrupt(item, "connected")),
            },
            event: match get_s(item, "conn_event")? {
                Some("connected") => PresenceKind::Connected,
                Some("disconnected") => PresenceKind::Disconnected,
                _ => return Err(corrupt(item, "conn_event")),
            },
            version_number: required(get_n(item, "conn_version")?, item, "conn_version")?,
            timestamp: required(get_n(item, "conn_timestamp")?, item, "conn_timestamp")?,
            disconnect_reason: get_s(item, "disconnect_reason")?.map(str::to_owned),
        }),
    };
    let telemetry = match get_n(item, "telemetry_received_at")? {
        None => None,
        Some(received_at) => Some(Telemetry {
            received_at,
            product: parse_id(
                ProductId::parse(required(
                    get_s(item, "telemetry_product")?,
                    item,
                    "telemetry_product",
                )?),
                item,
                "telemetry_product",
            )?,
            payload: required(get_json(item, "telemetry")?, item, "telemetry")?,
        }),
    };
    let state = DeviceState {
        shadow,
        shadow_deleted_at: get_n(item, "shadow_deleted_at")?,
        connectivity,
        last_seen: get_n(item, "last_seen")?,
        telemetry,
    };
    Ok((state, get_n(item, "rev")?))
}
