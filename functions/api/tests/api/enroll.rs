//! Pre-registration, claiming, credentials and deletion.

use hearth_domain::device::DeviceId;
use hearth_domain::projection::DeviceState;
use hearth_ports::{IotError, ShadowGateway, StateStore, ThingProvisioner};
use http::Method;
use serde_json::{Value, json};

use crate::support::{World, call, call_as, maker, ok};

const CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

async fn register(world: &World, serial: &str, device_type: &str) -> Value {
    let body = json!({"productId": "acme-lamp", "serial": serial, "deviceType": device_type});
    let reply = call_as(
        world,
        &maker("acme"),
        Method::POST,
        "/v1/maker/devices",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    reply.body
}

async fn claim(world: &World, user: &str, body: Value) -> crate::support::Reply {
    call(
        world,
        user,
        Method::POST,
        "/v1/claims",
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn makers_register_devices_with_opaque_names_and_one_time_codes() {
    let world = World::seeded().await;
    let first = register(&world, "SN-0001", "light").await;
    let second = register(&world, "SN-0002", "light").await;
    let id = first["id"].as_str().unwrap_or("");
    assert!(id.starts_with("hth-") && id.len() == 30, "{id}");
    assert!(
        !id.contains("0001"),
        "the thing name is not derived from the serial"
    );
    assert_ne!(first["id"], second["id"]);
    let code = first["claimCode"].as_str().unwrap_or("");
    assert_eq!(code.len(), 24, "{code}");
    assert_ne!(first["claimCode"], second["claimCode"]);
    assert_eq!(first["serial"], "SN-0001");
    assert_eq!(first["deviceType"], "light");

    let duplicate = json!({"productId": "acme-lamp", "serial": "SN-0001", "deviceType": "plug"});
    call_as(
        &world,
        &maker("acme"),
        Method::POST,
        "/v1/maker/devices",
        Some(&duplicate.to_string()),
    )
    .await
    .problem(409, "already-registered");
    call(
        &world,
        "alice",
        Method::POST,
        "/v1/maker/devices",
        Some(&duplicate.to_string()),
    )
    .await
    .problem(403, "forbidden");
    for (body, field) in [
        (
            json!({"productId": "acme lamp", "serial": "S", "deviceType": "light"}),
            Some("/productId"),
        ),
        (
            json!({"productId": "acme", "serial": "a/b", "deviceType": "light"}),
            Some("/serial"),
        ),
        (
            json!({"productId": "acme", "serial": "S", "deviceType": "toaster"}),
            None,
        ),
        (json!({"productId": "acme", "serial": "S"}), None),
    ] {
        let reply = call_as(
            &world,
            &maker("acme"),
            Method::POST,
            "/v1/maker/devices",
            Some(&body.to_string()),
        )
        .await;
        reply.problem(422, "validation");
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field);
        }
    }
}

#[tokio::test]
async fn a_first_claim_creates_the_household_provisions_the_thing_and_works_once() {
    let world = World::seeded().await;
    let registered = register(&world, "SN-1", "light").await;
    let code = registered["claimCode"]
        .as_str()
        .unwrap_or("")
        .to_lowercase()
        .replace('-', " ");
    let reply = claim(
        &world,
        "dave",
        json!({"claimCode": code, "name": "Desk lamp"}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    let device = &reply.body["device"];
    assert_eq!(device["id"], registered["id"]);
    assert_eq!(device["name"], "Desk lamp");
    let credentials = &reply.body["credentials"];
    assert!(
        credentials["certificatePem"]
            .as_str()
            .unwrap_or("")
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        credentials["privateKeyPem"]
            .as_str()
            .unwrap_or("")
            .contains("PRIVATE KEY"),
        "no CSR: a key pair, returned once"
    );
    assert!(
        credentials["rootCaPem"]
            .as_str()
            .unwrap_or("")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(credentials["endpoint"], "127.0.0.1");
    let thing = ok(DeviceId::parse(device["id"].as_str().unwrap_or("")));
    assert_eq!(
        ok(world.provisioner.certificates(&thing).await),
        vec![
            credentials["certificateId"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        ]
    );
    let list = call(&world, "dave", Method::GET, "/v1/devices", None).await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list.body["items"][0]["householdId"], device["householdId"]);

    // Used once: another owner, or the same one, cannot claim with it again.
    for user in ["erin", "dave"] {
        claim(&world, user, json!({"claimCode": registered["claimCode"]}))
            .await
            .problem(404, "unknown-claim-code");
    }
    let reply = claim(&world, "erin", json!({"claimCode": "not a code"})).await;
    reply.problem(422, "validation");
    assert_eq!(reply.body["field"], "/claimCode");
}

#[tokio::test]
async fn a_claim_with_a_csr_returns_no_private_key_and_households_are_checked() {
    let world = World::seeded().await;
    let registered = register(&world, "SN-2", "plug").await;
    // bob is only a member of home-a; home-b is not his.
    claim(
        &world,
        "bob",
        json!({"claimCode": registered["claimCode"], "householdId": "home-a"}),
    )
    .await
    .problem(403, "forbidden");
    let reply = claim(
        &world,
        "bob",
        json!({"claimCode": registered["claimCode"], "householdId": "home-b"}),
    )
    .await;
    reply.problem(404, "not-found");
    assert_eq!(reply.body["field"], "/householdId");
    claim(
        &world,
        "bob",
        json!({"claimCode": registered["claimCode"], "csr": "garbage"}),
    )
    .await
    .problem(422, "validation");
    // None of the refused attempts used the code up.
    let reply = claim(
        &world,
        "alice",
        json!({"claimCode": registered["claimCode"], "householdId": "home-b", "csr": CSR}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    assert_eq!(reply.body["device"]["householdId"], "home-b");
    assert_eq!(reply.body["device"]["name"], "Plug");
    assert!(reply.body["credentials"].get("privateKeyPem").is_none());
}

#[tokio::test]
async fn owners_reissue_credentials_and_the_old_certificate_is_revoked() {
    let world = World::seeded().await;
    let registered = register(&world, "SN-3", "light").await;
    let claimed = claim(
        &world,
        "alice",
        json!({"claimCode": registered["claimCode"], "householdId": "home-a"}),
    )
    .await;
    let id = claimed.body["device"]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let old = claimed.body["credentials"]["certificateId"].clone();
    let path = format!("/v1/devices/{id}/credentials");
    call(&world, "bob", Method::POST, &path, None)
        .await
        .problem(403, "forbidden");
    let reply = call(&world, "alice", Method::POST, &path, None).await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    assert_ne!(reply.body["certificateId"], old);
    let thing = ok(DeviceId::parse(id.as_str()));
    assert_eq!(
        ok(world.provisioner.certificates(&thing).await),
        vec![
            reply.body["certificateId"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        ],
        "only the new certificate stays attached"
    );
    let with_csr = call(
        &world,
        "alice",
        Method::POST,
        &path,
        Some(&json!({"csr": CSR}).to_string()),
    )
    .await;
    assert_eq!(with_csr.status, 201, "{}", with_csr.raw);
    assert!(with_csr.body.get("privateKeyPem").is_none());
}

#[tokio::test]
async fn deleting_removes_thing_and_shadow_and_the_next_owner_starts_clean() {
    let world = World::seeded().await;
    let registered = register(&world, "SN-4", "light").await;
    let claimed = claim(&world, "alice", json!({"claimCode": registered["claimCode"], "householdId": "home-a", "name": "Alice's lamp"})).await;
    let id = claimed.body["device"]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let path = format!("/v1/devices/{id}");
    let command = call(
        &world,
        "alice",
        Method::POST,
        &format!("{path}/commands"),
        Some(r#"{"desired":{"power":"on"}}"#),
    )
    .await;
    assert_eq!(command.status, 202, "{}", command.raw);
    call(&world, "bob", Method::DELETE, &path, None)
        .await
        .problem(403, "forbidden");
    // Telemetry and presence of alice's time with the device.
    let thing = ok(DeviceId::parse(id.as_str()));
    let before = DeviceState {
        last_seen: Some(world.tick()),
        ..DeviceState::default()
    };
    ok(world.state.apply(&thing, &before).await);
    let read = call(&world, "alice", Method::GET, &path, None).await;
    assert!(read.body["lastSeen"].is_u64(), "{}", read.raw);

    let reply = call(&world, "alice", Method::DELETE, &path, None).await;
    assert_eq!(reply.status, 204, "{}", reply.raw);
    assert!(reply.raw.is_empty());
    assert!(
        matches!(
            world.provisioner.certificates(&thing).await,
            Err(IotError::NotFound(_))
        ),
        "the thing is gone"
    );
    assert_eq!(
        ok(world.shadows.get_shadow(&thing).await),
        None,
        "the shadow is gone"
    );
    call(&world, "alice", Method::GET, &path, None)
        .await
        .problem(404, "not-found");
    call(&world, "alice", Method::DELETE, &path, None)
        .await
        .problem(404, "not-found");

    // Leftovers of requests that raced the delete (a late re-issue's certificate, a late
    // command's desired state) are cleared by the next claim.
    let product = ok(hearth_domain::device::ProductId::parse("acme-lamp"));
    ok(world.provisioner.create_thing(&thing, &product).await);
    let stale = ok(world.provisioner.issue_certificate(&thing, None).await);
    let late = serde_json::Map::from_iter([("power".to_owned(), json!("on"))]);
    let cause =
        hearth_domain::command::Cause::new(hearth_domain::command::CommandSource::Api, "alice");
    ok(world
        .shadows
        .update_desired(&thing, &late, None, &cause)
        .await);

    // The code on the device works again, for the next owner, who sees none of the past.
    world.tick();
    let next = claim(
        &world,
        "frank",
        json!({"claimCode": registered["claimCode"]}),
    )
    .await;
    assert_eq!(next.status, 201, "{}", next.raw);
    assert_eq!(
        ok(world.provisioner.certificates(&thing).await),
        vec![
            next.body["credentials"]["certificateId"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        ],
        "only the new owner's certificate works; {} was revoked",
        stale.certificate_id
    );
    assert_eq!(next.body["device"]["name"], "Light");
    let read = call(&world, "frank", Method::GET, &path, None).await;
    assert_eq!(read.body["shadow"], json!(null));
    assert_eq!(
        read.body["lastSeen"],
        json!(null),
        "the previous owner's data is not shown"
    );
    assert!(world.registry_has_no_trace_of(&id, "home-a").await);
}
