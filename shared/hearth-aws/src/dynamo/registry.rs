//! Registry data on DynamoDB: devices, households, memberships, and enrollment.
//!
//! Enrollment keeps two index items beside the devices (see the table in [`super`]): a serial
//! item per `(product, serial)` and a claim-code item per unclaimed device, both naming the
//! device. Every enrollment step is one `TransactWriteItems` whose conditions encode the rules,
//! so concurrent calls can never both win: the losers either fail a condition or are cancelled
//! with a `TransactionConflict`, in which case the step starts again from a fresh read.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use hearth_domain::device::InvitationId;
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, UserId,
};
use hearth_domain::sharing::{Invitation, InvitationStatus};
use hearth_ports::{
    DeviceRegistry, EnrollError, Enrollment, InvitationError, Invitations, Page, StoreError,
};

use super::{
    GSI1, GSI1PK, GSI1SK, Item, PK, SK, claim_pk, corrupt, device_pk, get_n, get_s, household_pk,
    n, parse_id, required, s, serial_pk, user_pk,
};
use crate::classify;

mod invitations;

const META_SK: &str = "META";
const PERMANENT: &[&str] = &["ValidationException"];
/// Attempts of an enrollment step whose transaction keeps being cancelled by concurrent
/// transactions on the same items, before it gives up with a transient error.
const MAX_ATTEMPTS: u32 = 6;
/// The first back-off after a transaction conflict; it doubles with each attempt (with jitter).
const BASE_BACKOFF: Duration = Duration::from_millis(20);

/// The [`DeviceRegistry`] and [`Enrollment`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

impl DynamoRegistry {
    /// A registry on `table`, with a client built from `config`.
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), table)
    }

    /// A registry on `table` with an existing client.
    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify(&e, PERMANENT))?;
        Ok(())
    }

    /// Every item under `pk` whose sort key starts with `prefix`, following pagination: on the
    /// table with a consistent read (read-your-writes, e.g. a membership just created on a first
    /// claim), or on `index` — `(name, partition key, sort key)` — which only offers eventually
    /// consistent reads.
    async fn query_all(
        &self,
        index: Option<(&str, &str, &str)>,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk_name, sk_name) = index.map_or((PK, SK), |(_, pk, sk)| (pk, sk));
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(|(name, _, _)| name.to_owned()))
                .consistent_read(index.is_none())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":pk", s(pk.as_str()))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(&e, PERMANENT))?;
            items.extend_from_slice(output.items());
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(items),
            }
        }
    }

    /// Every membership item under `pk` whose sort key starts with `prefix`, on the table or
    /// on GSI1.
    async fn query_memberships(
        &self,
        index: Option<&str>,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Membership>, StoreError> {
        self.query_all(index.map(|name| (name, GSI1PK, GSI1SK)), pk, prefix)
            .await?
            .iter()
            .map(decode_membership)
            .collect()
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&e, PERMANENT))?;
        Ok(output.item().cloned())
    }

    /// Applies `expression` (with its attribute `names` and `values`) to the device item only
    /// while the device is in `household`: the updated device, or `None`.
    async fn update_device_in(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        expression: &str,
        names: &[(&str, &str)],
        values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<Option<Device>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(device_pk(id.as_str())))
            .key(SK, s(META_SK))
            .update_expression(expression)
            .condition_expression("attribute_exists(PK) AND household = :household")
            .expression_attribute_values(":household", s(household.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        for (name, attribute) in names {
            update = update.expression_attribute_names(*name, *attribute);
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        match update.send().await {
            Ok(output) => output.attributes().map(decode_device).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(&e, PERMANENT)),
        }
    }

    async fn read_device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.get(device_pk(id.as_str()), META_SK)
            .await?
            .map(|item| decode_device(&item))
            .transpose()
    }

    /// Runs one transaction; a cancellation is decoded into what the caller can act on.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Transacted, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(error) = result else {
            return Ok(Transacted::Done);
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        else {
            return Err(classify(&error, PERMANENT));
        };
        let codes = cancelled
            .cancellation_reasons()
            .iter()
            .map(|reason| reason.code());
        match cancellation(codes) {
            Cancelled::ConditionFailed => Ok(Transacted::ConditionFailed),
            Cancelled::Conflict => Ok(Transacted::Conflict),
            Cancelled::Rejected => Err(StoreError::Rejected(
                DisplayErrorContext(&error).to_string(),
            )),
            Cancelled::Transient => Err(StoreError::Transient(
                DisplayErrorContext(&error).to_string(),
            )),
        }
    }

    /// Waits before attempt `attempt + 1` of a step cancelled by a concurrent transaction:
    /// exponential back-off with full jitter, so that racing callers spread out.
    async fn backoff(&self, attempt: u32) {
        let ceiling = BASE_BACKOFF.saturating_mul(1 << attempt.min(8));
        // A fresh `RandomState` is randomly keyed: good enough for jitter, no extra dependency.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let ceiling_ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let delay = Duration::from_millis(random % ceiling_ms);
        if let Some(sleep) = self.client.config().sleep_impl() {
            sleep.sleep(delay).await;
        }
    }
}

