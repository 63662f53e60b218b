//! Every function of a template with its event sources (`SQS`, `Schedule`, `ScheduleV2`,
//! `HttpApi`, `DynamoDB`), and HTTP API routes with an `SQS-SendMessage` integration.

use std::collections::BTreeMap;
use std::time::Duration;

use hearth_iot_rules::route::RouteKey;
use hearth_iot_rules::schedule::ScheduleExpr;
use hearth_iot_rules::template::{self as tpl, Function, Routing, Trigger};
use serde_json::json;

use super::{TEMPLATE, parse, parse_err, real};

/// A template with a queue, a table with a stream, an HTTP API and `resources`.
fn template(resources: &str) -> String {
    format!(
        r"
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      StreamSpecification:
        StreamViewType: NEW_AND_OLD_IMAGES
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
{resources}"
    )
}

/// A function `Fn` (binary `b`) with `events`.
fn function(events: &str) -> String {
    template(&format!(
        r"
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: b
    Properties:
      Events:
{events}"
    ))
}

fn only_function(routing: &Routing) -> &Function {
    let [function] = routing.functions() else {
        panic!("one function: {:?}", routing.functions());
    };
    function
}

fn refused(text: &str, needles: &[&str]) {
    let (_, message) = parse_err(text);
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
}

#[test]
fn the_real_template_hosts_the_api_and_the_state_processor() {
    let routing = real();
    let ids: Vec<&str> = routing
        .functions()
        .iter()
        .map(|f| f.logical_id.as_str())
        .collect();
    assert_eq!(ids, ["ApiFunction", "StateProcessorFunction"]);
    let api = &routing.functions()[0];
    assert_eq!(api.binary, "hearth-api");
    assert_eq!(api.timeout, Duration::from_secs(10));
    assert_eq!(
        api.environment
            .get("HEARTH_DEVICE_POLICY")
            .map(String::as_str),
        Some("hearth_device"),
        "!Ref of an IoT policy is its name"
    );
    let [event] = api.events.as_slice() else {
        panic!("one event");
    };
    assert_eq!(event.name, "V1");
    let Trigger::HttpApi(route) = &event.trigger else {
        panic!("an HttpApi event: {event:?}");
    };
    assert_eq!(route.api, "OwnerHttpApi");
    assert_eq!(route.route.key(), "ANY /v1/{proxy+}");
    assert_eq!(route.authorizer.as_deref(), Some("CognitoJwt"));
    let processor = &routing.functions()[1];
    assert_eq!(processor.binary, "hearth-state-processor");
    assert!(matches!(
        processor.events.as_slice(),
        [e] if e.trigger == Trigger::Sqs { queue: "StateQueue".to_owned() }
    ));
    assert!(routing.sqs_send_message_routes().is_empty());
}

#[test]
fn a_condition_switches_the_api_function_off() -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(TEMPLATE)?;
    let overrides: BTreeMap<String, String> =
        [("EnableOwnerApi".to_owned(), "false".to_owned())].into();
    let routing = tpl::parse_with(&text, &overrides)?;
    let ids: Vec<&str> = routing
        .functions()
        .iter()
        .map(|f| f.logical_id.as_str())
        .collect();
    assert_eq!(ids, ["StateProcessorFunction"]);
    Ok(())
}

#[test]
fn schedules_parse_rate_cron_input_and_state() {
    let routing = parse(&function(
        r#"
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Name: nightly
            Input: '{"sweep": "offline"}'
            Enabled: false
        Digest:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 day)
            ScheduleExpressionTimezone: UTC
            FlexibleTimeWindow:
              Mode: 'OFF'
            State: DISABLED
        Once:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: at(2030-01-01T00:00:00)
            GroupName: g"#,
    ));
    let schedules: Vec<_> = only_function(&routing)
        .events
        .iter()
        .map(|e| match &e.trigger {
            Trigger::Schedule(s) => s.clone(),
            other => panic!("not a schedule: {other:?}"),
        })
        .collect();
    let [tick, nightly, digest, once] = schedules.as_slice() else {
        panic!("four schedules");
    };
    assert_eq!(
        tick.expression,
        ScheduleExpr::Rate(Duration::from_secs(300))
    );
    assert!(tick.enabled && !tick.scheduler && tick.input.is_none());
    assert_eq!(tick.name, "FnTick");
    assert_eq!(tick.arn, "arn:aws:events:local:000000000000:rule/FnTick");
    assert!(matches!(nightly.expression, ScheduleExpr::Cron(_)));
    assert_eq!(nightly.input, Some(json!({"sweep": "offline"})));
    assert!(!nightly.enabled);
    assert_eq!(
        nightly.arn,
        "arn:aws:events:local:000000000000:rule/nightly"
    );
    assert!(digest.scheduler && !digest.enabled);
    assert_eq!(
        digest.arn,
        "arn:aws:scheduler:local:000000000000:schedule/default/FnDigest"
    );
    assert!(matches!(once.expression, ScheduleExpr::At(_)));
    assert_eq!(
        once.arn,
        "arn:aws:scheduler:local:000000000000:schedule/g/FnOnce"
    );
}

