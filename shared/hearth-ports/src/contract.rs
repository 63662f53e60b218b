//! The contract test suite: what every adapter of a port must do. Each function drives an
//! adapter through scenarios and panics (like `assert!`) on the first deviation. Ids are
//! prefixed with `prefix` so several runs can share one backing store.
//!
//! Used by the in-memory adapters' tests here, by `hearth-aws` against moto server, and by the
//! local stack's embedded adapters.

use std::future::Future;

use futures_util::future::join_all;
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, Role, UserId,
};
use hearth_domain::projection::{
    Changes, Connectivity, DeviceState, PresenceKind, ShadowProjection, Telemetry,
};
use hearth_domain::shadow::Object;
use serde_json::Value;

use crate::{DeadLetter, DeadLetterSink, DeviceRegistry, EnrollError, Enrollment, StateStore};

fn id<T, E: std::fmt::Debug>(parsed: Result<T, E>) -> T {
    match parsed {
        Ok(v) => v,
        Err(e) => panic!("invalid test id: {e:?}"),
    }
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn object(pairs: &[(&str, Value)]) -> Object {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn doc(version: u64, received_at: u64, reported: Object) -> DeviceState {
    DeviceState {
        shadow: Some(ShadowProjection {
            version,
            received_at,
            timestamp: received_at / 1000,
            desired: None,
            reported: Some(reported),
            client_token: None,
        }),
        ..DeviceState::default()
    }
}

fn version(state: Option<&DeviceState>) -> Option<u64> {
    state.and_then(|s| s.shadow.as_ref()).map(|s| s.version)
}

/// The [`StateStore`] contract.
pub async fn state_store(store: &dyn StateStore, prefix: &str) {
    let thing = id(DeviceId::parse(format!("{prefix}-state-1")));
    assert_eq!(
        ok(store.get_state(&thing).await, "get_state"),
        None,
        "unknown device has no state"
    );

    // Shadow: forward-only by version; duplicates and older versions are no-ops.
    let on = object(&[("power", "on".into()), ("level", 40.into())]);
    let off = object(&[("power", "off".into())]);
    let changes = ok(
        store.apply(&thing, &doc(2, 2_000, on.clone())).await,
        "apply",
    );
    assert!(changes.shadow, "first document applies");
    let changes = ok(
        store.apply(&thing, &doc(1, 1_000, off.clone())).await,
        "apply",
    );
    assert_eq!(changes, Changes::default(), "older version is a no-op");
    let changes = ok(
        store.apply(&thing, &doc(2, 2_000, on.clone())).await,
        "apply",
    );
    assert_eq!(changes, Changes::default(), "duplicate is a no-op");
    let state = ok(store.get_state(&thing).await, "get_state");
    assert_eq!(version(state.as_ref()), Some(2));
    assert_eq!(
        state
            .as_ref()
            .and_then(|s| s.shadow.as_ref())
            .and_then(|s| s.reported.clone()),
        Some(on.clone()),
        "reported state round-trips"
    );

    // The client token (a command's cause) belongs to the version it produced.
    let commanded_thing = id(DeviceId::parse(format!("{prefix}-state-token")));
    let mut commanded = doc(3, 3_000, on.clone());
    if let Some(shadow) = commanded.shadow.as_mut() {
        shadow.client_token = Some("hearth:api:alice".to_owned());
    }
    ok(store.apply(&commanded_thing, &commanded).await, "apply");
    let token = |state: Option<DeviceState>| state.and_then(|s| s.shadow?.client_token);
    assert_eq!(
        token(ok(store.get_state(&commanded_thing).await, "get_state")).as_deref(),
        Some("hearth:api:alice"),
        "the client token round-trips"
    );
    ok(
        store
            .apply(&commanded_thing, &doc(4, 4_000, on.clone()))
            .await,
        "apply",
    );
    assert_eq!(
        token(ok(store.get_state(&commanded_thing).await, "get_state")),
        None,
        "a version without a token has no cause"
    );

    // One update with a stale shadow, a newer presence and an older last-seen: only the
    // presence advances.
    let seeded = DeviceState {
        last_seen: Some(5_000),
        ..DeviceState::default()
    };
    ok(store.apply(&thing, &seeded).await, "apply");
    let mut mixed = doc(1, 1_500, off.clone());
    mixed.connectivity = Some(Connectivity {
        connected: true,
        event: PresenceKind::Connected,
        version_number: 3,
        timestamp: 1_700,
        disconnect_reason: None,
    });
    mixed.last_seen = Some(4_000);
    let changes = ok(store.apply(&thing, &mixed).await, "apply");
    assert_eq!(
        changes,
        Changes {
            connectivity: true,
            ..Changes::default()
        },
        "a stale concern never blocks another"
    );
    let state = ok(store.get_state(&thing).await, "get_state").unwrap_or_default();
    assert_eq!(state.shadow.as_ref().map(|s| s.version), Some(2));
    assert_eq!(state.connectivity, mixed.connectivity);
    assert_eq!(state.last_seen, Some(5_000));

    // Presence: an older session's disconnect is a no-op; the same session's applies.
    let disconnect = |version_number, timestamp| DeviceState {
        connectivity: Some(Connectivity {
            connected: false,
            event: PresenceKind::Disconnected,
            version_number,
            timestamp,
            disconnect_reason: Some("CONNECTION_LOST".to_owned()),
        }),
        ..DeviceState::default()
    };
    let changes = ok(store.apply(&thing, &disconnect(2, 9_000)).await, "apply");
    assert!(!changes.connectivity, "older session");
    let changes = ok(store.apply(&thing, &disconnect(3, 1_800)).await, "apply");
    assert!(changes.connectivity, "same session, later");
    let state = ok(store.get_state(&thing).await, "get_state").unwrap_or_default();
    assert_eq!(
        state
            .connectivity
            .map(|c| (c.connected, c.disconnect_reason)),
        Some((false, Some("CONNECTION_LOST".to_owned())))
    );

    // Shadow delete resets the version epoch.
    let delete = |at| DeviceState {
        shadow_deleted_at: Some(at),
        ..DeviceState::default()
    };
    let changes = ok(store.apply(&thing, &delete(3_000)).await, "apply");
    assert!(changes.shadow, "delete applies");
    let state = ok(store.get_state(&thing).await, "get_state").unwrap_or_default();
    assert_eq!(state.shadow, None, "delete clears the document");
    assert_eq!(state.shadow_deleted_at, Some(3_000));
    assert_eq!(state.last_seen, Some(5_000), "delete leaves other concerns");
    let changes = ok(
        store.apply(&thing, &doc(1, 3_500, off.clone())).await,
        "apply",
    );
    assert!(changes.shadow, "recreated shadow (version 1) applies");
    let changes = ok(
        store.apply(&thing, &doc(2, 2_000, on.clone())).await,
        "apply",
    );
    assert!(!changes.shadow, "document from before the delete is stale");
    let changes = ok(store.apply(&thing, &delete(3_000)).await, "apply");
    assert!(!changes.shadow, "duplicate delete is a no-op");

    // A late delete older than the stored document keeps the document.
    let other = id(DeviceId::parse(format!("{prefix}-state-2")));
    ok(
        store.apply(&other, &doc(9, 9_000, on.clone())).await,
        "apply",
    );
    ok(
        store.apply(&other, &doc(1, 12_000, off.clone())).await,
        "apply",
    );
    let changes = ok(store.apply(&other, &delete(11_000)).await, "apply");
    assert!(changes.shadow, "late delete records the epoch");
    let state = ok(store.get_state(&other).await, "get_state").unwrap_or_default();
    assert_eq!(state.shadow.as_ref().map(|s| s.version), Some(1));
    assert_eq!(state.shadow_deleted_at, Some(11_000));
    let changes = ok(
        store.apply(&other, &doc(9, 9_000, on.clone())).await,
        "apply",
    );
    assert!(!changes.shadow);

    // Delete and recreation coalesced into one update.
    let mut both = delete(20_000);
    both.shadow = doc(1, 21_000, off.clone()).shadow;
    let changes = ok(store.apply(&other, &both).await, "apply");
    assert!(changes.shadow);
    let state = ok(store.get_state(&other).await, "get_state").unwrap_or_default();
    assert_eq!(state.shadow_deleted_at, Some(20_000));
    assert_eq!(state.shadow.map(|s| s.received_at), Some(21_000));

    // Telemetry: latest by receive time, payload intact.
    let product = id(ProductId::parse("thermo-x"));
    let telemetry = |at: u64, seq: u64| DeviceState {
        telemetry: Some(Telemetry {
            received_at: at,
            product: product.clone(),
            payload: object(&[
                ("seq", seq.into()),
                ("temperatureC", 21.25.into()),
                ("note", "ünïcode ✓".into()),
            ]),
        }),
        last_seen: Some(at),
        ..DeviceState::default()
    };
    let sensor = id(DeviceId::parse(format!("{prefix}-state-3")));
    ok(store.apply(&sensor, &telemetry(100, 2)).await, "apply");
    let changes = ok(store.apply(&sensor, &telemetry(50, 1)).await, "apply");
    assert_eq!(changes, Changes::default(), "older telemetry is a no-op");
    let state = ok(store.get_state(&sensor).await, "get_state").unwrap_or_default();
    assert_eq!(state.telemetry, telemetry(100, 2).telemetry);
    assert_eq!(state.last_seen, Some(100));
    // Same millisecond: the payload's own sequence number decides; a duplicate is a no-op.
    let changes = ok(store.apply(&sensor, &telemetry(100, 1)).await, "apply");
    assert!(!changes.telemetry, "same time, lower seq is a no-op");
    let changes = ok(store.apply(&sensor, &telemetry(100, 2)).await, "apply");
    assert!(!changes.telemetry, "duplicate is a no-op");
    let changes = ok(store.apply(&sensor, &telemetry(100, 3)).await, "apply");
    assert!(changes.telemetry, "same time, higher seq applies");

    // Concurrent writers: the newest last-seen wins whatever the interleaving.
    let racer = id(DeviceId::parse(format!("{prefix}-state-4")));
    let updates: Vec<DeviceState> = (1..=8u64)
        .map(|i| DeviceState {
            last_seen: Some(i * 10),
            shadow: doc(i, i * 10, on.clone()).shadow,
            ..DeviceState::default()
        })
        .collect();
    let writes = updates.iter().map(|u| store.apply(&racer, u));
    for result in join_all(writes).await {
        ok(result, "concurrent apply");
    }
    let state = ok(store.get_state(&racer).await, "get_state").unwrap_or_default();
    assert_eq!(state.last_seen, Some(80));
    assert_eq!(state.shadow.map(|s| s.version), Some(8));
}

/// The [`DeviceRegistry`] contract, including its separation from the [`StateStore`] when both
/// share a backing store (pass `state`).
pub async fn registry(registry: &dyn DeviceRegistry, prefix: &str) {
    let home = id(HouseholdId::parse(format!("{prefix}-home")));
    let cabin = id(HouseholdId::parse(format!("{prefix}-cabin")));
    let product = id(ProductId::parse("lamp-x"));
    let device = |n: usize, household: Option<&HouseholdId>| Device {
        id: id(DeviceId::parse(format!("{prefix}-dev-{n}"))),
        product: product.clone(),
        household: household.cloned(),
        name: format!("Lamp {n}"),
        device_type: DeviceType::Light,
        created_at: 1_700_000_000_000 + n as u64,
        serial: None,
        maker: None,
        claimed_at: None,
        claim_code_hash: None,
    };
    let missing = id(DeviceId::parse(format!("{prefix}-dev-missing")));
    assert_eq!(ok(registry.get_device(&missing).await, "get_device"), None);
    assert_eq!(
        ok(
            registry.rename_device(&missing, &home, "x").await,
            "rename_device"
        ),
        None
    );

    for n in 0..5 {
        ok(
            registry.put_device(&device(n, Some(&home))).await,
            "put_device",
        );
    }
    ok(
        registry.put_device(&device(5, Some(&cabin))).await,
        "put_device",
    );
    ok(registry.put_device(&device(6, None)).await, "put_device");
    assert_eq!(
        ok(
            registry.get_device(&device(2, Some(&home)).id).await,
            "get_device"
        ),
        Some(device(2, Some(&home)))
    );

    // Devices by household, paginated, in id order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = ok(
            registry
                .household_devices(&home, 2, cursor.as_deref())
                .await,
            "household_devices",
        );
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|d| d.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    let expected: Vec<DeviceId> = (0..5).map(|n| device(n, None).id).collect();
    assert_eq!(seen, expected, "all of the household's devices, no others");

    // Moving a device moves it between listings.
    ok(
        registry.put_device(&device(4, Some(&cabin))).await,
        "put_device",
    );
    let home_page = ok(registry.household_devices(&home, 10, None).await, "list");
    assert_eq!(home_page.items.len(), 4);
    assert_eq!(home_page.next, None);
    let cabin_page = ok(registry.household_devices(&cabin, 10, None).await, "list");
    let cabin_ids: Vec<DeviceId> = cabin_page.items.into_iter().map(|d| d.id).collect();
    assert_eq!(cabin_ids, vec![device(4, None).id, device(5, None).id]);

    // A rename applies only in the device's household, and shows in its listing.
    let renamed = ok(
        registry
            .rename_device(&device(4, None).id, &cabin, "Reading lamp")
            .await,
        "rename_device",
    );
    assert_eq!(
        renamed.as_ref().map(|d| d.name.as_str()),
        Some("Reading lamp")
    );
    assert_eq!(
        renamed.as_ref().and_then(|d| d.household.as_ref()),
        Some(&cabin)
    );
    let stale = ok(
        registry
            .rename_device(&device(4, None).id, &home, "Back home?")
            .await,
        "rename_device",
    );
    assert_eq!(stale, None, "not in that household: nothing changes");
    let stored = ok(registry.get_device(&device(4, None).id).await, "get_device");
    assert_eq!(stored, renamed);
    let cabin_page = ok(registry.household_devices(&cabin, 10, None).await, "list");
    assert_eq!(
        cabin_page.items.first().map(|d| d.name.as_str()),
        Some("Reading lamp")
    );
    let home_page = ok(registry.household_devices(&home, 10, None).await, "list");
    assert_eq!(
        home_page.items.len(),
        4,
        "the stale rename did not put it back"
    );

    // A transfer moves a device only from the household it is in, listings included.
    let four = device(4, None).id;
    assert_eq!(
        ok(
            registry.move_device(&four, &home, &cabin).await,
            "move_device"
        ),
        None,
        "not in home"
    );
    let moved = ok(
        registry.move_device(&four, &cabin, &home).await,
        "move_device",
    );
    assert_eq!(
        moved.as_ref().and_then(|d| d.household.as_ref()),
        Some(&home)
    );
    assert_eq!(
        moved.as_ref().map(|d| d.name.as_str()),
        Some("Reading lamp")
    );
    assert_eq!(ok(registry.get_device(&four).await, "get_device"), moved);
    let home_page = ok(registry.household_devices(&home, 10, None).await, "list");
    assert_eq!(home_page.items.len(), 5);
    let cabin_page = ok(registry.household_devices(&cabin, 10, None).await, "list");
    assert!(cabin_page.items.iter().all(|d| d.id != four));

    // Households and memberships.
    let household = Household {
        id: home.clone(),
        name: "Home".to_owned(),
    };
    ok(registry.put_household(&household).await, "put_household");
    assert_eq!(
        ok(registry.get_household(&home).await, "get_household"),
        Some(household)
    );
    let alice = id(UserId::parse(format!("{prefix}-alice")));
    let bob = id(UserId::parse(format!("{prefix}-bob")));
    for (user, household, role) in [
        (&alice, &home, Role::Owner),
        (&alice, &cabin, Role::Member),
        (&bob, &home, Role::Member),
    ] {
        let membership = Membership {
            user: user.clone(),
            household: household.clone(),
            role,
        };
        ok(registry.put_membership(&membership).await, "put_membership");
    }
    let mut roles: Vec<(HouseholdId, Role)> = ok(registry.memberships(&alice).await, "memberships")
        .into_iter()
        .map(|m| (m.household, m.role))
        .collect();
    roles.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        roles,
        vec![(cabin, Role::Member), (home.clone(), Role::Owner)]
    );
    assert_eq!(ok(registry.memberships(&bob).await, "memberships").len(), 1);
    let mut members: Vec<(UserId, Role)> = ok(registry.household_members(&home).await, "members")
        .into_iter()
        .map(|m| (m.user, m.role))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        members,
        vec![(alice.clone(), Role::Owner), (bob.clone(), Role::Member)]
    );

    // A role change replaces the membership; removal takes it out of both listings.
    let promoted = Membership {
        user: bob.clone(),
        household: home.clone(),
        role: Role::Owner,
    };
    ok(registry.put_membership(&promoted).await, "put_membership");
    assert_eq!(
        ok(registry.memberships(&bob).await, "memberships"),
        vec![promoted]
    );
    assert!(ok(
        registry.remove_membership(&bob, &home).await,
        "remove_membership"
    ));
    assert!(
        !ok(
            registry.remove_membership(&bob, &home).await,
            "remove_membership"
        ),
        "already gone"
    );
    assert!(ok(registry.memberships(&bob).await, "memberships").is_empty());
    let members: Vec<UserId> = ok(registry.household_members(&home).await, "members")
        .into_iter()
        .map(|m| m.user)
        .collect();
    assert_eq!(members, vec![alice]);
}

