//! Reading templates: the repository's own, and inline ones for resolution and refusals.

use std::collections::BTreeMap;
use std::time::Duration;

use hearth_iot_rules::template::{self as tpl, TemplateError};

use super::{TEMPLATE, parse, parse_err, real};

const RULES: [(&str, &str, &str); 4] = [
    (
        "ShadowDocumentsRule",
        "hearth_state_shadow_documents",
        "SELECT *, topic(3) AS thing, topic() AS topic, timestamp() AS received_at FROM \
         '$aws/things/+/shadow/update/documents'",
    ),
    (
        "ShadowDeletesRule",
        "hearth_state_shadow_deletes",
        "SELECT *, topic(3) AS thing, topic() AS topic, timestamp() AS received_at FROM \
         '$aws/things/+/shadow/delete/accepted'",
    ),
    (
        "TelemetryRule",
        "hearth_telemetry",
        "SELECT *, topic(3) AS thing, topic() AS topic, timestamp() AS received_at FROM \
         'dt/+/+/telemetry'",
    ),
    (
        "PresenceRule",
        "hearth_state_presence",
        "SELECT *, topic(5) AS thing, topic() AS topic, timestamp() AS received_at FROM \
         '$aws/events/presence/+/+'",
    ),
];

#[test]
fn the_real_template_has_the_four_rules_into_the_state_queue() {
    let routing = real();
    let rules = routing.rules();
    assert_eq!(rules.len(), 4);
    for (rule, (logical_id, name, sql)) in rules.iter().zip(RULES) {
        assert_eq!(rule.logical_id, logical_id);
        assert_eq!(rule.name, name);
        assert_eq!(rule.sql.as_str(), sql);
        assert!(!rule.disabled, "{name} is enabled");
        assert_eq!(rule.actions.len(), 1, "{name} has one action");
        assert_eq!(rule.actions[0].queue, "StateQueue");
        assert!(!rule.actions[0].use_base64);
        let Some(error_action) = &rule.error_action else {
            panic!("{name} has no error action");
        };
        assert_eq!(error_action.queue, "RuleErrorsQueue");
        assert!(
            routing
                .rule(name)
                .is_some_and(|r| r.logical_id == logical_id)
        );
    }
}

#[test]
fn the_real_template_has_its_queues() {
    let routing = real();
    let queues = routing.queues();
    assert_eq!(
        queues.keys().collect::<Vec<_>>(),
        ["RuleErrorsQueue", "StateDeadLetterQueue", "StateQueue"]
    );
    let Some(state) = queues.get("StateQueue") else {
        panic!("no StateQueue");
    };
    assert_eq!(state.visibility_timeout, Duration::from_secs(180));
    assert_eq!(state.message_retention, Duration::from_secs(4 * 24 * 3600));
    let Some(redrive) = &state.redrive else {
        panic!("StateQueue has no redrive policy");
    };
    assert_eq!(redrive.dead_letter_queue, "StateDeadLetterQueue");
    assert_eq!(redrive.max_receive_count, 5);
    assert!(!state.fifo);
    let Some(dlq) = queues.get("StateDeadLetterQueue") else {
        panic!("no StateDeadLetterQueue");
    };
    assert_eq!(dlq.visibility_timeout, Duration::from_secs(30));
    assert_eq!(dlq.message_retention, Duration::from_secs(1_209_600));
    assert_eq!(dlq.redrive, None);
}

