//! Registry data on DynamoDB: devices, households, memberships.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, Role, UserId,
};
use hearth_ports::{DeviceRegistry, Page, StoreError};

use super::{
    GSI1, GSI1PK, GSI1SK, Item, PK, SK, corrupt, device_pk, get_n, get_s, household_pk, n,
    parse_id, required, s, user_pk,
};
use crate::classify;

const META_SK: &str = "META";
const PERMANENT: &[&str] = &["ValidationException"];

/// The [`DeviceRegistry`] on a DynamoDB table.
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

    /// Every membership item under `pk` whose sort key starts with `prefix`, on the table or
    /// on GSI1.
    async fn query_memberships(
        &self,
        index: Option<&str>,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Membership>, StoreError> {
        let (pk_name, sk_name) = match index {
            Some(_) => (GSI1PK, GSI1SK),
            None => (PK, SK),
        };
        let mut memberships = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":pk", s(pk.as_str()))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(&e, PERMANENT))?;
            for item in output.items() {
                memberships.push(decode_membership(item)?);
            }
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(memberships),
            }
        }
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
}

fn device_type_name(t: DeviceType) -> &'static str {
    match t {
        DeviceType::Light => "light",
        DeviceType::Plug => "plug",
        DeviceType::Thermostat => "thermostat",
        DeviceType::Lock => "lock",
        DeviceType::Camera => "camera",
        DeviceType::Sensor => "sensor",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Member => "member",
    }
}

fn device_item(device: &Device) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), s(device_pk(device.id.as_str())));
    item.insert(SK.to_owned(), s(META_SK));
    item.insert("entity".to_owned(), s("device"));
    item.insert("thing".to_owned(), s(device.id.as_str()));
    item.insert("product".to_owned(), s(device.product.as_str()));
    item.insert("name".to_owned(), s(device.name.as_str()));
    item.insert(
        "device_type".to_owned(),
        s(device_type_name(device.device_type)),
    );
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
    let device_type = match text("device_type")? {
        "light" => DeviceType::Light,
        "plug" => DeviceType::Plug,
        "thermostat" => DeviceType::Thermostat,
        "lock" => DeviceType::Lock,
        "camera" => DeviceType::Camera,
        "sensor" => DeviceType::Sensor,
        _ => return Err(corrupt(item, "device_type")),
    };
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

fn decode_membership(item: &Item) -> Result<Membership, StoreError> {
    let text = |name: &str| required(get_s(item, name)?, item, name);
    Ok(Membership {
        user: parse_id(UserId::parse(text("user")?), item, "user")?,
        household: parse_id(HouseholdId::parse(text("household")?), item, "household")?,
        role: match text("role")? {
            "owner" => Role::Owner,
            "member" => Role::Member,
            _ => return Err(corrupt(item, "role")),
        },
    })
}

#[async_trait]
impl DeviceRegistry for DynamoRegistry {
    async fn put_device(&self, device: &Device) -> Result<(), StoreError> {
        self.put(device_item(device)).await
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.get(device_pk(id.as_str()), META_SK)
            .await?
            .map(|item| decode_device(&item))
            .transpose()
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
        item.insert("role".to_owned(), s(role_name(membership.role)));
        self.put(item).await
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