/// Registry and state records of one device never overwrite each other, and state is stored
/// for a device that is not registered yet.
pub async fn registry_and_state_are_separate(
    registry: &dyn DeviceRegistry,
    store: &dyn StateStore,
    prefix: &str,
) {
    let thing = id(DeviceId::parse(format!("{prefix}-sep-1")));
    let reported = object(&[("power", "on".into())]);
    let changes = ok(store.apply(&thing, &doc(1, 1_000, reported)).await, "apply");
    assert!(changes.shadow, "state of an unregistered device is stored");
    assert_eq!(ok(registry.get_device(&thing).await, "get_device"), None);

    let device = Device {
        id: thing.clone(),
        product: id(ProductId::parse("lamp-x")),
        household: Some(id(HouseholdId::parse(format!("{prefix}-sep-home")))),
        name: "Porch".to_owned(),
        device_type: DeviceType::Light,
        created_at: 1,
        serial: None,
        maker: None,
        claimed_at: None,
        claim_code_hash: None,
    };
    ok(registry.put_device(&device).await, "put_device");
    let state = ok(store.get_state(&thing).await, "get_state");
    assert_eq!(
        version(state.as_ref()),
        Some(1),
        "registering keeps the state"
    );

    let seen = DeviceState {
        last_seen: Some(2_000),
        ..DeviceState::default()
    };
    ok(store.apply(&thing, &seen).await, "apply");
    assert_eq!(
        ok(registry.get_device(&thing).await, "get_device"),
        Some(device),
        "state writes keep the registry record"
    );
}

