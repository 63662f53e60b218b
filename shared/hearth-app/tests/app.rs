//! The use cases over the in-memory adapters: visibility, roles, reads since the claim,
//! listing across households, and commands with their cause.

use std::sync::Mutex;

use async_trait::async_trait;
use hearth_app::devices::{self, Command, ListCursor};
use hearth_app::{AppError, AppPorts, access};
use hearth_domain::command::{Cause, CommandSource};
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, Role, UserId,
};
use hearth_domain::projection::DeviceState;
use hearth_domain::shadow::Object;
use hearth_ports::memory::{MemoryRegistry, MemoryShadows, MemoryStateStore};
use hearth_ports::{DeviceRegistry, IotError, ShadowGateway, StateStore};
use serde_json::json;

fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e:?}"))
}

/// The in-memory shadows, remembering the cause of every update.
#[derive(Default)]
struct Shadows {
    inner: MemoryShadows,
    causes: Mutex<Vec<Cause>>,
}

#[async_trait]
impl ShadowGateway for Shadows {
    async fn update_desired(
        &self,
        thing: &DeviceId,
        desired: &Object,
        expected_version: Option<u64>,
        cause: &Cause,
    ) -> Result<u64, IotError> {
        let version = self
            .inner
            .update_desired(thing, desired, expected_version, cause)
            .await?;
        self.causes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(cause.clone());
        Ok(version)
    }
    async fn get_shadow(&self, thing: &DeviceId) -> Result<Option<Object>, IotError> {
        self.inner.get_shadow(thing).await
    }
    async fn delete_shadow(&self, thing: &DeviceId) -> Result<(), IotError> {
        self.inner.delete_shadow(thing).await
    }
}

struct World {
    registry: MemoryRegistry,
    state: MemoryStateStore,
    shadows: Shadows,
}

fn user(name: &str) -> UserId {
    ok(UserId::parse(name))
}

impl World {
    /// alice owns `home-a` (`a-light`, `a-lock`) and `home-b` (`b-1`..`b-3`); bob is a member
    /// of `home-a`; carol owns `home-c` (`c-1`).
    async fn seeded() -> Self {
        let world = World {
            registry: MemoryRegistry::default(),
            state: MemoryStateStore::default(),
            shadows: Shadows::default(),
        };
        for (who, household, role) in [
            ("alice", "home-a", Role::Owner),
            ("alice", "home-b", Role::Owner),
            ("bob", "home-a", Role::Member),
            ("carol", "home-c", Role::Owner),
        ] {
            let id = ok(HouseholdId::parse(household));
            ok(world
                .registry
                .put_household(&Household {
                    id: id.clone(),
                    name: household.to_owned(),
                })
                .await);
            ok(world
                .registry
                .put_membership(&Membership {
                    user: user(who),
                    household: id,
                    role,
                })
                .await);
        }
        for (id, household, device_type) in [
            ("a-light", "home-a", DeviceType::Light),
            ("a-lock", "home-a", DeviceType::Lock),
            ("b-1", "home-b", DeviceType::Sensor),
            ("b-2", "home-b", DeviceType::Sensor),
            ("b-3", "home-b", DeviceType::Plug),
            ("c-1", "home-c", DeviceType::Light),
        ] {
            ok(world
                .registry
                .put_device(&Device {
                    id: ok(DeviceId::parse(id)),
                    product: ok(ProductId::parse("acme-1")),
                    household: Some(ok(HouseholdId::parse(household))),
                    name: id.to_owned(),
                    device_type,
                    created_at: 1,
                    serial: None,
                    maker: None,
                    claimed_at: Some(1_000),
                    claim_code_hash: None,
                })
                .await);
        }
        world
    }

    fn ports(&self) -> AppPorts<'_> {
        AppPorts {
            registry: &self.registry,
            state: &self.state,
            shadows: &self.shadows,
        }
    }
}

