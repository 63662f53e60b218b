//! `/v1/devices` routes.

use std::collections::BTreeSet;

use async_trait::async_trait;
use hearth_api::Ports;
use hearth_domain::device::{Device, DeviceId, Household, HouseholdId, Membership, UserId};
use hearth_domain::projection::{Connectivity, DeviceState, PresenceKind};
use hearth_ports::{DeviceRegistry, Page, StateStore, StoreError};
use http::Method;
use serde_json::json;

use crate::support::{World, call, caller, ok, request, send};

#[tokio::test]
async fn without_a_caller_every_route_is_401_and_unknown_paths_are_404() {
    let world = World::seeded().await;
    for path in [
        "/v1/devices",
        "/v1/devices/a-light",
        "/v1/devices/a-light/commands",
    ] {
        send(world.ports(), None, request(Method::GET, path, None))
            .await
            .problem(401, "unauthenticated");
    }
    for path in [
        "/",
        "/v2/devices",
        "/v1/devices/a-light/other",
        "/v1/things",
    ] {
        call(&world, "alice", Method::GET, path, None)
            .await
            .problem(404, "not-found");
    }
    let reply = call(&world, "alice", Method::DELETE, "/v1/devices", None).await;
    reply.problem(405, "method-not-allowed");
    assert_eq!(reply.allow.as_deref(), Some("GET"));
    let reply = call(
        &world,
        "alice",
        Method::GET,
        "/v1/devices/a-light/commands",
        None,
    )
    .await;
    assert_eq!(reply.allow.as_deref(), Some("POST"));
}