#[test]
fn the_real_template_has_the_state_processor_consumer() {
    let routing = real();
    let [consumer] = routing.consumers() else {
        panic!("expected one consumer, found {:?}", routing.consumers());
    };
    assert_eq!(consumer.function, "StateProcessorFunction");
    assert_eq!(consumer.event, "StateQueue");
    assert_eq!(consumer.binary, "hearth-state-processor");
    assert_eq!(consumer.queue, "StateQueue");
    assert!(consumer.enabled);
    assert_eq!(consumer.batch_size, 100);
    assert_eq!(consumer.batching_window, Duration::from_secs(1));
    assert!(consumer.report_batch_item_failures);
    assert_eq!(consumer.maximum_concurrency, Some(10));
    assert_eq!(consumer.timeout, Duration::from_secs(20));
    let expected: BTreeMap<String, String> = [
        ("HEARTH_TABLE_NAME", "local://table/DeviceTable"),
        (
            "HEARTH_DEAD_LETTER_QUEUE_URL",
            "local://queue/StateDeadLetterQueue",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(consumer.environment, expected);
}

#[test]
fn parameter_overrides_rename_the_rules_and_are_checked() -> Result<(), Box<dyn std::error::Error>>
{
    let text = std::fs::read_to_string(TEMPLATE)?;
    let overrides = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let routing = tpl::parse_with(&text, &overrides(&[("Prefix", "dev")]))?;
    assert!(routing.rule("dev_telemetry").is_some());
    assert!(routing.rule("hearth_telemetry").is_none());

    let Err(e) = tpl::parse_with(&text, &overrides(&[("Prefx", "dev")])) else {
        panic!("an unknown parameter is refused");
    };
    assert!(e.to_string().contains("Prefx"), "{e}");
    let Err(e) = tpl::parse_with(&text, &overrides(&[("TableDeletionProtection", "maybe")])) else {
        panic!("a value outside AllowedValues is refused");
    };
    assert!(e.to_string().contains("AllowedValues"), "{e}");
    Ok(())
}

#[test]
fn load_reports_a_missing_file() {
    let Err(e) = tpl::load("/nonexistent/template.yaml") else {
        panic!("a missing file loads");
    };
    assert!(matches!(e, TemplateError::Io { .. }), "{e}");
}

/// A template with one queue, one rule into it and `extra` resources.
fn with_rule(rule_properties: &str, extra: &str) -> String {
    format!(
        r"
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Rule:
    Type: AWS::IoT::TopicRule
    Properties:
{rule_properties}
{extra}"
    )
}

const RULE: &str = r"      RuleName: r
      TopicRulePayload:
        AwsIotSqlVersion: '2016-03-23'
        Sql: SELECT * FROM 'a/+'
        Actions:
          - Sqs:
              QueueUrl: !Ref Queue";

#[test]
fn defaults_apply_to_what_the_template_leaves_out() {
    let routing = parse(&with_rule(
        RULE,
        r"
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: my-bin
    Properties:
      Events:
        Q:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn",
    ));
    let Some(queue) = routing.queues().get("Queue") else {
        panic!("no queue");
    };
    assert_eq!(queue.visibility_timeout, Duration::from_secs(30));
    assert_eq!(queue.message_retention, Duration::from_secs(345_600));
    assert_eq!(queue.delay, Duration::ZERO);
    assert_eq!(queue.redrive, None);
    let [consumer] = routing.consumers() else {
        panic!("one consumer");
    };
    assert_eq!(consumer.binary, "my-bin");
    assert_eq!(consumer.batch_size, 10);
    assert_eq!(consumer.batching_window, Duration::ZERO);
    assert!(!consumer.report_batch_item_failures);
    assert_eq!(consumer.maximum_concurrency, None);
    assert_eq!(consumer.timeout, Duration::from_secs(3));
    assert!(consumer.environment.is_empty());
    let [rule] = routing.rules() else {
        panic!("one rule");
    };
    assert_eq!(rule.error_action, None);
    assert!(!rule.disabled);
}

#[test]
fn intrinsics_resolve_in_short_and_long_form() {
    let routing = parse(
        r"
Parameters:
  Stage:
    Type: String
    Default: dev
  Retention:
    Type: Number
    Default: 120
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
  IsProd: !Not [!Condition IsDev]
  Both: !And [!Condition IsDev, {Condition: IsDev}]
  Either: !Or [!Condition IsProd, !Equals ['a', 'b']]
Globals:
  Function:
    Timeout: 7
    Environment:
      Variables:
        FROM_GLOBALS: g
        OVERRIDDEN: global
Resources:
  Main:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !If [Both, 60, 90]
      MessageRetentionPeriod: !Ref Retention
      RedrivePolicy:
        deadLetterTargetArn:
          Fn::GetAtt: [Dead, Arn]
        maxReceiveCount: '3'
  Dead:
    Type: AWS::SQS::Queue
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
  Table:
    Type: AWS::DynamoDB::Table
  Rule:
    Type: AWS::IoT::TopicRule
    Properties:
      RuleName:
        Fn::Sub: '${Stage}_rule'
      TopicRulePayload:
        AwsIotSqlVersion: '2016-03-23'
        RuleDisabled: !If [Either, true, 'false']
        Sql: !Join ['', ['SELECT * FROM ', !Sub ['''${Base}/#''', {Base: !Ref Stage}]]]
        Actions:
          - Sqs:
              QueueUrl:
                Ref: Main
              UseBase64: 'true'
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: consumer
    Properties:
      Environment:
        Variables:
          OVERRIDDEN: own
          QUEUE: !Ref Main
          TABLE: !Ref Table
          ARN: !GetAtt Main.Arn
          SUB: !Sub '${AWS::StackName}/${AWS::Region}/${AWS::AccountId}/${AWS::Partition}/${!Literal}/${Rule}'
          JOINED: !Join [',', [a, !Ref Stage, 3]]
          GONE: !If [IsProd, x, !Ref AWS::NoValue]
          NUMBER: 5
      Events:
        Q:
          Type: SQS
          Properties:
            Queue: !GetAtt Main.Arn
            Enabled: false
        Api:
          Type: HttpApi
          Properties:
            Path: /
            Method: get
",
    );
    let Some(main) = routing.queues().get("Main") else {
        panic!("no Main queue");
    };
    assert_eq!(main.visibility_timeout, Duration::from_secs(60));
    assert_eq!(main.message_retention, Duration::from_secs(120));
    assert_eq!(
        main.redrive
            .as_ref()
            .map(|r| (r.dead_letter_queue.as_str(), r.max_receive_count)),
        Some(("Dead", 3))
    );
    assert!(
        !routing.queues().contains_key("ProdOnly"),
        "a resource whose condition is false does not exist"
    );

    let [rule] = routing.rules() else {
        panic!("one rule");
    };
    assert_eq!(rule.name, "dev_rule");
    assert!(!rule.disabled);
    assert_eq!(rule.sql.as_str(), "SELECT * FROM 'dev/#'");
    assert!(rule.actions[0].use_base64);

    let [consumer] = routing.consumers() else {
        panic!("one consumer (the Api event is not one)");
    };
    assert!(!consumer.enabled);
    assert_eq!(consumer.timeout, Duration::from_secs(7));
    let env = |name: &str| consumer.environment.get(name).map(String::as_str);
    assert_eq!(env("FROM_GLOBALS"), Some("g"));
    assert_eq!(env("OVERRIDDEN"), Some("own"));
    assert_eq!(env("QUEUE"), Some("local://queue/Main"));
    assert_eq!(env("TABLE"), Some("local://table/Table"));
    assert_eq!(env("ARN"), Some("arn:aws:sqs:local:000000000000:Main"));
    assert_eq!(
        env("SUB"),
        Some("hearth-local/local/000000000000/aws/${Literal}/dev_rule")
    );
    assert_eq!(env("JOINED"), Some("a,dev,3"));
    assert_eq!(env("GONE"), None);
    assert_eq!(env("NUMBER"), Some("5"));
}

/// Asserts that `text` fails with a message naming every one of `needles`.
fn refused(text: &str, needles: &[&str]) {
    let (_, message) = parse_err(text);
    for needle in needles {
        assert!(
            message.contains(needle),
            "the error `{message}` does not name `{needle}`"
        );
    }
}

#[test]
fn a_rule_action_other_than_sqs_is_refused() {
    refused(
        &with_rule(
            r"      TopicRulePayload:
        AwsIotSqlVersion: '2016-03-23'
        Sql: SELECT * FROM 'a'
        Actions:
          - Lambda:
              FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:f",
            "",
        ),
        &["Rule", "Lambda"],
    );
    refused(
        &with_rule(
            &format!(
                "{RULE}
        ErrorAction:
          Republish:
            Topic: errors"
            ),
            "",
        ),
        &["Rule", "ErrorAction", "Republish"],
    );
}

#[test]
fn unsupported_intrinsics_name_the_resource_and_the_function() {
    let short = RULE.replace("!Ref Queue", "!ImportValue shared-queue-url");
    refused(&with_rule(&short, ""), &["Rule", "Fn::ImportValue"]);
    let long = RULE.replace("!Ref Queue", "{'Fn::ImportValue': shared-queue-url}");
    refused(&with_rule(&long, ""), &["Rule", "Fn::ImportValue"]);
    let unknown = RULE.replace("RuleName: r", "RuleName: !Frobnicate r");
    refused(&with_rule(&unknown, ""), &["Rule", "Fn::Frobnicate"]);
    let in_queue = with_rule(RULE, "").replace(
        "Type: AWS::SQS::Queue\n",
        "Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Select [0, [a, b]]\n",
    );
    refused(&in_queue, &["Queue", "Fn::Select"]);
}

#[test]
fn resources_the_local_stack_does_not_read_are_not_checked() {
    let routing = parse(&with_rule(
        RULE,
        r"
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !ImportValue whatever
  Plain:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !FindInMap [a, b, c]",
    ));
    assert_eq!(routing.rules().len(), 1);
    assert!(routing.consumers().is_empty());
    assert!(routing.functions().is_empty());
}

#[test]
fn every_function_is_read_and_needs_its_binary() {
    // Functions are all hosted locally (not only SQS consumers): one without a binary, or with
    // an intrinsic the stack cannot resolve, stops the start.
    refused(
        &with_rule(
            RULE,
            r"
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 3",
        ),
        &["resource Plain", "Metadata.BuildProperties.Binary"],
    );
    refused(
        &with_rule(
            RULE,
            r"
  Plain:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: b
    Properties:
      Timeout: !FindInMap [a, b, c]",
        ),
        &["resource Plain", "FindInMap"],
    );
}

#[test]
fn references_to_nothing_are_refused() {
    let missing = RULE.replace("!Ref Queue", "!Ref Nowhere");
    refused(&with_rule(&missing, ""), &["Rule", "Nowhere"]);
    let sub = RULE.replace("RuleName: r", "RuleName: !Sub '${Nope}_r'");
    refused(&with_rule(&sub, ""), &["Rule", "Nope"]);
    let pseudo = RULE.replace("RuleName: r", "RuleName: !Ref AWS::NotificationARNs");
    refused(&with_rule(&pseudo, ""), &["Rule", "AWS::NotificationARNs"]);
}

#[test]
fn a_consumer_environment_that_cannot_resolve_locally_is_refused() {
    refused(
        &with_rule(
            RULE,
            r"
  Role:
    Type: AWS::IAM::Role
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: b
    Properties:
      Role: !GetAtt Role.Arn
      Environment:
        Variables:
          ROLE: !Ref Role
      Events:
        Q:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn",
        ),
        &["resource Fn", "ROLE", "Role", "AWS::IAM::Role"],
    );
}

#[test]
fn fifo_queues_are_refused_behind_a_consumer_or_a_rule() {
    let fifo = "Type: AWS::SQS::Queue\n    Properties:\n      FifoQueue: true\n";
    let consumer = r"
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: b
    Properties:
      Events:
        Q:
          Type: SQS
          Properties:
            Queue: !GetAtt Fifo.Arn
  Fifo:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true";
    refused(&with_rule(RULE, consumer), &["resource Fn", "FIFO", "Fifo"]);
    refused(
        &with_rule(RULE, "").replace("Type: AWS::SQS::Queue\n", fifo),
        &["Rule", "FIFO", "Queue"],
    );
}

#[test]
fn unsupported_sqs_event_properties_are_refused() {
    refused(
        &with_rule(
            RULE,
            r"
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: b
    Properties:
      Events:
        Q:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            FilterCriteria:
              Filters:
                - Pattern: '{}'",
        ),
        &["resource Fn", "FilterCriteria"],
    );
}

#[test]
fn sql_errors_carry_the_rule_name() {
    let text = with_rule(
        &RULE.replace("SELECT * FROM 'a/+'", "SELECT upper(name) AS n FROM 'a/+'"),
        "",
    );
    let (error, message) = parse_err(&text);
    let TemplateError::Sql {
        resource,
        rule,
        source,
    } = error
    else {
        panic!("not an SQL error: {message}");
    };
    assert_eq!((resource.as_str(), rule.as_str()), ("Rule", "r"));
    assert!(source.message().contains("upper()"), "{message}");
    assert!(
        message.contains("topic rule r") && message.contains("upper()"),
        "{message}"
    );
}

#[test]
fn the_sql_version_must_be_2016_03_23() {
    let text = with_rule(
        &RULE.replace("AwsIotSqlVersion: '2016-03-23'", "AwsIotSqlVersion: beta"),
        "",
    );
    refused(&text, &["Rule", "AwsIotSqlVersion", "beta"]);
    let text = with_rule(
        &RULE.replace("        AwsIotSqlVersion: '2016-03-23'\n", ""),
        "",
    );
    refused(&text, &["Rule", "AwsIotSqlVersion"]);
}

#[test]
fn malformed_templates_are_refused() {
    refused("a: [", &["YAML"]);
    refused("- just a list", &["not a mapping"]);
    refused(
        "Resources: {}\nTransform: AWS::LanguageExtensions",
        &["Transform"],
    );
    let duplicate = with_rule(RULE, "")
        + r"
  Rule2:
    Type: AWS::IoT::TopicRule
    Properties:
      RuleName: r
      TopicRulePayload:
        AwsIotSqlVersion: '2016-03-23'
        Sql: SELECT * FROM 'b'";
    refused(&duplicate, &["Rule2", "RuleName r"]);
}
