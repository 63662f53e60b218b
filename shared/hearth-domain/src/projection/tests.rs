use super::*;
use proptest::prelude::*;
use serde_json::json;

fn doc(version: u64, received_at: u64, power: &str) -> DeviceState {
    let reported = json!({ "power": power }).as_object().cloned();
    DeviceState {
        shadow: Some(ShadowProjection {
            version,
            received_at,
            timestamp: received_at / 1000,
            desired: None,
            reported,
            client_token: None,
        }),
        ..DeviceState::default()
    }
}

fn deleted(at: u64) -> DeviceState {
    DeviceState {
        shadow_deleted_at: Some(at),
        ..DeviceState::default()
    }
}

fn presence(connected: bool, version_number: u64, timestamp: u64) -> DeviceState {
    DeviceState {
        connectivity: Some(Connectivity {
            connected,
            event: if connected {
                PresenceKind::Connected
            } else {
                PresenceKind::Disconnected
            },
            version_number,
            timestamp,
            disconnect_reason: (!connected).then(|| "CONNECTION_LOST".to_owned()),
        }),
        ..DeviceState::default()
    }
}

fn seen(at: u64) -> DeviceState {
    DeviceState {
        last_seen: Some(at),
        ..DeviceState::default()
    }
}

fn version(state: &DeviceState) -> Option<u64> {
    state.shadow.as_ref().map(|s| s.version)
}

#[test]
fn shadow_advances_only_to_higher_versions() {
    let mut state = DeviceState::default();
    assert!(state.merge(&doc(2, 200, "on")).shadow);
    assert!(
        !state.merge(&doc(1, 100, "off")).shadow,
        "older version is a no-op"
    );
    assert!(
        !state.merge(&doc(2, 200, "on")).shadow,
        "duplicate is a no-op"
    );
    assert_eq!(version(&state), Some(2));
    assert!(state.merge(&doc(3, 300, "off")).shadow);
    assert_eq!(version(&state), Some(3));
}

#[test]
fn delete_resets_the_version_epoch() {
    let mut state = DeviceState::default();
    state.merge(&doc(7, 700, "on"));
    assert!(state.merge(&deleted(800)).shadow);
    assert_eq!(state.shadow, None);
    // The recreated shadow starts at version 1 again and is accepted.
    assert!(state.merge(&doc(1, 900, "off")).shadow);
    assert!(state.merge(&doc(2, 950, "on")).shadow);
    assert_eq!(version(&state), Some(2));
    // A late document from before the delete is stale.
    assert!(!state.merge(&doc(8, 790, "off")).shadow);
    // A duplicate delete is a no-op.
    assert!(!state.merge(&deleted(800)).shadow);
    assert_eq!(version(&state), Some(2));
}

#[test]
fn recreated_shadow_is_accepted_before_its_delete_arrives() {
    let mut state = DeviceState::default();
    state.merge(&doc(7, 700, "on"));
    // Version 1 of the new shadow overtakes the delete message.
    assert!(state.merge(&doc(1, 900, "off")).shadow);
    assert_eq!(version(&state), Some(1));
    // The late delete records the epoch but keeps the newer document.
    assert!(state.merge(&deleted(800)).shadow);
    assert_eq!(version(&state), Some(1));
    assert!(!state.merge(&doc(7, 700, "on")).shadow);
}

#[test]
fn a_stale_concern_never_blocks_another() {
    let mut state = DeviceState::default();
    state.merge(&doc(5, 500, "on"));
    state.merge(&presence(true, 3, 400));
    state.merge(&seen(500));
    // One update: an old shadow, a newer presence, an older last-seen.
    let mut update = doc(4, 450, "off");
    update.connectivity = presence(false, 4, 600).connectivity;
    update.last_seen = Some(450);
    let changes = state.merge(&update);
    assert_eq!(
        changes,
        Changes {
            connectivity: true,
            ..Changes::default()
        }
    );
    assert_eq!(version(&state), Some(5));
    assert_eq!(state.connectivity.map(|c| c.connected), Some(false));
    assert_eq!(state.last_seen, Some(500));
}

#[test]
fn presence_orders_by_version_number_then_time_then_disconnect() {
    let mut state = DeviceState::default();
    state.merge(&presence(true, 5, 1000));
    assert!(
        !state.merge(&presence(false, 4, 2000)).connectivity,
        "older session"
    );
    assert!(
        state.merge(&presence(false, 5, 1000)).connectivity,
        "same session: disconnect wins"
    );
    assert!(!state.merge(&presence(true, 5, 1000)).connectivity);
    assert!(
        state.merge(&presence(true, 6, 500)).connectivity,
        "new session"
    );
    assert_eq!(state.connectivity.map(|c| c.connected), Some(true));
}

#[test]
fn projection_delta_is_the_shadow_delta() {
    let p = ShadowProjection {
        version: 1,
        received_at: 1,
        timestamp: 1,
        desired: json!({"power": "on", "brightness": 10})
            .as_object()
            .cloned(),
        reported: json!({"power": "on"}).as_object().cloned(),
        client_token: None,
    };
    assert_eq!(p.delta(), json!({"brightness": 10}).as_object().cloned());
}

fn concern_update() -> impl Strategy<Value = DeviceState> {
    prop_oneof![
        (1u64..6, 0u64..40).prop_map(|(v, t)| doc(
            v,
            v * 100 + t,
            if t % 2 == 0 { "on" } else { "off" }
        )),
        (0u64..4, 0u64..50, any::<bool>()).prop_map(|(v, t, c)| presence(c, v, t)),
        (0u64..1000).prop_map(seen),
    ]
}

proptest! {
    /// Without deletes, the projection does not depend on the order messages arrive in, and
    /// coalescing a batch before merging gives what merging one by one gives.
    #[test]
    fn order_does_not_matter_without_deletes(
        updates in prop::collection::vec(concern_update(), 1..12),
        seed in any::<u64>(),
    ) {
        // Versions within one epoch carry distinct content: keep one document per version.
        let mut by_version = std::collections::BTreeMap::new();
        let updates: Vec<DeviceState> = updates
            .into_iter()
            .filter(|u| match &u.shadow {
                Some(s) => by_version.insert(s.version, s.received_at).is_none(),
                None => true,
            })
            .collect();
        let mut in_order = DeviceState::default();
        for u in &updates {
            in_order.merge(u);
        }
        let mut shuffled = updates.clone();
        let len = shuffled.len();
        let mut x = seed;
        for i in (1..len).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let mut reordered = DeviceState::default();
        for u in &shuffled {
            reordered.merge(u);
        }
        prop_assert_eq!(&in_order, &reordered);

        let mut coalesced = DeviceState::default();
        for u in &shuffled {
            coalesced.merge(u);
        }
        let mut stored = DeviceState::default();
        stored.merge(&coalesced);
        prop_assert_eq!(&stored, &in_order);
    }

    /// Merging the same update twice changes nothing the second time.
    #[test]
    fn merge_is_idempotent(updates in prop::collection::vec(concern_update(), 1..8), again in 0usize..8) {
        let mut state = DeviceState::default();
        for u in &updates {
            state.merge(u);
        }
        let replay = &updates[again % updates.len()];
        let before = state.clone();
        let changes = state.merge(replay);
        prop_assert!(!changes.any());
        prop_assert_eq!(before, state);
    }
}
