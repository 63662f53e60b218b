use aws_sdk_dynamodb::types::AttributeValue;
use hearth_aws::dynamo::{DynamoRegistry, DynamoStateStore};
use hearth_domain::device::DeviceId;
use hearth_domain::projection::{DeviceState, ShadowProjection};
use hearth_ports::{StateStore, StoreError, contract};
use serde_json::json;

use crate::support::{config, create_table};

#[tokio::test]
async fn state_store_passes_the_contract() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let store = DynamoStateStore::from_client(client, table);
    contract::state_store(&store, "ddb").await;
}

#[tokio::test]
async fn registry_passes_the_contract() {
    let config = config().await;
    let (_, table) = create_table(&config).await;
    let registry = DynamoRegistry::new(&config, table);
    contract::registry(&registry, "ddb").await;
}

#[tokio::test]
async fn invitations_pass_the_contract() {
    let config = config().await;
    let (_, table) = create_table(&config).await;
    let registry = DynamoRegistry::new(&config, table);
    // moto does not isolate transactions: see `contract::Races`.
    contract::invitations(&registry, &registry, "ddb", contract::Races::Sequential).await;
}

#[tokio::test]
async fn registry_and_state_share_the_table_without_overwriting() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let registry = DynamoRegistry::from_client(client.clone(), table.clone());
    let store = DynamoStateStore::from_client(client, table);
    contract::registry_and_state_are_separate(&registry, &store, "ddb").await;
}

#[tokio::test]
async fn state_item_has_the_documented_layout() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let store = DynamoStateStore::from_client(client.clone(), table.clone());
    let thing = DeviceId::parse("layout-1").unwrap_or_else(|e| panic!("{e}"));
    let update = DeviceState {
        shadow: Some(ShadowProjection {
            version: 3,
            received_at: 1_700_000_000_123,
            timestamp: 1_700_000_000,
            desired: json!({"power": "on"}).as_object().cloned(),
            reported: json!({"power": "off", "big": 1e300}).as_object().cloned(),
            client_token: Some("hearth:api:alice".to_owned()),
        }),
        last_seen: Some(1_700_000_000_123),
        ..DeviceState::default()
    };
    let changes = store.apply(&thing, &update).await;
    assert!(changes.is_ok_and(|c| c.shadow && c.last_seen));
    let item = client
        .get_item()
        .table_name(&table)
        .key("PK", AttributeValue::S("DEVICE#layout-1".into()))
        .key("SK", AttributeValue::S("STATE".into()))
        .send()
        .await
        .map(|o| o.item().cloned().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)));
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).cloned();
    assert_eq!(text("entity").as_deref(), Some("state"));
    assert_eq!(text("thing").as_deref(), Some("layout-1"));
    assert_eq!(number("shadow_version").as_deref(), Some("3"));
    assert_eq!(
        text("shadow_client_token").as_deref(),
        Some("hearth:api:alice")
    );
    assert_eq!(number("last_seen").as_deref(), Some("1700000000123"));
    assert_eq!(number("rev").as_deref(), Some("1"));
    // JSON documents are stored as JSON text: numbers beyond DynamoDB's range survive.
    let reported: Option<serde_json::Value> =
        text("reported").and_then(|t| serde_json::from_str(&t).ok());
    assert_eq!(reported, Some(json!({"power": "off", "big": 1e300})));
    let read = store.get_state(&thing).await.ok().flatten();
    assert_eq!(read, Some(update));
}

#[tokio::test]
async fn a_missing_table_is_a_transient_error() {
    let config = config().await;
    let store = DynamoStateStore::new(&config, "no-such-table");
    let thing = DeviceId::parse("t-1").unwrap_or_else(|e| panic!("{e}"));
    let update = DeviceState {
        last_seen: Some(1),
        ..DeviceState::default()
    };
    match store.apply(&thing, &update).await {
        Err(StoreError::Transient(_)) => {}
        other => panic!("expected a transient error, got {other:?}"),
    }
}