#[tokio::test]
async fn listing_pages_through_every_household_of_the_caller_and_nothing_else() {
    let world = World::seeded().await;
    for limit in [1, 2, 3, 5, 100] {
        let mut seen = Vec::new();
        let mut path = format!("/v1/devices?limit={limit}");
        loop {
            let reply = call(&world, "alice", Method::GET, &path, None).await;
            assert_eq!(reply.status, 200, "{}", reply.raw);
            assert_eq!(reply.content_type, "application/json");
            let items = reply.body["items"].as_array().cloned().unwrap_or_default();
            assert!(items.len() <= limit);
            seen.extend(
                items
                    .iter()
                    .map(|d| d["id"].as_str().unwrap_or("").to_owned()),
            );
            match reply.body["nextCursor"].as_str() {
                Some(cursor) => path = format!("/v1/devices?limit={limit}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(
            seen,
            ["a-light", "a-lock", "a-plug", "b-1", "b-2"],
            "limit {limit}"
        );
    }
    let bob = call(&world, "bob", Method::GET, "/v1/devices", None).await;
    let ids: BTreeSet<_> = bob.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, BTreeSet::from(["a-light", "a-lock", "a-plug", "c-1"]));
    let nobody = call(&world, "carol", Method::GET, "/v1/devices", None).await;
    assert_eq!(nobody.body, json!({"items": []}));
}

#[tokio::test]
async fn bad_paging_parameters_are_400_and_a_cursor_cannot_reach_another_household() {
    let world = World::seeded().await;
    for limit in ["0", "101", "-1", "ten", ""] {
        let reply = call(
            &world,
            "alice",
            Method::GET,
            &format!("/v1/devices?limit={limit}"),
            None,
        )
        .await;
        reply.problem(400, "bad-request");
        assert_eq!(reply.body["field"], "limit");
    }
    // bob's cursor into home-c, replayed by alice: refused, and nothing of home-c is listed.
    let first = call(&world, "bob", Method::GET, "/v1/devices?limit=3", None).await;
    let cursor = first.body["nextCursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!cursor.is_empty());
    let reply = call(
        &world,
        "alice",
        Method::GET,
        &format!("/v1/devices?cursor={cursor}"),
        None,
    )
    .await;
    reply.problem(400, "bad-request");
    assert_eq!(reply.body["field"], "cursor");
    call(
        &world,
        "alice",
        Method::GET,
        "/v1/devices?cursor=not-hex",
        None,
    )
    .await
    .problem(400, "bad-request");
}

#[tokio::test]
async fn another_households_device_is_a_404_exactly_like_a_missing_one() {
    let world = World::seeded().await;
    let foreign = call(&world, "alice", Method::GET, "/v1/devices/c-1", None).await;
    let missing = call(
        &world,
        "alice",
        Method::GET,
        "/v1/devices/no-such-device",
        None,
    )
    .await;
    let invalid = call(&world, "alice", Method::GET, "/v1/devices/bad%2Fid", None).await;
    foreign.problem(404, "not-found");
    assert_eq!(foreign.raw, missing.raw);
    assert_eq!(foreign.raw, invalid.raw);
    for (method, path, body) in [
        (Method::PATCH, "/v1/devices/c-1", Some(r#"{"name":"x"}"#)),
        (
            Method::POST,
            "/v1/devices/c-1/commands",
            Some(r#"{"desired":{"power":"on"}}"#),
        ),
    ] {
        let reply = call(&world, "alice", method, path, body).await;
        assert_eq!(reply.raw, missing.raw);
    }
    assert_eq!(
        world
            .registry
            .get_device(&ok(DeviceId::parse("c-1")))
            .await
            .map(|d| d.map(|d| d.name)),
        Ok(Some("Device c-1".to_owned()))
    );
}

#[tokio::test]
async fn a_device_reads_with_its_shadow_connectivity_and_last_seen() {
    let world = World::seeded().await;
    let id = ok(DeviceId::parse("a-light"));
    let presence = DeviceState {
        connectivity: Some(Connectivity {
            connected: true,
            event: PresenceKind::Connected,
            version_number: 3,
            timestamp: 1_700_000_000_500,
            disconnect_reason: None,
        }),
        last_seen: Some(1_700_000_000_900),
        ..DeviceState::default()
    };
    ok(world.state.apply(&id, &presence).await);
    let before = call(&world, "alice", Method::GET, "/v1/devices/a-light", None).await;
    assert_eq!(before.status, 200, "{}", before.raw);
    assert_eq!(before.body["shadow"], json!(null));
    assert_eq!(before.body["deviceType"], "light");
    assert_eq!(before.body["role"], "owner");
    assert_eq!(before.body["connectivity"]["connected"], true);
    assert_eq!(before.body["lastSeen"], 1_700_000_000_900_u64);
    assert_eq!(before.body["telemetry"], json!(null));

    let command = call(
        &world,
        "alice",
        Method::POST,
        "/v1/devices/a-light/commands",
        Some(r#"{"desired":{"power":"on","brightness":40}}"#),
    )
    .await;
    assert_eq!(command.status, 202, "{}", command.raw);
    assert_eq!(command.body, json!({"version": 1}));
    let after = call(&world, "bob", Method::GET, "/v1/devices/a-light", None).await;
    assert_eq!(after.body["role"], "member");
    assert_eq!(
        after.body["shadow"]["desired"],
        json!({"power": "on", "brightness": 40})
    );
    assert_eq!(
        after.body["shadow"]["delta"],
        json!({"power": "on", "brightness": 40})
    );
    assert_eq!(after.body["shadow"]["reported"], json!({}));
    assert_eq!(after.body["shadow"]["version"], 1);
}

#[tokio::test]
async fn commands_merge_validate_against_capabilities_and_honour_expected_version() {
    let world = World::seeded().await;
    let post = |user: &'static str, path: &'static str, body: &'static str| {
        let world = &world;
        async move { call(world, user, Method::POST, path, Some(body)).await }
    };
    assert_eq!(
        post(
            "alice",
            "/v1/devices/a-light/commands",
            r#"{"desired":{"power":"on","color":{"h":10,"s":0.5,"v":1}}}"#
        )
        .await
        .status,
        202
    );
    // A member may command; null deletes; nested objects merge.
    let reply = post(
        "bob",
        "/v1/devices/a-light/commands",
        r#"{"desired":{"power":null,"color":{"h":20,"s":0.5,"v":1}},"expectedVersion":1}"#,
    )
    .await;
    assert_eq!(reply.body, json!({"version": 2}), "{}", reply.raw);
    let shadow = call(&world, "alice", Method::GET, "/v1/devices/a-light", None).await;
    assert_eq!(
        shadow.body["shadow"]["desired"],
        json!({"color": {"h": 20, "s": 0.5, "v": 1}})
    );
    // A stale expectedVersion is a 409 and changes nothing.
    post(
        "alice",
        "/v1/devices/a-light/commands",
        r#"{"desired":{"power":"off"},"expectedVersion":1}"#,
    )
    .await
    .problem(409, "version-conflict");
    // A lock has no brightness: 422 naming the field.
    let reply = post(
        "alice",
        "/v1/devices/a-lock/commands",
        r#"{"desired":{"brightness":10}}"#,
    )
    .await;
    reply.problem(422, "validation");
    assert_eq!(reply.body["field"], "/desired/brightness");
    let reply = post(
        "alice",
        "/v1/devices/a-light/commands",
        r#"{"desired":{"brightness":101}}"#,
    )
    .await;
    assert_eq!(reply.body["field"], "/desired/brightness");
    // A sensor's readings cannot be set.
    post(
        "alice",
        "/v1/devices/b-1/commands",
        r#"{"desired":{"temperatureC":3}}"#,
    )
    .await
    .problem(422, "validation");
    post("alice", "/v1/devices/a-light/commands", r#"{"desired":{}}"#)
        .await
        .problem(422, "validation");
    post(
        "alice",
        "/v1/devices/a-light/commands",
        r#"{"desired":{"power":"on"},"extra":1}"#,
    )
    .await
    .problem(422, "validation");
    post(
        "alice",
        "/v1/devices/a-light/commands",
        r#"{"desired":"on"}"#,
    )
    .await
    .problem(422, "validation");
    post(
        "alice",
        "/v1/devices/a-light/commands",
        r#"{"desired":{"power":"on"}"#,
    )
    .await
    .problem(400, "bad-request");
    let shadow = call(&world, "alice", Method::GET, "/v1/devices/a-light", None).await;
    assert_eq!(
        shadow.body["shadow"]["version"], 2,
        "refused commands changed nothing"
    );
}

#[tokio::test]
async fn reported_only_values_are_refused_and_eco_is_a_thermostat_mode() {
    let world = World::seeded().await;
    let post = |path: &'static str, body: &'static str| {
        let world = &world;
        async move { call(world, "alice", Method::POST, path, Some(body)).await }
    };
    // A lock reports `jammed`; nobody can set it.
    let reply = post(
        "/v1/devices/a-lock/commands",
        r#"{"desired":{"lock":"jammed"}}"#,
    )
    .await;
    reply.problem(422, "validation");
    assert_eq!(reply.body["field"], "/desired/lock");
    // Battery level and firmware version are the device's to report.
    for (path, body, field) in [
        (
            "/v1/devices/a-lock/commands",
            r#"{"desired":{"batteryPercent":80}}"#,
            "/desired/batteryPercent",
        ),
        (
            "/v1/devices/b-1/commands",
            r#"{"desired":{"batteryPercent":null}}"#,
            "/desired/batteryPercent",
        ),
        (
            "/v1/devices/a-light/commands",
            r#"{"desired":{"power":"on","firmwareVersion":"2.0.0"}}"#,
            "/desired/firmwareVersion",
        ),
        (
            "/v1/devices/b-2/commands",
            r#"{"desired":{"firmwareVersion":"2.0.0"}}"#,
            "/desired/firmwareVersion",
        ),
    ] {
        let reply = post(path, body).await;
        reply.problem(422, "validation");
        assert_eq!(reply.body["field"], field, "{body}");
    }
    for path in [
        "/v1/devices/a-lock",
        "/v1/devices/a-light",
        "/v1/devices/b-2",
    ] {
        let read = call(&world, "alice", Method::GET, path, None).await;
        assert_eq!(
            read.body["shadow"],
            json!(null),
            "refused commands changed nothing: {path}"
        );
    }
    // `eco` is a thermostat mode like the others.
    let reply = post("/v1/devices/b-2/commands", r#"{"desired":{"mode":"eco"}}"#).await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    let read = call(&world, "alice", Method::GET, "/v1/devices/b-2", None).await;
    assert_eq!(read.body["shadow"]["desired"], json!({"mode": "eco"}));
    let reply = post(
        "/v1/devices/a-lock/commands",
        r#"{"desired":{"lock":"locked"}}"#,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
}

#[tokio::test]
async fn body_limits_and_media_type_are_enforced() {
    let world = World::seeded().await;
    let deep = r#"{"desired":{"color":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}"#;
    let reply = call(
        &world,
        "alice",
        Method::POST,
        "/v1/devices/a-light/commands",
        Some(deep),
    )
    .await;
    reply.problem(422, "validation");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("nested")
    );
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(hearth_api::MAX_BODY_BYTES));
    call(
        &world,
        "alice",
        Method::PATCH,
        "/v1/devices/a-light",
        Some(&big),
    )
    .await
    .problem(413, "payload-too-large");
    let mut plain = request(Method::PATCH, "/v1/devices/a-light", None);
    *plain.body_mut() = bytes::Bytes::from_static(br#"{"name":"x"}"#);
    send(world.ports(), Some(&caller("alice")), plain)
        .await
        .problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn owners_rename_and_members_get_403() {
    let world = World::seeded().await;
    let reply = call(
        &world,
        "alice",
        Method::PATCH,
        "/v1/devices/a-light",
        Some(r#"{"name":"Porch light"}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.body["name"], "Porch light");
    let stored = ok(world
        .registry
        .get_device(&ok(DeviceId::parse("a-light")))
        .await);
    assert_eq!(stored.map(|d| d.name).as_deref(), Some("Porch light"));
    call(
        &world,
        "bob",
        Method::PATCH,
        "/v1/devices/a-light",
        Some(r#"{"name":"Mine"}"#),
    )
    .await
    .problem(403, "forbidden");
    for (body, status) in [
        (r#"{"name":"  "}"#, 422),
        (&*format!(r#"{{"name":"{}"}}"#, "x".repeat(65)), 422),
        (r#"{"name":"a\u0007b"}"#, 422),
        (r#"{"name":7}"#, 422),
        (r#"{}"#, 422),
        ("name=x", 400),
        (r#"["Porch light"]"#, 422),
        (r#"{"name":"a","name":"b"}"#, 422),
    ] {
        let reply = call(
            &world,
            "alice",
            Method::PATCH,
            "/v1/devices/a-light",
            Some(body),
        )
        .await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.raw);
    }
    let stored = ok(world
        .registry
        .get_device(&ok(DeviceId::parse("a-light")))
        .await);
    assert_eq!(stored.map(|d| d.name).as_deref(), Some("Porch light"));
}

/// A registry that fails like a throttled or broken AWS service, with text a client must not
/// see.
struct Failing {
    retryable: bool,
}

const SECRET: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/secret ThrottlingException";

impl Failing {
    fn error(&self) -> StoreError {
        if self.retryable {
            StoreError::Transient(SECRET.to_owned())
        } else {
            StoreError::Rejected(SECRET.to_owned())
        }
    }
}

#[async_trait]
impl DeviceRegistry for Failing {
    async fn rename_device(
        &self,
        _: &DeviceId,
        _: &HouseholdId,
        _: &str,
    ) -> Result<Option<Device>, StoreError> {
        Err(self.error())
    }
    async fn put_device(&self, _: &Device) -> Result<(), StoreError> {
        Err(self.error())
    }
    async fn get_device(&self, _: &DeviceId) -> Result<Option<Device>, StoreError> {
        Err(self.error())
    }
    async fn household_devices(
        &self,
        _: &HouseholdId,
        _: u16,
        _: Option<&str>,
    ) -> Result<Page<Device>, StoreError> {
        Err(self.error())
    }
    async fn put_household(&self, _: &Household) -> Result<(), StoreError> {
        Err(self.error())
    }
    async fn get_household(&self, _: &HouseholdId) -> Result<Option<Household>, StoreError> {
        Err(self.error())
    }
    async fn put_membership(&self, _: &Membership) -> Result<(), StoreError> {
        Err(self.error())
    }
    async fn move_device(
        &self,
        _: &DeviceId,
        _: &HouseholdId,
        _: &HouseholdId,
    ) -> Result<Option<Device>, StoreError> {
        Err(self.error())
    }
    async fn remove_membership(&self, _: &UserId, _: &HouseholdId) -> Result<bool, StoreError> {
        Err(self.error())
    }
    async fn memberships(&self, _: &UserId) -> Result<Vec<Membership>, StoreError> {
        Err(self.error())
    }
    async fn household_members(&self, _: &HouseholdId) -> Result<Vec<Membership>, StoreError> {
        Err(self.error())
    }
}

#[tokio::test]
async fn storage_failures_are_503_or_500_without_internal_detail() {
    let world = World::default();
    for (retryable, status, slug) in [(true, 503, "unavailable"), (false, 500, "internal")] {
        let failing = Failing { retryable };
        let ports = Ports {
            registry: &failing,
            ..world.ports()
        };
        for path in ["/v1/devices", "/v1/devices/a-light"] {
            let reply = send(
                ports,
                Some(&caller("alice")),
                request(Method::GET, path, None),
            )
            .await;
            reply.problem(status, slug);
            assert!(
                !reply.raw.contains("arn:aws") && !reply.raw.contains("Throttling"),
                "{}",
                reply.raw
            );
        }
    }
}

/// A shadow service that refuses the platform's own credentials (an IAM mistake).
struct DeniedShadows;

#[async_trait]
impl hearth_ports::ShadowGateway for DeniedShadows {
    async fn update_desired(
        &self,
        _: &DeviceId,
        _: &hearth_domain::shadow::Object,
        _: Option<u64>,
        _: &hearth_domain::command::Cause,
    ) -> Result<u64, hearth_ports::IotError> {
        Err(hearth_ports::IotError::Denied(SECRET.to_owned()))
    }
    async fn get_shadow(
        &self,
        _: &DeviceId,
    ) -> Result<Option<hearth_domain::shadow::Object>, hearth_ports::IotError> {
        Err(hearth_ports::IotError::Denied(SECRET.to_owned()))
    }
    async fn delete_shadow(&self, _: &DeviceId) -> Result<(), hearth_ports::IotError> {
        Err(hearth_ports::IotError::Denied(SECRET.to_owned()))
    }
}

#[tokio::test]
async fn an_iam_mistake_is_a_500_never_the_callers_fault() {
    let world = World::seeded().await;
    let ports = Ports {
        shadows: &DeniedShadows,
        ..world.ports()
    };
    let command = send(
        ports,
        Some(&caller("alice")),
        request(
            Method::POST,
            "/v1/devices/a-light/commands",
            Some(r#"{"desired":{"power":"on"}}"#),
        ),
    )
    .await;
    command.problem(500, "internal");
    let read = send(
        ports,
        Some(&caller("alice")),
        request(Method::GET, "/v1/devices/a-light", None),
    )
    .await;
    read.problem(500, "internal");
    assert!(!command.raw.contains("arn:aws") && !read.raw.contains("arn:aws"));
}