/// How a `TransactWriteItems` call ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transacted {
    /// Committed.
    Done,
    /// A condition did not hold: nothing was written.
    ConditionFailed,
    /// Cancelled because another transaction was using one of the items: nothing was written;
    /// read again and retry.
    Conflict,
}

/// Why DynamoDB cancelled a transaction, from its cancellation reason codes (one per item,
/// `None` for the items that were fine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancelled {
    /// `ConditionalCheckFailed` on some item: decisive, whatever else happened.
    ConditionFailed,
    /// An item can never be written as asked (`ValidationError`, e.g. too large;
    /// `ItemCollectionSizeLimitExceeded`).
    Rejected,
    /// `TransactionConflict`: a concurrent transaction held an item.
    Conflict,
    /// Throttling, capacity, or a reason this code does not know: retry later.
    Transient,
}

fn cancellation<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> Cancelled {
    let (mut rejected, mut conflict) = (false, false);
    for code in codes {
        match code {
            Some("ConditionalCheckFailed") => return Cancelled::ConditionFailed,
            Some("ValidationError" | "ItemCollectionSizeLimitExceeded") => rejected = true,
            Some("TransactionConflict") => conflict = true,
            _ => {}
        }
    }
    if rejected {
        Cancelled::Rejected
    } else if conflict {
        Cancelled::Conflict
    } else {
        Cancelled::Transient
    }
}

fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Rejected(format!("invalid transaction item: {e}")))
}

/// A transaction step writing `item` as it is.
fn put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build();
    Ok(TransactWriteItem::builder().put(built(put)?).build())
}

/// A conditional `Put` of an item whose key must not exist yet.
fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build();
    Ok(TransactWriteItem::builder().put(built(put)?).build())
}

/// An enrollment index item (serial or claim code) naming its device.
fn index_item(pk: String, entity: &str, thing: &DeviceId) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), s(pk));
    item.insert(SK.to_owned(), s(META_SK));
    item.insert("entity".to_owned(), s(entity));
    item.insert("thing".to_owned(), s(thing.as_str()));
    item
}

fn claim_item(code_hash: &str, thing: &DeviceId) -> Item {
    index_item(claim_pk(code_hash), "claim", thing)
}

fn gave_up(step: &str, thing: &str) -> EnrollError {
    EnrollError::Store(StoreError::Transient(format!(
        "{step} of {thing}: cancelled by concurrent transactions {MAX_ATTEMPTS} times"
    )))
}

