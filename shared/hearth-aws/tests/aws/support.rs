use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// The SDK configuration from the environment, after checking that it points at moto server on
/// loopback (never at a real account).
pub async fn config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let moto = std::env::var("HEARTH_MOTO_ENDPOINT").unwrap_or_default();
    assert!(
        !moto.is_empty() && endpoint == moto && moto.starts_with("http://127.0.0.1:"),
        "these tests run against moto server: run `bash tests/run.sh`, which starts it and sets \
         AWS_ENDPOINT_URL and HEARTH_MOTO_ENDPOINT (got AWS_ENDPOINT_URL={endpoint:?})"
    );
    hearth_aws::load_config().await
}

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    match KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
    {
        Ok(k) => k,
        Err(e) => panic!("key schema: {e}"),
    }
}

fn attribute(name: &str) -> AttributeDefinition {
    match AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
    {
        Ok(a) => a,
        Err(e) => panic!("attribute definition: {e}"),
    }
}

/// Creates a table shaped like `DeviceTable` in `template.yaml`.
pub async fn create_table(config: &aws_config::SdkConfig) -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(config);
    let table = unique("hearth-devices");
    let gsi = GlobalSecondaryIndex::builder()
        .index_name("GSI1")
        .key_schema(key("GSI1PK", KeyType::Hash))
        .key_schema(key("GSI1SK", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build();
    let gsi = match gsi {
        Ok(g) => g,
        Err(e) => panic!("gsi: {e}"),
    };
    let by_email = GlobalSecondaryIndex::builder()
        .index_name("GSI2")
        .key_schema(key("GSI2PK", KeyType::Hash))
        .key_schema(key("GSI2SK", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build();
    let by_email = match by_email {
        Ok(g) => g,
        Err(e) => panic!("gsi2: {e}"),
    };
    let created = client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .attribute_definitions(attribute("PK"))
        .attribute_definitions(attribute("SK"))
        .attribute_definitions(attribute("GSI1PK"))
        .attribute_definitions(attribute("GSI1SK"))
        .attribute_definitions(attribute("GSI2PK"))
        .attribute_definitions(attribute("GSI2SK"))
        .global_secondary_indexes(gsi)
        .global_secondary_indexes(by_email)
        .send()
        .await;
    if let Err(e) = created {
        panic!(
            "create table: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        );
    }
    (client, table)
}
