use super::*;
use serde_json::json;

fn parse_value(v: &Value) -> Result<Parsed, MessageError> {
    parse(&v.to_string())
}

fn message(v: Value) -> DeviceMessage {
    match parse_value(&v) {
        Ok(Parsed::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn classifies_shadow_documents() {
    let m = message(json!({
        "previous": null,
        "current": {"state": {"reported": {"power": "on"}}, "metadata": {"reported": {"power": {"timestamp": 5}}}, "version": 1},
        "timestamp": 5,
        "thing": "lamp-1", "topic": "$aws/things/lamp-1/shadow/update/documents", "received_at": 5001
    }));
    assert_eq!(m.thing().as_str(), "lamp-1");
    let update = m.into_update();
    let shadow = update
        .shadow
        .as_ref()
        .map(|s| (s.version, s.received_at, s.timestamp));
    assert_eq!(shadow, Some((1, 5001, 5)));
    assert_eq!(update.last_seen, Some(5001), "the device reported");
}

#[test]
fn desired_only_update_does_not_advance_last_seen() {
    let m = message(json!({
        "previous": {"state": {"reported": {"power": "on"}}, "metadata": {"reported": {"power": {"timestamp": 5}}}, "version": 1},
        "current": {"state": {"desired": {"power": "off"}, "reported": {"power": "on"}},
                    "metadata": {"desired": {"power": {"timestamp": 6}}, "reported": {"power": {"timestamp": 5}}}, "version": 2},
        "timestamp": 6,
        "thing": "lamp-1", "topic": "$aws/things/lamp-1/shadow/update/documents", "received_at": 6001
    }));
    assert_eq!(m.into_update().last_seen, None);
}

#[test]
fn classifies_shadow_delete() {
    let m = message(json!({
        "version": 7, "timestamp": 9,
        "thing": "lamp-1", "topic": "$aws/things/lamp-1/shadow/delete/accepted", "received_at": 9000
    }));
    assert!(matches!(m, DeviceMessage::ShadowDeleted { ref deleted, .. } if deleted.version == 7));
    assert_eq!(m.into_update().shadow_deleted_at, Some(9000));
}

#[test]
fn classifies_telemetry_direct_and_basic_ingest() {
    for topic in [
        "dt/thermo-x/th-1/telemetry",
        "$aws/rules/hearth_telemetry/dt/thermo-x/th-1/telemetry",
    ] {
        let m = message(json!({
            "temperatureC": 21.5, "seq": 3,
            "thing": "th-1", "topic": topic, "received_at": 100
        }));
        let DeviceMessage::Telemetry {
            product, payload, ..
        } = &m
        else {
            panic!("not telemetry: {m:?}")
        };
        assert_eq!(product.as_str(), "thermo-x");
        assert_eq!(
            Value::Object(payload.clone()),
            json!({"temperatureC": 21.5, "seq": 3})
        );
        assert_eq!(m.into_update().last_seen, Some(100));
    }
}

#[test]
fn classifies_presence_and_keeps_duplicate_clientid_connected() {
    let connected = message(json!({
        "clientId": "lamp-1", "timestamp": 1000, "eventType": "connected", "versionNumber": 3,
        "ipAddress": "192.0.2.1", "sessionIdentifier": "s", "principalIdentifier": "p",
        "thing": "lamp-1", "topic": "$aws/events/presence/connected/lamp-1", "received_at": 1001
    }));
    let conn = connected.into_update().connectivity;
    assert_eq!(
        conn.map(|c| (c.connected, c.version_number)),
        Some((true, 3))
    );

    let replaced = message(json!({
        "clientId": "lamp-1", "timestamp": 2000, "eventType": "disconnected", "versionNumber": 3,
        "clientInitiatedDisconnect": false, "disconnectReason": "DUPLICATE_CLIENTID",
        "thing": "lamp-1", "topic": "$aws/events/presence/disconnected/lamp-1", "received_at": 2001
    }));
    let conn = replaced.into_update().connectivity;
    assert_eq!(
        conn.map(|c| (c.connected, c.disconnect_reason)),
        Some((true, Some(DUPLICATE_CLIENTID.to_owned())))
    );

    let lost = message(json!({
        "clientId": "lamp-1", "timestamp": 3000, "eventType": "disconnected", "versionNumber": 4,
        "disconnectReason": "CONNECTION_LOST",
        "thing": "lamp-1", "topic": "$aws/events/presence/disconnected/lamp-1", "received_at": 3001
    }));
    assert_eq!(
        lost.into_update().connectivity.map(|c| c.connected),
        Some(false)
    );
}

#[test]
fn ignores_presence_of_clients_that_are_not_things() {
    let parsed = parse_value(&json!({
        "clientId": "app#42", "timestamp": 1, "eventType": "connected", "versionNumber": 0,
        "thing": "app#42", "topic": "$aws/events/presence/connected/app#42", "received_at": 1
    }));
    assert!(matches!(parsed, Ok(Parsed::Ignored(_))));
}

#[test]
fn rejects_bad_messages_with_stable_reasons() {
    let cases = vec![
        ("not json".to_owned(), "not-json"),
        ("[1,2]".to_owned(), "not-an-object"),
        (
            json!({"topic": "dt/p/t/telemetry", "received_at": 1}).to_string(),
            "missing-envelope",
        ),
        (
            json!({"topic": "dt/p/t/telemetry", "thing": "t"}).to_string(),
            "missing-envelope",
        ),
        (
            json!({"topic": "dt/p/t/telemetry", "thing": "t", "received_at": "soon"}).to_string(),
            "missing-envelope",
        ),
        (
            json!({"topic": "cmd/p/t/reboot", "thing": "t", "received_at": 1}).to_string(),
            "unknown-topic",
        ),
        (
            json!({"topic": "$aws/things/t/shadow/name/x/update/documents", "thing": "t", "received_at": 1})
                .to_string(),
            "unknown-topic",
        ),
        (
            json!({"topic": "dt/p/t/telemetry", "thing": "other", "received_at": 1}).to_string(),
            "thing-mismatch",
        ),
        (
            json!({"topic": "dt/p!/t/telemetry", "thing": "t", "received_at": 1}).to_string(),
            "invalid-id",
        ),
        (
            json!({"topic": "$aws/things/t/shadow/update/documents", "thing": "t", "received_at": 1, "current": 3})
                .to_string(),
            "invalid-shape",
        ),
        (
            json!({"topic": "$aws/things/t/shadow/delete/accepted", "thing": "t", "received_at": 1})
                .to_string(),
            "invalid-shape",
        ),
        (
            json!({"topic": "$aws/events/presence/connected/t", "thing": "t", "received_at": 1,
                "clientId": "t", "timestamp": 1, "eventType": "disconnected", "versionNumber": 1})
            .to_string(),
            "invalid-shape",
        ),
        (
            format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_MESSAGE_BYTES)),
            "oversize",
        ),
    ];
    for (body, reason) in cases {
        match parse(&body) {
            Err(e) => assert_eq!(e.reason(), reason, "{body:.120}: {e}"),
            Ok(p) => panic!("{body:.120} parsed as {p:?}"),
        }
    }
}

#[test]
fn a_message_update_is_what_merging_it_into_nothing_gives() {
    // The state processor takes a device's first message of a batch as its coalesced update
    // without merging it into an empty state: that must change nothing.
    let messages = [
        json!({"previous": null,
               "current": {"state": {"desired": {"power": "off"}, "reported": {"power": "on"}},
                           "metadata": {"reported": {"power": {"timestamp": 5}}}, "version": 1},
               "timestamp": 5,
               "thing": "lamp-1", "topic": "$aws/things/lamp-1/shadow/update/documents", "received_at": 5001}),
        json!({"previous": {"state": {"reported": {"power": "on"}}, "metadata": {"reported": {"power": {"timestamp": 5}}}, "version": 4},
               "current": {"state": {"desired": {"power": "off"}, "reported": {"power": "on"}},
                           "metadata": {"desired": {"power": {"timestamp": 6}}, "reported": {"power": {"timestamp": 5}}}, "version": 5},
               "timestamp": 6,
               "thing": "lamp-1", "topic": "$aws/things/lamp-1/shadow/update/documents", "received_at": 6001}),
        json!({"version": 7, "timestamp": 9,
               "thing": "lamp-1", "topic": "$aws/things/lamp-1/shadow/delete/accepted", "received_at": 9000}),
        json!({"temperatureC": 21.5, "seq": 3,
               "thing": "th-1", "topic": "dt/thermo-x/th-1/telemetry", "received_at": 100}),
        json!({"clientId": "lamp-1", "timestamp": 2000, "eventType": "disconnected", "versionNumber": 3,
               "clientInitiatedDisconnect": false, "disconnectReason": "DUPLICATE_CLIENTID",
               "thing": "lamp-1", "topic": "$aws/events/presence/disconnected/lamp-1", "received_at": 2001}),
    ];
    for body in messages {
        let update = message(body.clone()).into_update();
        let mut merged = DeviceState::default();
        merged.merge(&update);
        assert_eq!(merged, update, "{body}");
    }
}