/// Whether a backing store isolates concurrent transactions, so that the suites may race
/// requests against it. moto server does not (its `TransactWriteItems` is neither locked nor
/// isolated between requests): against it the racing steps run one after the other, and the
/// single-winner property rests on DynamoDB's documented transaction isolation and the
/// conditions the sequential steps do check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Races {
    /// Race concurrent requests (real isolation).
    Concurrent,
    /// Send the racing requests one after the other.
    Sequential,
}

/// Runs `requests` concurrently or one after the other.
async fn race<F: Future>(races: Races, requests: Vec<F>) -> Vec<F::Output> {
    match races {
        Races::Concurrent => join_all(requests).await,
        Races::Sequential => {
            let mut results = Vec::with_capacity(requests.len());
            for request in requests {
                results.push(request.await);
            }
            results
        }
    }
}

/// The [`Enrollment`] contract: registration with unique serials, single-use atomic claims,
/// release. `registry` and `enrollment` must be the same adapter.
pub async fn enrollment(
    registry: &dyn DeviceRegistry,
    enrollment: &dyn Enrollment,
    prefix: &str,
    races: Races,
) {
    let product = id(ProductId::parse(format!("{prefix}-lamp")));
    let maker = id(UserId::parse(format!("{prefix}-maker")));
    let home = id(HouseholdId::parse(format!("{prefix}-e-home")));
    let cabin = id(HouseholdId::parse(format!("{prefix}-e-cabin")));
    let unclaimed = |n: usize, product: &ProductId, serial: &str| Device {
        id: id(DeviceId::parse(format!("{prefix}-e-{n}"))),
        product: product.clone(),
        household: None,
        name: "Light".to_owned(),
        device_type: DeviceType::Light,
        created_at: 10,
        serial: Some(serial.to_owned()),
        maker: Some(maker.clone()),
        claimed_at: None,
        claim_code_hash: Some(format!("{prefix}-hash-{n}")),
    };
    let hash = |n: usize| format!("{prefix}-hash-{n}");

    let first = unclaimed(1, &product, "SN-1");
    ok(enrollment.register(&first).await, "register");
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device"),
        Some(first.clone())
    );
    // The same serial of the same product, or the same thing name: refused, nothing written.
    let twin = unclaimed(2, &product, "SN-1");
    assert_eq!(
        enrollment.register(&twin).await,
        Err(EnrollError::AlreadyRegistered)
    );
    assert_eq!(ok(registry.get_device(&twin.id).await, "get_device"), None);
    let renamed = Device {
        serial: Some("SN-other".to_owned()),
        ..first.clone()
    };
    assert_eq!(
        enrollment.register(&renamed).await,
        Err(EnrollError::AlreadyRegistered)
    );
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device"),
        Some(first.clone())
    );
    // The same serial of another product is another device.
    let other_product = id(ProductId::parse(format!("{prefix}-plug")));
    ok(
        enrollment
            .register(&unclaimed(3, &other_product, "SN-1"))
            .await,
        "register",
    );

    assert_eq!(
        enrollment
            .claim("no-such-hash", &home, Some("Porch"), 20)
            .await
            .map(|d| d.id),
        Err(EnrollError::UnknownCode)
    );
    let claimed = ok(
        enrollment.claim(&hash(1), &home, Some("Porch"), 20).await,
        "claim",
    );
    assert_eq!(claimed.household.as_ref(), Some(&home));
    assert_eq!(claimed.name, "Porch");
    assert_eq!(claimed.claimed_at, Some(20));
    assert_eq!(claimed.serial.as_deref(), Some("SN-1"));
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device"),
        Some(claimed.clone())
    );
    let listed = ok(
        registry.household_devices(&home, 10, None).await,
        "household_devices",
    );
    assert_eq!(listed.items, vec![claimed.clone()]);
    // A code works once.
    assert_eq!(
        enrollment
            .claim(&hash(1), &cabin, Some("Mine"), 30)
            .await
            .map(|d| d.id),
        Err(EnrollError::UnknownCode)
    );
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device"),
        Some(claimed)
    );

    // Concurrent claims with one code: exactly one wins.
    let contested = unclaimed(4, &product, "SN-4");
    ok(enrollment.register(&contested).await, "register");
    let households: Vec<HouseholdId> = (0..6)
        .map(|i| id(HouseholdId::parse(format!("{prefix}-e-race-{i}"))))
        .collect();
    let code = hash(4);
    let results = race(
        races,
        households
            .iter()
            .map(|h| enrollment.claim(&code, h, None, 40))
            .collect(),
    )
    .await;
    let winners: Vec<&Device> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || r == &Err(EnrollError::UnknownCode))
    );
    assert_eq!(
        winners[0].name, "Light",
        "no name given: the registered name stays"
    );
    let stored = ok(registry.get_device(&contested.id).await, "get_device");
    assert_eq!(
        stored.as_ref().and_then(|d| d.household.clone()),
        winners[0].household.clone()
    );

    // Release only from the household it is in: a stale delete cannot release it.
    assert_eq!(
        enrollment.release(&first.id, &cabin).await.map(|d| d.id),
        Err(EnrollError::UnknownDevice)
    );
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device").and_then(|d| d.household),
        Some(home.clone())
    );
    // Release: out of the household, claimable again with the same code.
    let released = ok(enrollment.release(&first.id, &home).await, "release");
    assert_eq!(released.household, None);
    assert_eq!(released.claimed_at, None);
    assert_eq!(
        released.name, "Light",
        "the next owner does not see the old name"
    );
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device"),
        Some(released)
    );
    let listed = ok(
        registry.household_devices(&home, 10, None).await,
        "household_devices",
    );
    assert!(listed.items.is_empty(), "{:?}", listed.items);
    let reclaimed = ok(
        enrollment
            .claim(&hash(1), &cabin, Some("Cabin lamp"), 50)
            .await,
        "claim",
    );
    assert_eq!(reclaimed.household.as_ref(), Some(&cabin));
    // The previous owner's repeated delete does nothing to the next owner's device.
    assert_eq!(
        enrollment.release(&first.id, &home).await.map(|d| d.id),
        Err(EnrollError::UnknownDevice)
    );
    assert_eq!(
        ok(registry.get_device(&first.id).await, "get_device").and_then(|d| d.household),
        Some(cabin.clone())
    );
    let missing = id(DeviceId::parse(format!("{prefix}-e-missing")));
    assert_eq!(
        enrollment.release(&missing, &home).await.map(|d| d.id),
        Err(EnrollError::UnknownDevice)
    );
}

