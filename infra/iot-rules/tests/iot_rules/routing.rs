//! Real messages through the real template, and routing behaviour on inline templates.

use serde_json::{Value, json};

use super::{json, parse, real};

const NOW: u64 = 1_732_440_000_123;

/// Routes through the real template; the one message it must produce, to StateQueue.
fn state_message(topic: &str, payload: &Value, client_id: &str) -> Value {
    let routing = real();
    let bytes = payload.to_string();
    let routed = routing.route(topic, bytes.as_bytes(), client_id, NOW);
    let [(queue, body)] = routed.as_slice() else {
        panic!("{topic}: expected one message, got {routed:?}");
    };
    assert_eq!(*queue, "StateQueue");
    json(body)
}

/// `payload` with the envelope the rules add.
fn enveloped(payload: &Value, thing: &str, topic: &str) -> Value {
    let mut expected = payload.clone();
    if let Some(fields) = expected.as_object_mut() {
        fields.insert("thing".to_owned(), json!(thing));
        fields.insert("topic".to_owned(), json!(topic));
        fields.insert("received_at".to_owned(), json!(NOW));
    }
    expected
}

#[test]
fn shadow_documents_get_the_envelope() {
    let payload = json!({
        "previous": null,
        "current": {"state": {"reported": {"power": "on"}}, "metadata": {}, "version": 2},
        "timestamp": 1_732_440_000
    });
    let topic = "$aws/things/lamp-1/shadow/update/documents";
    assert_eq!(
        state_message(topic, &payload, "iot-shadow"),
        enveloped(&payload, "lamp-1", topic)
    );
}

#[test]
fn shadow_deletes_get_the_envelope() {
    let payload = json!({"version": 3, "timestamp": 1_732_440_001});
    let topic = "$aws/things/lamp-1/shadow/delete/accepted";
    assert_eq!(
        state_message(topic, &payload, "lamp-1"),
        enveloped(&payload, "lamp-1", topic)
    );
}

#[test]
fn telemetry_is_the_same_through_the_broker_and_basic_ingest() {
    let payload = json!({"seq": 41, "temperatureC": 21.4, "thing": "spoofed"});
    let topic = "dt/p/t1/telemetry";
    let expected = enveloped(&payload, "t1", topic);
    assert_eq!(state_message(topic, &payload, "t1"), expected);
    assert_eq!(
        state_message(
            "$aws/rules/hearth_telemetry/dt/p/t1/telemetry",
            &payload,
            "t1"
        ),
        expected
    );
}

#[test]
fn presence_events_name_the_client() {
    for kind in ["connected", "disconnected"] {
        let payload = json!({"clientId": "c1", "eventType": kind, "versionNumber": 7});
        let topic = format!("$aws/events/presence/{kind}/c1");
        assert_eq!(
            state_message(&topic, &payload, "iot-lifecycle"),
            enveloped(&payload, "c1", &topic)
        );
    }
}

#[test]
fn other_topics_route_nowhere() {
    let routing = real();
    let payload = br#"{"a":1}"#;
    for topic in [
        "cmd/p/t1/telemetry",
        "dt/p/t1/telemetry/extra",
        "dt/p/telemetry",
        "$aws/things/lamp-1/shadow/update/accepted",
        "$aws/things/lamp-1/shadow/name/n/update/documents",
        "$aws/events/presence/connected",
        "$aws/rules/unknown_rule/dt/p/t1/telemetry",
        "$aws/rules/hearth_telemetr/dt/p/t1/telemetry",
        "$aws/rules",
    ] {
        assert_eq!(routing.route(topic, payload, "c", NOW), vec![], "{topic}");
    }
}

#[test]
fn basic_ingest_ignores_the_from_filter_and_strips_the_prefix() {
    // AWS IoT documents FROM as optional for Basic Ingest: the rule runs whatever the topic.
    let routing = real();
    let routed = routing.route("$aws/rules/hearth_telemetry/x/y", b"{}", "c", NOW);
    let [(_, body)] = routed.as_slice() else {
        panic!("expected one message, got {routed:?}");
    };
    assert_eq!(json(body), json!({"topic": "x/y", "received_at": NOW}));
    let routed = routing.route("$aws/rules/hearth_telemetry", b"{}", "c", NOW);
    let [(_, body)] = routed.as_slice() else {
        panic!("expected one message, got {routed:?}");
    };
    assert_eq!(json(body), json!({"topic": "", "received_at": NOW}));
}

