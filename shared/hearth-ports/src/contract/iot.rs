//! The IoT contracts: the [`ThingProvisioner`](crate::ThingProvisioner) and the
//! [`ShadowGateway`](crate::ShadowGateway).

use super::*;

/// The [`ThingProvisioner`](crate::ThingProvisioner) contract. `csr_pem`, when given, is a real
/// certificate signing request for the adapter to sign.
pub async fn provisioner(
    provisioner: &dyn crate::ThingProvisioner,
    prefix: &str,
    csr_pem: Option<&str>,
) {
    let thing = id(DeviceId::parse(format!("{prefix}-thing-1")));
    let product = id(ProductId::parse("lamp-x"));
    ok(
        provisioner.create_thing(&thing, &product).await,
        "create_thing",
    );
    ok(
        provisioner.create_thing(&thing, &product).await,
        "create_thing again",
    );

    let first = ok(provisioner.issue_certificate(&thing, None).await, "issue");
    assert!(first.certificate_pem.contains("BEGIN CERTIFICATE"));
    assert!(
        first
            .private_key_pem
            .as_deref()
            .is_some_and(|k| k.contains("PRIVATE KEY")),
        "a generated key pair returns its private key once"
    );
    assert!(first.certificate_arn.ends_with(&first.certificate_id));
    let listed = ok(provisioner.certificates(&thing).await, "certificates");
    assert_eq!(listed, vec![first.certificate_id.clone()]);

    // Re-issue: a new certificate, the old one revoked.
    let second = match csr_pem {
        Some(csr) => {
            let issued = ok(
                provisioner.issue_certificate(&thing, Some(csr)).await,
                "issue from CSR",
            );
            assert_eq!(issued.private_key_pem, None, "the key stays on the device");
            issued
        }
        None => ok(provisioner.issue_certificate(&thing, None).await, "issue"),
    };
    assert_ne!(second.certificate_id, first.certificate_id);
    ok(
        provisioner
            .revoke_certificate(&thing, &first.certificate_id)
            .await,
        "revoke",
    );
    let listed = ok(provisioner.certificates(&thing).await, "certificates");
    assert_eq!(listed, vec![second.certificate_id.clone()]);

    let missing = id(DeviceId::parse(format!("{prefix}-thing-missing")));
    assert!(matches!(
        provisioner.issue_certificate(&missing, None).await,
        Err(crate::IotError::NotFound(_))
    ));
    assert!(
        provisioner
            .issue_certificate(&thing, Some("not a csr"))
            .await
            .is_err(),
        "a malformed CSR is refused"
    );

    assert!(!ok(provisioner.data_endpoint().await, "endpoint").is_empty());

    // Deleting the thing removes it and its certificates; its name can be used again.
    ok(provisioner.delete_thing(&thing).await, "delete_thing");
    assert!(matches!(
        provisioner.certificates(&thing).await,
        Err(crate::IotError::NotFound(_))
    ));
    ok(
        provisioner.create_thing(&thing, &product).await,
        "create again",
    );
    assert!(ok(provisioner.certificates(&thing).await, "certificates").is_empty());
    ok(provisioner.delete_thing(&thing).await, "delete_thing");
}

/// The [`ShadowGateway`](crate::ShadowGateway) contract; things are created with `provisioner`
/// (AWS IoT needs the thing to exist).
pub async fn shadow_gateway(
    gateway: &dyn crate::ShadowGateway,
    provisioner: &dyn crate::ThingProvisioner,
    prefix: &str,
) {
    let thing = id(DeviceId::parse(format!("{prefix}-shadow-1")));
    ok(
        provisioner
            .create_thing(&thing, &id(ProductId::parse("lamp-x")))
            .await,
        "create_thing",
    );
    assert_eq!(ok(gateway.get_shadow(&thing).await, "get_shadow"), None);
    let cause = hearth_domain::command::Cause::new(
        hearth_domain::command::CommandSource::Api,
        "contract-user",
    );

    let on = object(&[
        ("power", "on".into()),
        ("color", serde_json::json!({"h": 10, "s": 1})),
    ]);
    let version = ok(
        gateway.update_desired(&thing, &on, None, &cause).await,
        "update",
    );
    assert_eq!(version, 1);
    let change = object(&[
        ("power", Value::Null),
        ("color", serde_json::json!({"s": 0.5})),
        ("brightness", 40.into()),
    ]);
    let version = ok(
        gateway
            .update_desired(&thing, &change, Some(1), &cause)
            .await,
        "update",
    );
    assert_eq!(version, 2);
    let shadow = ok(gateway.get_shadow(&thing).await, "get_shadow").unwrap_or_default();
    assert_eq!(
        shadow.get("state").and_then(|s| s.get("desired")),
        Some(&serde_json::json!({"color": {"h": 10, "s": 0.5}, "brightness": 40})),
        "nested objects merge, null deletes"
    );
    assert_eq!(shadow.get("version"), Some(&Value::from(2)));
    assert_eq!(
        gateway.update_desired(&thing, &on, Some(1), &cause).await,
        Err(crate::IotError::Conflict)
    );
    ok(gateway.delete_shadow(&thing).await, "delete_shadow");
    assert_eq!(ok(gateway.get_shadow(&thing).await, "get_shadow"), None);
    ok(gateway.delete_shadow(&thing).await, "delete_shadow of none");
    ok(provisioner.delete_thing(&thing).await, "delete_thing");
}
