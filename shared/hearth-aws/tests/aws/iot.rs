use hearth_aws::iot::{IotProvisioner, IotShadowGateway};
use hearth_ports::contract;

use crate::support::{config, unique};

/// A device policy like the template's (moto stores it; nothing evaluates it).
async fn policy(client: &aws_sdk_iot::Client) -> String {
    let name = unique("hearth-device-policy");
    let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;
    if let Err(e) = client
        .create_policy()
        .policy_name(&name)
        .policy_document(document)
        .send()
        .await
    {
        panic!(
            "create policy: {}",
            aws_sdk_iot::error::DisplayErrorContext(&e)
        );
    }
    name
}

/// A certificate signing request made the way a device makes one: its key never leaves it.
fn device_csr(thing: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, thing);
    params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .unwrap_or_else(|e| panic!("csr: {e}"))
}

#[tokio::test]
async fn provisioner_passes_the_contract() {
    let config = config().await;
    let client = aws_sdk_iot::Client::new(&config);
    let policy = policy(&client).await;
    let provisioner = IotProvisioner::from_client(client, policy);
    let prefix = unique("iot");
    contract::provisioner(&provisioner, &prefix, Some(&device_csr("device"))).await;
}

#[tokio::test]
async fn shadow_gateway_passes_the_contract() {
    let config = config().await;
    let client = aws_sdk_iot::Client::new(&config);
    let policy = policy(&client).await;
    let provisioner = IotProvisioner::from_client(client, policy);
    let gateway = IotShadowGateway::new(&config);
    let prefix = unique("shadow");
    contract::shadow_gateway(&gateway, &provisioner, &prefix).await;
}