#[test]
fn schedules_the_stack_cannot_honour_are_refused() {
    let with = |properties: &str| function(&format!("        S:\n{properties}"));
    refused(
        &with(
            "          Type: Schedule\n          Properties:\n            Schedule: rate(1 minutes)",
        ),
        &[
            "resource Fn",
            "Events.S.Properties.Schedule",
            "rate(1 minutes)",
        ],
    );
    refused(
        &with(
            "          Type: Schedule\n          Properties:\n            Schedule: cron(0 8 L * ? *)",
        ),
        &["resource Fn", "not supported locally"],
    );
    refused(
        &with(
            "          Type: Schedule\n          Properties:\n            Schedule: rate(1 day)\n            RetryPolicy:\n              MaximumRetryAttempts: 2",
        ),
        &["resource Fn", "RetryPolicy"],
    );
    refused(
        &with(
            "          Type: ScheduleV2\n          Properties:\n            ScheduleExpression: rate(1 day)\n            ScheduleExpressionTimezone: Europe/Paris",
        ),
        &["resource Fn", "Europe/Paris", "UTC"],
    );
    refused(
        &with(
            "          Type: Schedule\n          Properties:\n            Schedule: at(2030-01-01T00:00:00)",
        ),
        &["resource Fn", "ScheduleV2"],
    );
    refused(
        &with(
            "          Type: Schedule\n          Properties:\n            Schedule: rate(1 day)\n            Input: '{oops'",
        ),
        &["resource Fn", "Input", "not JSON"],
    );
}

#[test]
fn http_api_events_take_their_route_and_authorizer() {
    let routing = parse(&function(
        r"
        Proxy:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /v1/{proxy+}
            Method: ANY
        Open:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /v1/things/{thing}
            Method: get
            Auth:
              Authorizer: NONE
        Default:
          Type: HttpApi",
    ));
    let routes: Vec<_> = only_function(&routing)
        .events
        .iter()
        .map(|e| match &e.trigger {
            Trigger::HttpApi(route) => route.clone(),
            other => panic!("not an HttpApi event: {other:?}"),
        })
        .collect();
    let [proxy, open, default] = routes.as_slice() else {
        panic!("three routes");
    };
    assert_eq!(proxy.route.key(), "ANY /v1/{proxy+}");
    assert_eq!(proxy.authorizer.as_deref(), Some("Jwt"));
    assert_eq!(
        open.route,
        RouteKey::new("GET", "/v1/things/{thing}").unwrap_or_else(|e| panic!("{e}"))
    );
    assert_eq!(open.authorizer, None);
    assert_eq!(default.route.key(), "$default");
    assert_eq!(default.api, "ServerlessHttpApi");
    assert_eq!(
        default.authorizer, None,
        "the implicit API has no authorizer"
    );

    let with = |properties: &str| {
        function(&format!(
            "        H:\n          Type: HttpApi\n          Properties:\n{properties}"
        ))
    };
    refused(
        &with("            Path: /a\n            PayloadFormatVersion: '1.0'"),
        &["resource Fn", "PayloadFormatVersion", "2.0"],
    );
    refused(
        &with("            Path: /a/{b+}/c"),
        &["resource Fn", "greedy"],
    );
    refused(
        &with("            ApiId: !Ref Queue\n            Path: /a"),
        &["resource Fn", "ApiId"],
    );
}

