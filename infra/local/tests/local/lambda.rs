//! The function registry and its event sources on the running stack: parameter overrides,
//! direct invokes, schedules on a manual clock, and a template function without a local
//! implementation.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use hearth_iot_rules::template::Function;
use hearth_local::lambda::registry::{Constructor, FUNCTIONS, Resources};
use hearth_local::lambda::{Invocation, InvokeError, LocalFunction, Source};
use hearth_local::stack::{Stack, StackError};
use serde_json::{Value, json};

use crate::support::{config, http, state_until, tempdir, template, token};

async fn start_with(config: hearth_local::stack::Config) -> Stack {
    match Stack::start(config).await {
        Ok(stack) => stack,
        Err(e) => panic!("stack did not start: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_enable_owner_api_false_there_is_no_api_function_and_its_routes_are_404() {
    let dir = tempdir();
    let mut config = config(dir.path());
    config
        .parameter_overrides
        .insert("EnableOwnerApi".to_owned(), "false".to_owned());
    let stack = start_with(config).await;
    let http_addr = stack.http_addr();
    let alice = token(http_addr, "alice", &[]).await;
    let (status, body) = http(http_addr, "GET", "/v1/devices", Some(&alice), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body, json!({"message": "Not Found"}));
    let (status, _) = http(
        http_addr,
        "POST",
        "/2015-03-31/functions/ApiFunction/invocations",
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        !stack.banner().contains("ApiFunction"),
        "{}",
        stack.banner()
    );
    assert!(stack.banner().contains("StateProcessorFunction"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_parameter_or_a_value_outside_allowed_values_stops_the_start() {
    for (key, value, needle) in [
        ("EnableOwnerApu", "false", "EnableOwnerApu"),
        ("EnableOwnerApi", "maybe", "AllowedValues"),
    ] {
        let dir = tempdir();
        let mut config = config(dir.path());
        config
            .parameter_overrides
            .insert(key.to_owned(), value.to_owned());
        let Err(e) = Stack::start(config).await else {
            panic!("started with {key}={value}");
        };
        assert!(matches!(e, StackError::Template { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_invoke_runs_the_function_and_answers_its_result() {
    let dir = tempdir();
    let stack = start_with(config(dir.path())).await;
    let http_addr = stack.http_addr();
    let event: Value = match std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/state-processor/telemetry.json"),
    )
    .map_err(|e| e.to_string())
    .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(event) => event,
        Err(e) => panic!("sample event: {e}"),
    };
    // By logical id and by local ARN.
    for name in [
        "StateProcessorFunction",
        "arn:aws:lambda:local:000000000000:function:StateProcessorFunction",
    ] {
        let (status, result) = http(
            http_addr,
            "POST",
            &format!("/2015-03-31/functions/{name}/invocations"),
            None,
            Some(&event),
        )
        .await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(result, json!({"batchItemFailures": []}));
    }
    // The sample's newest telemetry (seq 42) is the device's state.
    state_until(http_addr, "hth-3vj8c1n6thrm", |s| {
        s["telemetry"]["payload"]["seq"] == 42
    })
    .await;

    // Not an SQS event: the function's error, as Lambda reports it.
    let (status, error) = http(
        http_addr,
        "POST",
        "/2015-03-31/functions/StateProcessorFunction/invocations",
        None,
        Some(&json!({"hello": "world"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(error["errorType"], "InvalidEvent", "{error}");
    let (status, missing) = http(
        http_addr,
        "POST",
        "/2015-03-31/functions/Nope/invocations",
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        missing["message"]
            .as_str()
            .is_some_and(|m| m.contains("Nope")),
        "{missing}"
    );
    // The system clock cannot be moved.
    let (status, clock) = http(http_addr, "GET", "/local/clock", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(clock["manual"], false);
    let (status, _) = http(
        http_addr,
        "POST",
        "/local/clock",
        None,
        Some(&json!({"advanceSeconds": 60})),
    )
    .await;
    assert_eq!(status, 409);
    stack.stop().await;
}

/// A test-only function: records the scheduled events it gets; a direct invoke returns them.
#[derive(Default)]
struct Ticker {
    seen: Mutex<Vec<Value>>,
}

#[async_trait]
impl LocalFunction for Ticker {
    async fn invoke(&self, event: Invocation) -> Result<Value, InvokeError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event.source {
            Source::Schedule => {
                seen.push(event.payload);
                Ok(Value::Null)
            }
            _ => Ok(Value::Array(seen.clone())),
        }
    }
}

fn ticker(_: &Function, _: &Resources) -> Result<Arc<dyn LocalFunction>, StackError> {
    Ok(Arc::new(Ticker::default()))
}

/// The repository's template with `resources` added.
fn template_with(dir: &std::path::Path, resources: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(template()).unwrap_or_default();
    let Some((head, outputs)) = text.split_once("\nOutputs:") else {
        panic!("the template has no Outputs section");
    };
    let path = dir.join("template.yaml");
    if let Err(e) = std::fs::write(&path, format!("{head}\n{resources}\nOutputs:{outputs}")) {
        panic!("write the template: {e}");
    }
    path
}

const TICKER: &str = r#"
  TickerFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: test-ticker
    Properties:
      CodeUri: .
      Events:
        EveryMinute:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
        Hourly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
            Input: '{"sweep": "hourly"}'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_as_the_manual_clock_moves() {
    let dir = tempdir();
    let mut config = config(dir.path());
    config.template = template_with(dir.path(), TICKER);
    config.manual_clock = true;
    let mut functions: Vec<(&'static str, Constructor)> = FUNCTIONS.to_vec();
    functions.push(("test-ticker", ticker));
    config.functions = functions;
    let stack = start_with(config).await;
    let http_addr = stack.http_addr();
    let recorded = || async {
        let (status, seen) = http(
            http_addr,
            "POST",
            "/2015-03-31/functions/TickerFunction/invocations",
            None,
            Some(&json!({})),
        )
        .await;
        assert_eq!(status, 200, "{seen}");
        seen.as_array().cloned().unwrap_or_default()
    };

    let (_, before) = http(http_addr, "GET", "/local/clock", None, None).await;
    assert_eq!(before["manual"], true);
    let start = before["nowMs"].as_u64().unwrap_or_default();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        recorded().await.is_empty(),
        "nothing fires while the clock stands still"
    );

    let (status, moved) = http(
        http_addr,
        "POST",
        "/local/clock",
        None,
        Some(&json!({"advanceSeconds": 150})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["nowMs"].as_u64(), Some(start + 150_000));
    assert_eq!(moved["scheduledInvocations"], 2);
    let seen = recorded().await;
    let [first, second] = seen.as_slice() else {
        panic!("two occurrences: {seen:?}");
    };
    for (event, at) in [(first, start + 60_000), (second, start + 120_000)] {
        let parsed: EventBridgeEvent = match serde_json::from_value(event.clone()) {
            Ok(parsed) => parsed,
            Err(e) => panic!("not an EventBridge event ({e}): {event}"),
        };
        assert_eq!(parsed.detail_type, "Scheduled Event");
        assert_eq!(parsed.source, "aws.events");
        assert_eq!(
            parsed.resources,
            Some(vec![
                "arn:aws:events:local:000000000000:rule/TickerFunctionEveryMinute".to_owned()
            ])
        );
        assert_eq!(
            parsed.time.map(|t| t.timestamp_millis()),
            Some(i64::try_from(at / 1_000 * 1_000).unwrap_or_default())
        );
        assert_eq!(event["detail"], json!({}));
        assert_eq!(event["account"], "000000000000");
        assert_eq!(event["version"], "0");
    }
    assert_ne!(first["id"], second["id"]);

    // An hour on: 60 more minutes and the hourly schedule's Input, in time order.
    let (_, moved) = http(
        http_addr,
        "POST",
        "/local/clock",
        None,
        Some(&json!({"advanceSeconds": 3600})),
    )
    .await;
    assert_eq!(moved["scheduledInvocations"], 61);
    let seen = recorded().await;
    assert_eq!(seen.len(), 63);
    let inputs: Vec<&Value> = seen.iter().filter(|e| e.get("sweep").is_some()).collect();
    assert_eq!(inputs, [&json!({"sweep": "hourly"})]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_function_without_a_local_implementation_stops_the_start() {
    let dir = tempdir();
    let mut config = config(dir.path());
    config.template = template_with(dir.path(), TICKER);
    let Err(e) = Stack::start(config).await else {
        panic!("started a function the registry does not have");
    };
    let message = e.to_string();
    assert!(message.contains("TickerFunction"), "{message}");
    assert!(message.contains("test-ticker"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iot_core_stamps_messages_and_shadows_by_the_manual_clock() {
    let dir = tempdir();
    let mut config = config(dir.path());
    config.manual_clock = true;
    let stack = start_with(config).await;
    let api = stack.http_addr();
    let (status, moved) = http(
        api,
        "POST",
        "/local/clock",
        None,
        Some(&json!({"advanceSeconds": 86_400})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let now = moved["nowMs"].as_u64().unwrap_or_default();

    let mut device = crate::support::Device::connect(
        stack.mqtt_addr(),
        "clocked-1",
        &["$aws/things/clocked-1/shadow/update/accepted"],
    )
    .await;
    device
        .publish(
            "dt/thermo-x/clocked-1/telemetry",
            json!({"seq": 1}).to_string(),
        )
        .await;
    device.acked().await;
    device
        .publish(
            "$aws/things/clocked-1/shadow/update",
            json!({"state": {"reported": {"power": "on"}}}).to_string(),
        )
        .await;
    let accepted = device
        .expect("$aws/things/clocked-1/shadow/update/accepted")
        .await;
    // The shadow service's timestamp (seconds) and the rules' timestamp() (received_at) are
    // the stack clock's, which stands a day ahead of the system clock and does not move.
    assert_eq!(accepted["timestamp"], now / 1000, "{accepted}");
    let state = state_until(api, "clocked-1", |s| {
        s["telemetry"]["received_at"].is_u64() && s["shadow"]["version"] == 1
    })
    .await;
    assert_eq!(state["telemetry"]["received_at"], now, "{state}");
    assert_eq!(state["shadow"]["received_at"], now, "{state}");
    assert_eq!(state["connectivity"]["timestamp"], now, "{state}");
    stack.stop().await;
}
