//! The state processor's Lambda binary: reads its configuration, builds the AWS clients once,
//! and serves [`hearth_state_processor::function_handler`] with a CloudWatch metrics line per
//! invocation ([`hearth_state_processor::lambda`]).
//!
//! Environment (all set by `template.yaml`): `HEARTH_TABLE_NAME`, `HEARTH_DEAD_LETTER_QUEUE_URL`,
//! optionally `HEARTH_METRICS_NAMESPACE` (default `Hearth`), and the standard AWS variables (region, credentials, `AWS_ENDPOINT_URL*`,
//! `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`).

use anyhow::{Context, anyhow};
use aws_lambda_events::event::sqs::SqsEvent;
use hearth_aws::dynamo::DynamoStateStore;
use hearth_aws::sqs::SqsDeadLetterSink;
use hearth_ports::SystemClock;
use hearth_state_processor::{Ports, lambda};
use lambda_runtime::{LambdaEvent, service_fn};

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = lambda::emitter()?;
    let table = env("HEARTH_TABLE_NAME")?;
    let dead_letter_queue = env("HEARTH_DEAD_LETTER_QUEUE_URL")?;
    let config = hearth_aws::load_config().await;
    let store = DynamoStateStore::new(&config, table);
    let dead_letters = SqsDeadLetterSink::new(&config, dead_letter_queue);
    let ports = Ports {
        store: &store,
        dead_letters: &dead_letters,
        clock: &SystemClock,
    };
    let metrics = &metrics;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let mut out = hearth_metrics::Stdout;
        lambda::invoke(ports, metrics, &mut out, event).await
    }))
    .await
    .map_err(|e| anyhow!(e))
}