fn desired(value: serde_json::Value) -> Object {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn another_households_device_is_indistinguishable_from_a_missing_one() {
    let world = World::seeded().await;
    let alice = user("alice");
    for id in ["c-1", "no-such-device", "not a thing name!"] {
        assert_eq!(
            access::visible(&world.registry, &alice, id).await,
            Err(AppError::not_found()),
            "{id}"
        );
        assert_eq!(
            devices::read(world.ports(), &alice, id).await.err(),
            Some(AppError::not_found()),
            "{id}"
        );
    }
    let stranger = user("dave");
    assert_eq!(
        access::visible(&world.registry, &stranger, "a-light").await,
        Err(AppError::not_found())
    );
    let visible = ok(access::visible(&world.registry, &user("bob"), "a-light").await);
    assert_eq!(visible.role, Role::Member);
}

#[tokio::test]
async fn members_command_but_only_owners_rename_and_transfer() {
    let world = World::seeded().await;
    let bob = user("bob");
    let command = Command {
        desired: desired(json!({"power": "on"})),
        expected_version: None,
        cause: Cause::new(CommandSource::Alexa, "msg-1"),
    };
    assert_eq!(
        devices::command(world.ports(), &bob, "a-light", &command).await,
        Ok(1)
    );
    assert_eq!(
        devices::rename(world.ports(), &bob, "a-light", "Hall").await,
        Err(AppError::OwnersOnly {
            action: "rename a device"
        })
    );
    assert_eq!(
        devices::transfer(world.ports(), &bob, "a-light", "home-b").await,
        Err(AppError::OwnersOnly {
            action: "transfer a device"
        })
    );
    let alice = user("alice");
    let renamed = ok(devices::rename(world.ports(), &alice, "a-light", "Hall").await);
    assert_eq!(renamed.name, "Hall");
    assert_eq!(
        devices::rename(world.ports(), &alice, "a-light", " ").await,
        Err(AppError::invalid("/name", "name must not be blank."))
    );
    assert_eq!(
        devices::transfer(world.ports(), &alice, "a-light", "home-c").await,
        Err(AppError::NotFound {
            field: Some("/householdId")
        }),
        "a household of someone else's is missing"
    );
    let moved = ok(devices::transfer(world.ports(), &alice, "a-light", "home-b").await);
    assert_eq!(
        moved.household.as_ref().map(HouseholdId::as_str),
        Some("home-b")
    );
    assert_eq!(
        devices::command(world.ports(), &bob, "a-light", &command).await,
        Err(AppError::not_found()),
        "bob no longer sees the moved device"
    );
}

#[tokio::test]
async fn a_command_is_validated_then_sent_with_its_cause_and_expected_version() {
    let world = World::seeded().await;
    let alice = user("alice");
    let command = |value, expected_version, source| Command {
        desired: desired(value),
        expected_version,
        cause: Cause::new(source, "alice"),
    };
    let refused = [
        (json!({}), "/desired"),
        (json!({"brightness": 500}), "/desired/brightness"),
        (json!({"lock": "locked"}), "/desired/lock"),
        (json!({"temperatureC": 20}), "/desired/temperatureC"),
    ];
    for (value, pointer) in refused {
        match devices::command(
            world.ports(),
            &alice,
            "a-light",
            &command(value.clone(), None, CommandSource::Api),
        )
        .await
        {
            Err(AppError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer, "{value}"),
            other => panic!("{value}: {other:?}"),
        }
    }
    assert!(
        world
            .shadows
            .causes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty(),
        "nothing invalid reaches the shadow"
    );
    let on = json!({"power": "on", "brightness": 40});
    assert_eq!(
        devices::command(
            world.ports(),
            &alice,
            "a-light",
            &command(on.clone(), None, CommandSource::Google)
        )
        .await,
        Ok(1)
    );
    assert_eq!(
        devices::command(
            world.ports(),
            &alice,
            "a-light",
            &command(on.clone(), Some(7), CommandSource::Api)
        )
        .await,
        Err(AppError::VersionConflict)
    );
    assert_eq!(
        devices::command(
            world.ports(),
            &alice,
            "a-light",
            &command(json!({"power": "off"}), Some(1), CommandSource::Automation)
        )
        .await,
        Ok(2)
    );
    let causes = world
        .shadows
        .causes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(
        causes,
        vec![
            Cause::new(CommandSource::Google, "alice"),
            Cause::new(CommandSource::Automation, "alice"),
        ]
    );
    let view = ok(devices::read(world.ports(), &alice, "a-light").await);
    assert_eq!(view.shadow_version(), Some(2));
    assert_eq!(
        view.shadow_section("desired"),
        Some(&json!({"power": "off", "brightness": 40}))
    );
}

#[tokio::test]
async fn a_read_shows_only_what_happened_since_the_current_claim() {
    let world = World::seeded().await;
    let thing = ok(DeviceId::parse("b-1"));
    ok(world
        .state
        .apply(
            &thing,
            &DeviceState {
                last_seen: Some(999),
                ..DeviceState::default()
            },
        )
        .await);
    let view = ok(devices::read(world.ports(), &user("alice"), "b-1").await);
    assert_eq!(view.last_seen(), None, "seen before the claim at 1000");
    assert!(view.state.is_some());
    ok(world
        .state
        .apply(
            &thing,
            &DeviceState {
                last_seen: Some(1_001),
                ..DeviceState::default()
            },
        )
        .await);
    let view = ok(devices::read(world.ports(), &user("alice"), "b-1").await);
    assert_eq!(view.last_seen(), Some(1_001));
}

#[tokio::test]
async fn a_listing_walks_every_household_in_pages_and_refuses_a_foreign_cursor() {
    let world = World::seeded().await;
    let alice = user("alice");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = ok(ok(devices::list(world.ports(), &alice, 2, cursor).await));
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|d| d.id.as_str().to_owned()));
        match page.next {
            Some(next) => cursor = ListCursor::decode(&next.encode()),
            None => break,
        }
    }
    assert_eq!(seen, ["a-light", "a-lock", "b-1", "b-2", "b-3"]);

    let carols = ok(ok(
        devices::list(world.ports(), &user("carol"), 1, None).await
    ));
    assert_eq!(carols.items.len(), 1);
    let first = ok(ok(devices::list(world.ports(), &alice, 1, None).await));
    assert_eq!(
        ok(devices::list(world.ports(), &user("carol"), 1, first.next).await),
        Err(devices::ForeignCursor),
        "alice's cursor names a household carol is not in"
    );
}