/// Run on a reopened store after [`enrollment`] with the same `prefix`: serials, claim codes
/// and claims were persisted.
pub async fn enrollment_after_reopen(
    registry: &dyn DeviceRegistry,
    enrollment: &dyn Enrollment,
    prefix: &str,
) {
    let product = id(ProductId::parse(format!("{prefix}-lamp")));
    let cabin = id(HouseholdId::parse(format!("{prefix}-e-cabin")));
    let again = Device {
        id: id(DeviceId::parse(format!("{prefix}-e-9"))),
        product,
        household: None,
        name: "Light".to_owned(),
        device_type: DeviceType::Light,
        created_at: 10,
        serial: Some("SN-1".to_owned()),
        maker: None,
        claimed_at: None,
        claim_code_hash: Some(format!("{prefix}-hash-9")),
    };
    assert_eq!(
        enrollment.register(&again).await,
        Err(EnrollError::AlreadyRegistered)
    );
    let first = id(DeviceId::parse(format!("{prefix}-e-1")));
    let stored = ok(registry.get_device(&first).await, "get_device");
    assert_eq!(stored.and_then(|d| d.household), Some(cabin.clone()));
    let third = ok(
        enrollment
            .claim(&format!("{prefix}-hash-3"), &cabin, Some("Plug"), 60)
            .await,
        "claim a code registered before the reopen",
    );
    assert_eq!(third.id.as_str(), format!("{prefix}-e-3"));
    assert_eq!(
        enrollment
            .claim(&format!("{prefix}-hash-1"), &cabin, None, 70)
            .await
            .map(|d| d.id),
        Err(EnrollError::UnknownCode),
        "a code consumed before the reopen stays consumed"
    );
}