fn device_item(device: &Device) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), s(device_pk(device.id.as_str())));
    item.insert(SK.to_owned(), s(META_SK));
    item.insert("entity".to_owned(), s("device"));
    item.insert("thing".to_owned(), s(device.id.as_str()));
    item.insert("product".to_owned(), s(device.product.as_str()));
    item.insert("name".to_owned(), s(device.name.as_str()));
    item.insert("device_type".to_owned(), s(device.device_type.as_str()));
    item.insert("created_at".to_owned(), n(device.created_at));
    if let Some(serial) = &device.serial {
        item.insert("serial".to_owned(), s(serial.as_str()));
    }
    if let Some(maker) = &device.maker {
        item.insert("maker".to_owned(), s(maker.as_str()));
    }
    if let Some(claimed_at) = device.claimed_at {
        item.insert("claimed_at".to_owned(), n(claimed_at));
    }
    if let Some(hash) = &device.claim_code_hash {
        item.insert("claim_code_hash".to_owned(), s(hash.as_str()));
    }
    if let Some(household) = &device.household {
        item.insert("household".to_owned(), s(household.as_str()));
        item.insert(GSI1PK.to_owned(), s(household_pk(household.as_str())));
        item.insert(GSI1SK.to_owned(), s(device_pk(device.id.as_str())));
    }
    item
}

fn decode_device(item: &Item) -> Result<Device, StoreError> {
    let text = |name: &str| required(get_s(item, name)?, item, name);
    let device_type: DeviceType = text("device_type")?
        .parse()
        .map_err(|_| corrupt(item, "device_type"))?;
    Ok(Device {
        id: parse_id(DeviceId::parse(text("thing")?), item, "thing")?,
        product: parse_id(ProductId::parse(text("product")?), item, "product")?,
        household: get_s(item, "household")?
            .map(|h| parse_id(HouseholdId::parse(h), item, "household"))
            .transpose()?,
        name: text("name")?.to_owned(),
        device_type,
        created_at: required(get_n(item, "created_at")?, item, "created_at")?,
        serial: get_s(item, "serial")?.map(str::to_owned),
        maker: get_s(item, "maker")?
            .map(|m| parse_id(UserId::parse(m), item, "maker"))
            .transpose()?,
        claimed_at: get_n(item, "claimed_at")?,
        claim_code_hash: get_s(item, "claim_code_hash")?.map(str::to_owned),
    })
}

fn membership_item(membership: &Membership) -> Item {
    let user = membership.user.as_str();
    let household = membership.household.as_str();
    let mut item = Item::new();
    item.insert(PK.to_owned(), s(user_pk(user)));
    item.insert(SK.to_owned(), s(household_pk(household)));
    item.insert(GSI1PK.to_owned(), s(household_pk(household)));
    item.insert(GSI1SK.to_owned(), s(format!("MEMBER#{user}")));
    item.insert("entity".to_owned(), s("membership"));
    item.insert("user".to_owned(), s(user));
    item.insert("household".to_owned(), s(household));
    item.insert("role".to_owned(), s(membership.role.as_str()));
    item
}

fn decode_membership(item: &Item) -> Result<Membership, StoreError> {
    let text = |name: &str| required(get_s(item, name)?, item, name);
    Ok(Membership {
        user: parse_id(UserId::parse(text("user")?), item, "user")?,
        household: parse_id(HouseholdId::parse(text("household")?), item, "household")?,
        role: text("role")?.parse().map_err(|_| corrupt(item, "role"))?,
    })
}

#[async_trait]
impl DeviceRegistry for DynamoRegistry {
    async fn put_device(&self, device: &Device) -> Result<(), StoreError> {
        self.put(device_item(device)).await
    }

    async fn rename_device(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        name: &str,
    ) -> Result<Option<Device>, StoreError> {
        self.update_device_in(
            id,
            household,
            "SET #name = :name",
            &[("#name", "name")],
            &[(":name", s(name))],
        )
        .await
    }

    async fn move_device(
        &self,
        id: &DeviceId,
        from: &HouseholdId,
        to: &HouseholdId,
    ) -> Result<Option<Device>, StoreError> {
        self.update_device_in(
            id,
            from,
            "SET household = :to, #gsi1pk = :gsi1pk",
            &[("#gsi1pk", GSI1PK)],
            &[
                (":to", s(to.as_str())),
                (":gsi1pk", s(household_pk(to.as_str()))),
            ],
        )
        .await
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.read_device(id).await
    }

