use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hearth_aws::dynamo::DynamoRegistry;
use hearth_domain::device::{Device, DeviceId, DeviceType, HouseholdId, ProductId, UserId};
use hearth_ports::{EnrollError, Enrollment, contract};

use crate::support::{config, create_table, unique};

fn id<T, E: std::fmt::Display>(parsed: Result<T, E>) -> T {
    parsed.unwrap_or_else(|e| panic!("{e}"))
}

/// The item under `PK`/`SK=META`, as stored.
async fn meta_item(
    client: &Client,
    table: &str,
    pk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(pk.to_owned()))
        .key("SK", AttributeValue::S("META".to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map(|o| o.item().cloned())
        .unwrap_or_else(|e| panic!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
}

fn text(
    item: Option<&std::collections::HashMap<String, AttributeValue>>,
    name: &str,
) -> Option<String> {
    item.and_then(|i| i.get(name))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

fn unclaimed(thing: &str, serial: &str, hash: &str) -> Device {
    Device {
        id: id(DeviceId::parse(thing)),
        product: id(ProductId::parse("lamp-x")),
        household: None,
        name: "Light".to_owned(),
        device_type: DeviceType::Light,
        created_at: 10,
        serial: Some(serial.to_owned()),
        maker: Some(id(UserId::parse("maker-1"))),
        claimed_at: None,
        claim_code_hash: Some(hash.to_owned()),
    }
}

#[tokio::test]
async fn enrollment_passes_the_contract() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let registry = DynamoRegistry::from_client(client, table);
    // moto does not isolate transactions: see `contract::Races`.
    contract::enrollment(
        &registry,
        &registry,
        &unique("ddb"),
        contract::Races::Sequential,
    )
    .await;
}

#[tokio::test]
async fn enrollment_is_stored_in_the_table() {
    // A second adapter on the same table (a new process) sees what the first enrolled.
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let prefix = unique("ddb");
    let first = DynamoRegistry::from_client(client, table.clone());
    contract::enrollment(&first, &first, &prefix, contract::Races::Sequential).await;
    let second = DynamoRegistry::new(&config, table);
    contract::enrollment_after_reopen(&second, &second, &prefix).await;
}

#[tokio::test]
async fn enrollment_items_have_the_documented_layout() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let registry = DynamoRegistry::from_client(client.clone(), table.clone());
    let device = unclaimed("layout-e-1", "SN#1", "hash-1");
    let item = |pk: &'static str| meta_item(&client, &table, pk);

    let registered = registry.register(&device).await;
    assert_eq!(registered, Ok(()));
    let serial = item("SERIAL#lamp-x#SN#1").await;
    assert_eq!(
        text(serial.as_ref(), "thing").as_deref(),
        Some("layout-e-1")
    );
    assert_eq!(text(serial.as_ref(), "entity").as_deref(), Some("serial"));
    let code = item("CLAIM#hash-1").await;
    assert_eq!(text(code.as_ref(), "thing").as_deref(), Some("layout-e-1"));
    assert_eq!(text(code.as_ref(), "entity").as_deref(), Some("claim"));
    let stored = item("DEVICE#layout-e-1").await;
    assert_eq!(
        text(stored.as_ref(), "claim_code_hash").as_deref(),
        Some("hash-1")
    );
    assert_eq!(
        text(stored.as_ref(), "GSI1PK"),
        None,
        "unclaimed: not listed"
    );

    let home = id(HouseholdId::parse("layout-home"));
    let claimed = registry.claim("hash-1", &home, Some("Porch"), 20).await;
    assert_eq!(claimed.map(|d| d.household), Ok(Some(home.clone())));
    assert_eq!(item("CLAIM#hash-1").await, None, "the code is consumed");
    assert!(
        item("SERIAL#lamp-x#SN#1").await.is_some(),
        "the serial stays taken"
    );
    let stored = item("DEVICE#layout-e-1").await;
    assert_eq!(
        text(stored.as_ref(), "GSI1PK").as_deref(),
        Some("HOUSEHOLD#layout-home")
    );
    assert_eq!(
        text(stored.as_ref(), "GSI1SK").as_deref(),
        Some("DEVICE#layout-e-1")
    );
    assert_eq!(
        text(stored.as_ref(), "household").as_deref(),
        Some("layout-home")
    );
    assert_eq!(text(stored.as_ref(), "name").as_deref(), Some("Porch"));

    let home = match HouseholdId::parse("layout-home") {
        Ok(home) => home,
        Err(e) => panic!("{e}"),
    };
    let released = registry.release(&device.id, &home).await;
    assert_eq!(released.as_ref().map(|d| d.household.clone()), Ok(None));
    assert_eq!(released.as_ref().map(|d| d.name.as_str()), Ok("Light"));
    let code = item("CLAIM#hash-1").await;
    assert_eq!(
        text(code.as_ref(), "thing").as_deref(),
        Some("layout-e-1"),
        "the code is back"
    );
    let stored = item("DEVICE#layout-e-1").await;
    for gone in ["GSI1PK", "GSI1SK", "household", "claimed_at"] {
        assert!(
            stored.as_ref().is_some_and(|i| !i.contains_key(gone)),
            "{gone} removed"
        );
    }
    // Releasing it again (a repeated delete) is refused and changes nothing.
    assert_eq!(
        registry.release(&device.id, &home).await.map(|d| d.id),
        Err(EnrollError::UnknownDevice)
    );
    assert_eq!(item("DEVICE#layout-e-1").await, stored);
}

#[tokio::test]
async fn a_refused_registration_writes_nothing() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let registry = DynamoRegistry::from_client(client.clone(), table.clone());
    let first = unclaimed("refused-1", "SN-1", "hash-1");
    assert_eq!(registry.register(&first).await, Ok(()));
    // New thing and new code, but a serial the product already has: no partial writes.
    let twin = unclaimed("refused-2", "SN-1", "hash-2");
    assert_eq!(
        registry.register(&twin).await,
        Err(EnrollError::AlreadyRegistered)
    );
    assert_eq!(meta_item(&client, &table, "DEVICE#refused-2").await, None);
    assert_eq!(meta_item(&client, &table, "CLAIM#hash-2").await, None);
    // A device without serial or code needs only its thing name to be new.
    let bare = Device {
        serial: None,
        claim_code_hash: None,
        ..unclaimed("refused-3", "-", "-")
    };
    assert_eq!(registry.register(&bare).await, Ok(()));
    assert_eq!(
        registry.register(&bare).await,
        Err(EnrollError::AlreadyRegistered)
    );
    let home = id(HouseholdId::parse("refused-home"));
    assert_eq!(
        registry.claim("hash-2", &home, None, 1).await.map(|d| d.id),
        Err(EnrollError::UnknownCode)
    );
}