/// The [`Invitations`](crate::Invitations) contract: storage, listings by household and by
/// e-mail, and single-use closing (accepting creates the membership).
pub async fn invitations(
    registry: &dyn DeviceRegistry,
    invitations: &dyn crate::Invitations,
    prefix: &str,
    races: Races,
) {
    use crate::InvitationError;
    use hearth_domain::device::InvitationId;
    use hearth_domain::sharing::{Invitation, InvitationStatus};

    let home = id(HouseholdId::parse(format!("{prefix}-i-home")));
    let cabin = id(HouseholdId::parse(format!("{prefix}-i-cabin")));
    let alice = id(UserId::parse(format!("{prefix}-alice")));
    let bob = id(UserId::parse(format!("{prefix}-bob")));
    let bob_email = format!("{prefix}-bob@example.com");
    let invitation = |n: usize, household: &HouseholdId, email: &str, role: Role| Invitation {
        id: id(InvitationId::parse(format!("{prefix}-inv-{n}"))),
        household: household.clone(),
        email: email.to_owned(),
        role,
        invited_by: alice.clone(),
        created_at: 1_000,
        expires_at: 10_000,
        status: InvitationStatus::Pending,
    };
    let to_bob = invitation(1, &home, &bob_email, Role::Member);
    let to_carol = invitation(
        2,
        &home,
        &format!("{prefix}-carol@example.com"),
        Role::Owner,
    );
    let cabin_bob = invitation(3, &cabin, &bob_email, Role::Owner);
    for i in [&to_bob, &to_carol, &cabin_bob] {
        ok(invitations.create_invitation(i).await, "create_invitation");
    }
    assert_eq!(
        ok(invitations.invitation(&to_bob.id).await, "invitation"),
        Some(to_bob.clone())
    );
    let missing = id(InvitationId::parse(format!("{prefix}-inv-missing")));
    assert_eq!(
        ok(invitations.invitation(&missing).await, "invitation"),
        None
    );
    let ids = |list: Vec<Invitation>| list.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ok(
            invitations.household_invitations(&home).await,
            "household_invitations"
        )),
        vec![to_bob.id.clone(), to_carol.id.clone()]
    );
    assert_eq!(
        ids(ok(
            invitations.invitations_for(&bob_email).await,
            "invitations_for"
        )),
        vec![to_bob.id.clone(), cabin_bob.id.clone()]
    );

    // Accepting makes bob a member, once.
    let accepted = InvitationStatus::Accepted {
        by: bob.clone(),
        at: 2_000,
    };
    let closed = ok(
        invitations
            .close_invitation(&to_bob.id, accepted.clone(), 2_000)
            .await,
        "close_invitation",
    );
    assert_eq!(closed.status, accepted);
    let memberships = ok(registry.memberships(&bob).await, "memberships");
    assert_eq!(
        memberships,
        vec![Membership {
            user: bob.clone(),
            household: home.clone(),
            role: Role::Member
        }]
    );
    let again = InvitationStatus::Declined { at: 2_500 };
    assert_eq!(
        invitations
            .close_invitation(&to_bob.id, again, 2_500)
            .await
            .map(|i| i.id),
        Err(InvitationError::NotOpen)
    );
    assert_eq!(
        ok(invitations.invitation(&to_bob.id).await, "invitation").map(|i| i.status),
        Some(accepted)
    );
    // Expired: no longer open, nothing changes.
    let late = InvitationStatus::Accepted {
        by: bob.clone(),
        at: 10_000,
    };
    assert_eq!(
        invitations
            .close_invitation(&cabin_bob.id, late, 10_000)
            .await
            .map(|i| i.id),
        Err(InvitationError::NotOpen)
    );
    assert_eq!(ok(registry.memberships(&bob).await, "memberships").len(), 1);
    assert_eq!(
        invitations
            .close_invitation(&missing, InvitationStatus::Revoked { at: 1 }, 1)
            .await
            .map(|i| i.id),
        Err(InvitationError::Unknown)
    );

    // Concurrent closes of one invitation: exactly one wins.
    let statuses = [
        InvitationStatus::Revoked { at: 3_000 },
        InvitationStatus::Declined { at: 3_000 },
        InvitationStatus::Revoked { at: 3_001 },
        InvitationStatus::Declined { at: 3_001 },
    ];
    let results = race(
        races,
        statuses
            .iter()
            .map(|s| invitations.close_invitation(&to_carol.id, s.clone(), 3_000))
            .collect(),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || r == &Err(InvitationError::NotOpen))
    );
}

/// The [`DeadLetterSink`] contract: every letter is accepted, one result per letter. Returns
/// the letters sent so the caller can check its backing queue.
pub async fn dead_letters(sink: &dyn DeadLetterSink) -> Vec<DeadLetter> {
    let letters = vec![
        DeadLetter {
            message_id: "m-1".to_owned(),
            body: "not json".to_owned(),
            reason: "not-json".to_owned(),
            detail: "expected value at line 1 column 1".to_owned(),
        },
        DeadLetter {
            message_id: "m-2".to_owned(),
            body: "{\"note\": \"ünïcode ✓\"}".to_owned(),
            reason: "missing-envelope".to_owned(),
            detail: "envelope field `topic` is missing".to_owned(),
        },
        DeadLetter {
            message_id: "m-3".to_owned(),
            body: "x".repeat(64 * 1024),
            reason: "oversize".to_owned(),
            detail: "too big".to_owned(),
        },
    ];
    let results = sink.send(&letters).await;
    assert_eq!(results.len(), letters.len(), "one result per letter");
    for result in results {
        ok(result, "dead letter");
    }
    assert!(sink.send(&[]).await.is_empty());
    letters
}

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