    async fn household_devices(
        &self,
        household: &HouseholdId,
        limit: u16,
        after: Option<&str>,
    ) -> Result<Page<Device>, StoreError> {
        let limit = usize::from(limit.max(1));
        // Resume after the cursor's device: a GSI start key names the table and index keys.
        let start = after.map(|after| {
            let mut key = Item::new();
            key.insert(PK.to_owned(), s(device_pk(after)));
            key.insert(SK.to_owned(), s(META_SK));
            key.insert(GSI1PK.to_owned(), s(household_pk(household.as_str())));
            key.insert(GSI1SK.to_owned(), s(device_pk(after)));
            key
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_names("#sk", GSI1SK)
            .expression_attribute_values(":pk", s(household_pk(household.as_str())))
            .expression_attribute_values(":prefix", s("DEVICE#"))
            .set_exclusive_start_key(start)
            // One more than asked, to know whether another page follows.
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify(&e, PERMANENT))?;
        let mut items = output
            .items()
            .iter()
            .map(decode_device)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn put_household(&self, household: &Household) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.to_owned(), s(household_pk(household.id.as_str())));
        item.insert(SK.to_owned(), s(META_SK));
        item.insert("entity".to_owned(), s("household"));
        item.insert("household".to_owned(), s(household.id.as_str()));
        item.insert("name".to_owned(), s(household.name.as_str()));
        self.put(item).await
    }

    async fn get_household(&self, id: &HouseholdId) -> Result<Option<Household>, StoreError> {
        let Some(item) = self.get(household_pk(id.as_str()), META_SK).await? else {
            return Ok(None);
        };
        let name = required(get_s(&item, "name")?, &item, "name")?;
        Ok(Some(Household {
            id: id.clone(),
            name: name.to_owned(),
        }))
    }

    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError> {
        self.put(membership_item(membership)).await
    }

    async fn remove_membership(
        &self,
        user: &UserId,
        household: &HouseholdId,
    ) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(user_pk(user.as_str())))
            .key(SK, s(household_pk(household.as_str())))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify(&e, PERMANENT))?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        self.query_memberships(None, user_pk(user.as_str()), "HOUSEHOLD#")
            .await
    }

    async fn household_members(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Membership>, StoreError> {
        self.query_memberships(Some(GSI1), household_pk(household.as_str()), "MEMBER#")
            .await
    }
}