#[test]
fn dynamodb_streams_name_their_table_and_settings() {
    let routing = parse(&function(
        r"
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 50
            MaximumBatchingWindowInSeconds: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
            MaximumRetryAttempts: 3
            BisectBatchOnFunctionError: true",
    ));
    let [event] = only_function(&routing).events.as_slice() else {
        panic!("one event");
    };
    let Trigger::DynamoDb(stream) = &event.trigger else {
        panic!("a stream: {event:?}");
    };
    assert_eq!(stream.table, "Table");
    assert_eq!(stream.view_type, "NEW_AND_OLD_IMAGES");
    assert_eq!(stream.starting_position, "TRIM_HORIZON");
    assert_eq!(stream.batch_size, 50);
    assert_eq!(stream.batching_window, Duration::from_secs(2));
    assert!(stream.report_batch_item_failures && stream.bisect_batch_on_function_error);
    assert_eq!(stream.maximum_retry_attempts, 3);
    assert!(stream.enabled);

    let with = |properties: &str| {
        function(&format!(
            "        D:\n          Type: DynamoDB\n          Properties:\n{properties}"
        ))
    };
    refused(
        &with("            Stream: !GetAtt Table.StreamArn"),
        &["resource Fn", "StartingPosition"],
    );
    refused(
        &with("            Stream: !GetAtt Queue.Arn\n            StartingPosition: LATEST"),
        &["resource Fn", "StreamArn"],
    );
    refused(
        &with(
            "            Stream: !GetAtt Table.StreamArn\n            StartingPosition: LATEST\n            FilterCriteria: {}",
        ),
        &["resource Fn", "FilterCriteria"],
    );
    let no_stream = function(
        "        D:\n          Type: DynamoDB\n          Properties:\n            Stream: !GetAtt Table.StreamArn\n            StartingPosition: LATEST",
    )
    .replace(
        "      StreamSpecification:\n        StreamViewType: NEW_AND_OLD_IMAGES\n",
        "      BillingMode: PAY_PER_REQUEST\n",
    );
    refused(&no_stream, &["resource Fn", "StreamViewType"]);
}

#[test]
fn event_types_the_stack_does_not_emulate_are_refused() {
    for ty in ["Api", "S3", "SNS", "Kinesis"] {
        refused(
            &function(&format!(
                "        E:\n          Type: {ty}\n          Properties: {{}}"
            )),
            &["resource Fn", "Events.E", ty, "not emulated locally"],
        );
    }
}

const INTEGRATION: &str = r#"
  Send:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationSubtype: SQS-SendMessage
      PayloadFormatVersion: '1.0'
      CredentialsArn: arn:aws:iam::000000000000:role/r
      RequestParameters:
        QueueUrl: !Ref Queue
        MessageBody: $request.body
        MessageAttributes: '{"sub": {"DataType": "String", "StringValue": "${context.authorizer.claims.sub}"}}'
  Location:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: POST /v1/locations
      AuthorizationType: JWT
      Target: !Sub 'integrations/${Send}'"#;

#[test]
fn sqs_send_message_routes_map_their_request_parameters() {
    let routing = parse(&template(INTEGRATION));
    let [route] = routing.sqs_send_message_routes() else {
        panic!("one route");
    };
    assert_eq!(route.route_id, "Location");
    assert_eq!(route.integration, "Send");
    assert_eq!(route.api, "Api");
    assert_eq!(route.route.key(), "POST /v1/locations");
    assert_eq!(route.authorization_type, "JWT");
    assert_eq!(route.queue, "Queue");
    assert_eq!(
        route.parameters.get("MessageBody").map(String::as_str),
        Some("$request.body")
    );
    assert!(
        route
            .parameters
            .get("MessageAttributes")
            .is_some_and(|a| a.contains("${context.authorizer.claims.sub}"))
    );
}

#[test]
fn integrations_and_routes_the_stack_cannot_emulate_are_refused() {
    refused(
        &template(&INTEGRATION.replace("SQS-SendMessage", "EventBridge-PutEvents")),
        &[
            "resource Send",
            "EventBridge-PutEvents",
            "not emulated locally",
        ],
    );
    refused(
        &template(&INTEGRATION.replace("QueueUrl: !Ref Queue", "QueueUrl: https://example.com/q")),
        &["resource Send", "QueueUrl"],
    );
    refused(
        &template(&INTEGRATION.replace("        MessageBody: $request.body\n", "")),
        &["resource Send", "MessageBody"],
    );
    refused(
        &template(&INTEGRATION.replace("integrations/${Send}", "integrations/elsewhere")),
        &["resource Location", "Target"],
    );
    refused(
        &template(&INTEGRATION.replace("RouteKey: POST /v1/locations", "RouteKey: /v1/locations")),
        &["resource Location", "RouteKey"],
    );
}
