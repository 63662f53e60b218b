//! The [`Enrollment`] contract: registration, single-use claims, release, persistence.

use super::*;

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
