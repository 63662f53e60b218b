//! The [`DeviceRegistry`] contract, and its separation from the state projection.

use super::*;

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
