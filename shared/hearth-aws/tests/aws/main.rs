//! The AWS adapters against moto server, which `tests/run.sh` starts on a free loopback port
//! and points `AWS_ENDPOINT_URL` at. The clients are built exactly as in Lambda
//! ([`hearth_aws::load_config`]), so these tests also prove that the endpoint variables are
//! honoured.

mod dynamo;
mod enrollment;
mod invitations;
mod iot;
mod sqs;
mod support;
