//! The api's Lambda binary: reads its configuration, builds the AWS clients once, and serves
//! [`hearth_api::handle`] behind API Gateway's HTTP API.
//!
//! Environment (set by `template.yaml`): `HEARTH_TABLE_NAME`, `HEARTH_DEVICE_POLICY`, optionally
//! `HEARTH_METRICS_NAMESPACE` (default `Hearth`; one CloudWatch metrics line per request), and
//! the standard AWS variables. The IoT Data Plane endpoint is the account's `iot:Data-ATS` endpoint,
//! looked up once at start unless `AWS_ENDPOINT_URL_IOT_DATA_PLANE` or `AWS_ENDPOINT_URL` sets
//! one.

use anyhow::{Context, anyhow};
use hearth_api::Ports;
use hearth_aws::dynamo::{DynamoRegistry, DynamoStateStore};
use hearth_aws::iot::{IotProvisioner, IotShadowGateway};
use hearth_ports::{SystemClock, ThingProvisioner};
use lambda_http::{Request, service_fn};

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_http::tracing::init_default_subscriber();
    let metrics = hearth_api::lambda::emitter()?;
    let table = env("HEARTH_TABLE_NAME")?;
    let policy = env("HEARTH_DEVICE_POLICY")?;
    let config = hearth_aws::load_config().await;
    let registry = DynamoRegistry::new(&config, table.clone());
    let state = DynamoStateStore::new(&config, table);
    let provisioner = IotProvisioner::new(&config, policy);
    let overridden = ["AWS_ENDPOINT_URL_IOT_DATA_PLANE", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    let data_config = if overridden {
        config.clone()
    } else {
        let endpoint = provisioner
            .data_endpoint()
            .await
            .map_err(|e| anyhow!("looking up the iot:Data-ATS endpoint: {e}"))?;
        config
            .to_builder()
            .endpoint_url(format!("https://{endpoint}"))
            .build()
    };
    let shadows = IotShadowGateway::new(&data_config);
    let ports = Ports {
        registry: &registry,
        state: &state,
        enrollment: &registry,
        invitations: &registry,
        shadows: &shadows,
        provisioner: &provisioner,
        clock: &SystemClock,
    };
    let metrics = &metrics;
    lambda_http::run(service_fn(move |request: Request| async move {
        let mut out = hearth_metrics::Stdout;
        let response = hearth_api::lambda::serve_measured(ports, metrics, &mut out, request).await;
        Ok::<_, std::convert::Infallible>(response)
    }))
    .await
    .map_err(|e| anyhow!(e))
}
