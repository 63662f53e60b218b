//! The evaluator on AWS's documented examples and on the template's device policy.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

fn policy(document: Value) -> Policy {
    match Policy::from_json(&document) {
        Ok(policy) => policy,
        Err(e) => panic!("{e}"),
    }
}

fn thing(name: &str) -> Principal<'_> {
    Principal {
        client_id: name,
        thing: Some(name),
        ..Principal::default()
    }
}

#[test]
fn wildcards_match_like_iam() {
    assert!(like("a*c", "abbbc"));
    assert!(like("a*", "a/b/c"));
    assert!(like("*", ""));
    assert!(like("a?c", "abc"));
    assert!(!like("a?c", "ac"));
    assert!(!like("abc", "abcd"));
    assert!(like("topic/dt/*/x/telemetry", "topic/dt/p/q/x/telemetry"));
    assert!(!like(
        "topic/dt/*/x/telemetry",
        "topic/dt/p/x/telemetry/more"
    ));
}

/// AWS IoT Core documentation, "Connect policy examples": only a client whose id is the thing
/// name of the certificate's attached thing may connect.
#[test]
fn connect_only_as_the_attached_thing() {
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
        }]
    }));
    assert!(p.allows(ARN, &thing("lamp-1"), Action::Connect, "lamp-1"));
    let impostor = Principal {
        client_id: "lamp-2",
        thing: Some("lamp-1"),
        ..Principal::default()
    };
    assert!(!p.allows(ARN, &impostor, Action::Connect, "lamp-2"));
    let unattached = Principal {
        client_id: "lamp-1",
        ..Principal::default()
    };
    assert!(
        !p.allows(ARN, &unattached, Action::Connect, "lamp-1"),
        "no thing: the variable has no value"
    );
    assert!(
        !p.allows(
            "arn:aws:iot:eu-west-1:123456789012",
            &thing("lamp-1"),
            Action::Connect,
            "lamp-1"
        ),
        "another region"
    );
}

/// "Publish/Subscribe policy examples": topics under the thing's own name, with an explicit
/// deny that wins over an allow.
#[test]
fn own_topics_with_a_deny_that_wins() {
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*"]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*"},
            {"Effect": "Deny", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/restricted"}
        ]
    }));
    let me = thing("lamp-1");
    assert!(p.allows(ARN, &me, Action::Publish, "things/lamp-1/status"));
    assert!(p.allows(ARN, &me, Action::Receive, "things/lamp-1/cmd"));
    assert!(!p.allows(ARN, &me, Action::Publish, "things/lamp-2/status"));
    assert!(
        !p.allows(ARN, &me, Action::Publish, "things/lamp-1/restricted"),
        "deny wins"
    );
    assert!(p.allows(ARN, &me, Action::Subscribe, "things/lamp-1/#"));
    assert!(
        !p.allows(ARN, &me, Action::Subscribe, "things/#"),
        "a wider filter is another resource"
    );
    assert!(
        !p.allows(ARN, &me, Action::Connect, "lamp-1"),
        "nothing allows connecting"
    );
}

#[test]
fn client_id_attributes_and_action_wildcards() {
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:*",
             "Resource": "arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:us-east-1:123456789012:topic/site/${iot:Connection.Thing.Attributes[site]}/*",
             "Condition": {"StringLike": {"iot:ClientId": "sensor-*"}}}
        ]
    }));
    let attributes = BTreeMap::from([("site".to_owned(), "berlin".to_owned())]);
    let sensor = Principal {
        client_id: "sensor-9",
        thing: Some("sensor-9"),
        attributes: Some(&attributes),
        ..Principal::default()
    };
    assert!(p.allows(ARN, &sensor, Action::Receive, "sensor-9/x"));
    assert!(p.allows(ARN, &sensor, Action::Publish, "site/berlin/t"));
    assert!(!p.allows(ARN, &sensor, Action::Publish, "site/paris/t"));
    let lamp = Principal {
        client_id: "lamp-1",
        thing: Some("lamp-1"),
        attributes: Some(&attributes),
        ..Principal::default()
    };
    assert!(
        !p.allows(ARN, &lamp, Action::Publish, "site/berlin/t"),
        "the condition fails"
    );
}

#[test]
fn what_cannot_be_evaluated_faithfully_is_refused() {
    for document in [
        json!({}),
        json!({"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "NotResource": "x"}]}),
        json!({"Statement": [{"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
                              "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": 7, "Resource": "*"}]}),
    ] {
        assert!(Policy::from_json(&document).is_err(), "{document}");
    }
}

/// The device policy of this repository's `template.yaml`, read the way the local stack reads it.
#[test]
fn the_template_device_policy_confines_a_device_to_its_own_topics() {
    let text = match std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../template.yaml"
    )) {
        Ok(text) => text,
        Err(e) => panic!("{e}"),
    };
    let routing = match crate::template::parse(&text) {
        Ok(routing) => routing,
        Err(e) => panic!("{e}"),
    };
    let Some(p) = routing.policy("hearth_device") else {
        panic!("no hearth_device policy in the template")
    };
    let arn = routing.arn_prefix();
    let me = thing("hth-abc");
    for (action, name, allowed) in [
        (Action::Connect, "hth-abc", true),
        (Action::Connect, "hth-other", false),
        (Action::Publish, "$aws/things/hth-abc/shadow/update", true),
        (Action::Publish, "$aws/things/hth-abc/shadow/get", true),
        (Action::Publish, "$aws/things/hth-abc/shadow/delete", true),
        (
            Action::Publish,
            "$aws/things/hth-abc/shadow/update/accepted",
            false,
        ),
        (
            Action::Publish,
            "$aws/things/hth-other/shadow/update",
            false,
        ),
        (Action::Publish, "dt/acme-lamp/hth-abc/telemetry", true),
        (Action::Publish, "dt/acme-lamp/hth-other/telemetry", false),
        (
            Action::Publish,
            "$aws/rules/hearth_telemetry/dt/acme-lamp/hth-abc/telemetry",
            true,
        ),
        (
            Action::Publish,
            "$aws/rules/hearth_telemetry/dt/acme-lamp/hth-other/telemetry",
            false,
        ),
        (
            Action::Subscribe,
            "$aws/things/hth-abc/shadow/update/delta",
            true,
        ),
        (Action::Subscribe, "$aws/things/hth-abc/shadow/#", true),
        (
            Action::Subscribe,
            "$aws/things/hth-other/shadow/update/delta",
            false,
        ),
        (
            Action::Subscribe,
            "$aws/things/+/shadow/update/delta",
            false,
        ),
        (Action::Subscribe, "#", false),
        (
            Action::Receive,
            "$aws/things/hth-abc/shadow/update/delta",
            true,
        ),
        (
            Action::Receive,
            "$aws/things/hth-other/shadow/update/delta",
            false,
        ),
        (Action::Receive, "dt/acme-lamp/hth-abc/telemetry", false),
    ] {
        assert_eq!(
            p.allows(&arn, &me, action, name),
            allowed,
            "{action:?} {name}"
        );
    }
    let unattached = Principal {
        client_id: "hth-abc",
        ..Principal::default()
    };
    assert!(!p.allows(&arn, &unattached, Action::Connect, "hth-abc"));
}