#[test]
fn a_payload_that_is_not_a_json_object_gets_no_envelope() {
    let routing = real();
    for payload in [
        &b"\x00\x01binary"[..],
        b"80",
        b"[1,2]",
        b"{\"a\":",
        b"\"text\"",
    ] {
        assert_eq!(
            routing.route("dt/p/t1/telemetry", payload, "t1", NOW),
            vec![],
            "{payload:?}"
        );
    }
    // An empty payload reads as `{}`.
    let routed = routing.route("dt/p/t1/telemetry", b"", "t1", NOW);
    let [(_, body)] = routed.as_slice() else {
        panic!("expected one message, got {routed:?}");
    };
    assert_eq!(
        json(body),
        json!({"thing": "t1", "topic": "dt/p/t1/telemetry", "received_at": NOW})
    );
}

#[test]
fn topic_rule_route_matches_like_routing() {
    let routing = real();
    let Some(rule) = routing.rule("hearth_telemetry") else {
        panic!("no telemetry rule");
    };
    let payload = br#"{"seq":1}"#;
    let direct = rule.route("dt/p/t1/telemetry", payload, "t1", NOW);
    let ingest = rule.route(
        "$aws/rules/hearth_telemetry/dt/p/t1/telemetry",
        payload,
        "t1",
        NOW,
    );
    assert!(direct.is_some());
    assert_eq!(direct, ingest);
    assert_eq!(
        rule.route("$aws/rules/other/dt/p/t1/telemetry", payload, "t1", NOW),
        None
    );
    assert_eq!(rule.route("dt/p/t1/status", payload, "t1", NOW), None);
}

const TWO_RULES: &str = r"
Resources:
  A:
    Type: AWS::SQS::Queue
  B:
    Type: AWS::SQS::Queue
  Both:
    Type: AWS::IoT::TopicRule
    Properties:
      RuleName: both
      TopicRulePayload:
        AwsIotSqlVersion: '2016-03-23'
        Sql: SELECT v, clientid() AS c FROM 'x/#' WHERE v > 1
        Actions:
          - Sqs:
              QueueUrl: !Ref A
          - Sqs:
              QueueUrl: !Ref B
              UseBase64: true
  Off:
    Type: AWS::IoT::TopicRule
    Properties:
      RuleName: off
      TopicRulePayload:
        AwsIotSqlVersion: '2016-03-23'
        RuleDisabled: true
        Sql: SELECT * FROM 'x/#'
        Actions:
          - Sqs:
              QueueUrl: !Ref A
";

#[test]
fn every_action_of_every_enabled_matching_rule_gets_the_message() {
    let routing = parse(TWO_RULES);
    let routed = routing.route("x/1", br#"{"v":2,"w":3}"#, "dev", NOW);
    let expected = br#"{"v":2,"c":"dev"}"#;
    assert_eq!(
        routed,
        vec![
            ("A", expected.to_vec()),
            ("B", b"eyJ2IjoyLCJjIjoiZGV2In0=".to_vec()),
        ]
    );
    assert_eq!(routing.route("x/1", br#"{"v":1}"#, "dev", NOW), vec![]);
    assert_eq!(
        routing.route("$aws/rules/off/x/1", b"{}", "dev", NOW),
        vec![]
    );
    let Some(off) = routing.rule("off") else {
        panic!("no rule off");
    };
    assert_eq!(off.route("x/1", b"{}", "dev", NOW), None);
}

#[test]
fn the_routing_table_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + 'static>(_: &T) {}
    shared(&real());
}

#[test]
fn duplicate_payload_keys_read_as_the_last_one() {
    let routing = parse(TWO_RULES);
    let routed = routing.route("x/1", br#"{"v":0,"v":5}"#, "dev", NOW);
    assert_eq!(
        routed.first().map(|(_, body)| json(body)),
        Some(json!({"v": 5, "c": "dev"}))
    );
}
