//! The [`StateStore`] contract.

use super::*;

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