#[async_trait]
impl Enrollment for DynamoRegistry {
    /// One transaction puts the device, its serial item and its claim-code item, each only if
    /// its key is new; any of them taken cancels all (`AlreadyRegistered`). A claim code whose
    /// hash another device already holds is refused the same way.
    async fn register(&self, device: &Device) -> Result<(), EnrollError> {
        let thing = &device.id;
        let mut items = vec![put_new(&self.table, device_item(device))?];
        if let Some(serial) = &device.serial {
            let pk = serial_pk(device.product.as_str(), serial);
            items.push(put_new(&self.table, index_item(pk, "serial", thing))?);
        }
        if let Some(hash) = &device.claim_code_hash {
            items.push(put_new(&self.table, claim_item(hash, thing))?);
        }
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Transacted::Done => return Ok(()),
                Transacted::ConditionFailed => return Err(EnrollError::AlreadyRegistered),
                Transacted::Conflict => self.backoff(attempt).await,
            }
        }
        Err(gave_up("register", thing.as_str()))
    }

    /// Reads the claim-code item and the device it names (both strongly consistent), makes the
    /// claim ([`Device::claim`]), then one transaction deletes the code item, still naming that
    /// device, and writes the claimed device, if it is still unclaimed and carries the code. A
    /// failed condition is `UnknownCode`: someone else claimed it first.
    async fn claim(
        &self,
        code_hash: &str,
        household: &HouseholdId,
        name: Option<&str>,
        now: u64,
    ) -> Result<Device, EnrollError> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(code) = self.get(claim_pk(code_hash), META_SK).await? else {
                return Err(EnrollError::UnknownCode);
            };
            let thing = required(get_s(&code, "thing")?, &code, "thing")?;
            let thing = parse_id(DeviceId::parse(thing), &code, "thing")?;
            let claimed = self
                .read_device(&thing)
                .await?
                .ok_or(EnrollError::UnknownCode)?
                .claim(code_hash, household, name, now)
                .map_err(|_| EnrollError::UnknownCode)?;
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(PK, s(claim_pk(code_hash)))
                .key(SK, s(META_SK))
                .condition_expression("attribute_exists(#pk) AND #thing = :thing")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#thing", "thing")
                .expression_attribute_values(":thing", s(thing.as_str()))
                .build();
            let write = Put::builder()
                .table_name(&self.table)
                .set_item(Some(device_item(&claimed)))
                .condition_expression(
                    "attribute_exists(#pk) AND attribute_not_exists(#household) \
                     AND #hash = :hash",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#household", "household")
                .expression_attribute_names("#hash", "claim_code_hash")
                .expression_attribute_values(":hash", s(code_hash))
                .build();
            let items = vec![
                TransactWriteItem::builder().delete(built(delete)?).build(),
                TransactWriteItem::builder().put(built(write)?).build(),
            ];
            match self.transact(items).await? {
                Transacted::Done => return Ok(claimed),
                Transacted::ConditionFailed => return Err(EnrollError::UnknownCode),
                Transacted::Conflict => self.backoff(attempt).await,
            }
        }
        Err(gave_up("claim", "a claim code"))
    }

    /// Reads the device (strongly consistent), makes the release ([`Device::release`]), then
    /// one transaction writes the released device, if it is still in the household read, and
    /// puts its claim-code item back. A device that changed in between is read again.
    async fn release(&self, id: &DeviceId, household: &HouseholdId) -> Result<Device, EnrollError> {
        for attempt in 0..MAX_ATTEMPTS {
            let released = self
                .read_device(id)
                .await?
                .ok_or(EnrollError::UnknownDevice)?
                .release(household)
                .map_err(|_| EnrollError::UnknownDevice)?;
            let write = Put::builder()
                .table_name(&self.table)
                .set_item(Some(device_item(&released)))
                .condition_expression("attribute_exists(#pk) AND #household = :household")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#household", "household")
                .expression_attribute_values(":household", s(household.as_str()))
                .build();
            let mut items = vec![TransactWriteItem::builder().put(built(write)?).build()];
            if let Some(hash) = &released.claim_code_hash {
                items.push(put(&self.table, claim_item(hash, id))?);
            }
            match self.transact(items).await? {
                Transacted::Done => return Ok(released),
                // Released or re-claimed meanwhile: look again (then it is not in `household`).
                Transacted::ConditionFailed => {}
                Transacted::Conflict => self.backoff(attempt).await,
            }
        }
        Err(gave_up("release", id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Cancelled, cancellation};

    #[test]
    fn a_failed_condition_decides_whatever_else_happened() {
        let codes = [
            None,
            Some("TransactionConflict"),
            Some("ConditionalCheckFailed"),
        ];
        assert_eq!(cancellation(codes), Cancelled::ConditionFailed);
        assert_eq!(
            cancellation([Some("None"), Some("ConditionalCheckFailed")]),
            Cancelled::ConditionFailed
        );
    }

    #[test]
    fn a_conflict_is_retried_and_invalid_items_are_rejected() {
        assert_eq!(
            cancellation([Some("None"), Some("TransactionConflict")]),
            Cancelled::Conflict
        );
        assert_eq!(
            cancellation([Some("TransactionConflict"), Some("ValidationError")]),
            Cancelled::Rejected
        );
        assert_eq!(
            cancellation([Some("ItemCollectionSizeLimitExceeded")]),
            Cancelled::Rejected
        );
    }

    #[test]
    fn throttling_and_unknown_reasons_are_transient() {
        assert_eq!(
            cancellation([Some("ThrottlingError"), Some("None")]),
            Cancelled::Transient
        );
        assert_eq!(
            cancellation([Some("ProvisionedThroughputExceeded")]),
            Cancelled::Transient
        );
        assert_eq!(cancellation([]), Cancelled::Transient);
    }
}
