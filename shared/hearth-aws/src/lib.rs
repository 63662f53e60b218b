//! Hearth's AWS adapters: the ports of `hearth-ports` implemented on DynamoDB
//! ([`dynamo::DynamoStateStore`], [`dynamo::DynamoRegistry`]), SQS
//! ([`sqs::SqsDeadLetterSink`]) and AWS IoT ([`iot::IotProvisioner`],
//! [`iot::IotShadowGateway`]).
//!
//! This is the only crate that imports `aws-sdk-*`. Conversions between SDK and domain types live
//! here, never in the domain. Clients are built once per process from [`load_config`], which
//! reads the standard AWS environment, so `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
//! (LocalStack, moto server) work with no code change.
//!
//! Each AWS service is a cargo feature named as the AWS CLI names the service (`dynamodb`,
//! `sqs`, `iot`, `iot-data`), none on by default: a function enables the services it calls and
//! links only their SDK crates.

#[cfg(any(feature = "dynamodb", feature = "sqs"))]
use aws_smithy_runtime_api::client::result::SdkError;
#[cfg(any(feature = "dynamodb", feature = "sqs"))]
use aws_smithy_types::error::display::DisplayErrorContext;
#[cfg(any(feature = "dynamodb", feature = "sqs"))]
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
#[cfg(any(feature = "dynamodb", feature = "sqs"))]
use hearth_ports::StoreError;

#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(any(feature = "iot", feature = "iot-data"))]
pub mod iot;
#[cfg(feature = "sqs")]
pub mod sqs;

/// The shared SDK configuration, from the environment (region, credentials, endpoint URLs).
/// Build it once per process and every client from it.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts())
        .load()
        .await
}

/// Bounded calls: the SDK sets no operation timeout of its own, and a Lambda must finish its
/// batch (reporting what it could not do) well within its own timeout.
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(3))
        .operation_timeout(std::time::Duration::from_secs(8))
        .build()
}

/// Maps an SDK error to a [`StoreError`]: the service error codes in `permanent` (the request
/// itself is bad) are [`StoreError::Rejected`]; everything else — throttling, server errors,
/// timeouts, connection failures — is [`StoreError::Transient`].
#[cfg(any(feature = "dynamodb", feature = "sqs"))]
fn classify<E, R>(error: &SdkError<E, R>, permanent: &[&str]) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(service)
            if service
                .err()
                .code()
                .is_some_and(|code| permanent.contains(&code)) =>
        {
            StoreError::Rejected(detail)
        }
        _ => StoreError::Transient(detail),
    }
}
