//! The IoT adapters: `IotProvisioner` (feature `iot`; the IoT control plane: things,
//! certificates, the device policy) and `IotShadowGateway` (feature `iot-data`; the IoT Data
//! Plane: the classic device shadow).
//!
//! The data plane endpoint is account-specific (`<prefix>-ats.iot.<region>.amazonaws.com`): set
//! it with `AWS_ENDPOINT_URL_IOT_DATA_PLANE` (or the general `AWS_ENDPOINT_URL`), as for every
//! client here.

use async_trait::async_trait;
#[cfg(feature = "iot")]
use aws_sdk_iot::types::{AttributePayload, CertificateStatus};
#[cfg(feature = "iot-data")]
use aws_sdk_iotdataplane::primitives::Blob;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
#[cfg(feature = "iot-data")]
use hearth_domain::command::Cause;
use hearth_domain::device::DeviceId;
#[cfg(feature = "iot")]
use hearth_domain::device::ProductId;
#[cfg(feature = "iot-data")]
use hearth_domain::shadow::Object;
use hearth_ports::IotError;
#[cfg(feature = "iot-data")]
use hearth_ports::ShadowGateway;
#[cfg(feature = "iot")]
use hearth_ports::{IssuedCertificate, ThingProvisioner};
#[cfg(feature = "iot-data")]
use serde_json::{Value, json};

/// Amazon Root CA 1 (RSA 2048), which signs AWS IoT Core's `iot:Data-ATS` endpoints. From
/// <https://www.amazontrust.com/repository/AmazonRootCA1.pem> (the copy Debian's
/// `ca-certificates` ships; SHA-256 fingerprint `8E:CD:E6:88:…:AE:98:19:6E`).
#[cfg(feature = "iot")]
pub const AMAZON_ROOT_CA_1: &str = include_str!("AmazonRootCA1.pem");

/// Maps an SDK error: not-found and conflict codes to their variants, codes in `permanent` to
/// [`IotError::Rejected`], the rest (throttling, service errors, I/O) to
/// [`IotError::Transient`].
fn classify<E, R>(error: &SdkError<E, R>, permanent: &[&str]) -> IotError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = DisplayErrorContext(error).to_string();
    let code = match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    };
    match code {
        Some("ResourceNotFoundException") => IotError::NotFound(detail),
        Some("ConflictException" | "VersionConflictException") => IotError::Conflict,
        Some("UnauthorizedException" | "AccessDeniedException" | "ForbiddenException") => {
            IotError::Denied(detail)
        }
        Some(code) if permanent.contains(&code) => IotError::Rejected(detail),
        _ => IotError::Transient(detail),
    }
}

#[cfg(feature = "iot")]
const IOT_PERMANENT: &[&str] = &[
    "InvalidRequestException",
    "CertificateValidationException",
    "DeleteConflictException",
    "ResourceAlreadyExistsException",
];
#[cfg(feature = "iot-data")]
const DATA_PERMANENT: &[&str] = &[
    "InvalidRequestException",
    "RequestEntityTooLargeException",
    "UnsupportedDocumentEncodingException",
    "MethodNotAllowedException",
];

/// The [`ThingProvisioner`] on AWS IoT.
#[cfg(feature = "iot")]
#[derive(Debug, Clone)]
pub struct IotProvisioner {
    client: aws_sdk_iot::Client,
    policy: String,
}

#[cfg(feature = "iot")]
impl IotProvisioner {
    /// A provisioner attaching the device policy `policy` to every certificate it issues.
    pub fn new(config: &aws_config::SdkConfig, policy: impl Into<String>) -> Self {
        Self::from_client(aws_sdk_iot::Client::new(config), policy)
    }

    /// The same with an existing client.
    pub fn from_client(client: aws_sdk_iot::Client, policy: impl Into<String>) -> Self {
        Self {
            client,
            policy: policy.into(),
        }
    }

    /// The ARNs of the principals (certificates) attached to the thing.
    async fn principals(&self, thing: &DeviceId) -> Result<Vec<String>, IotError> {
        let mut principals = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let output = self
                .client
                .list_thing_principals()
                .thing_name(thing.as_str())
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| classify(&e, IOT_PERMANENT))?;
            principals.extend(output.principals().iter().cloned());
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(principals),
            }
        }
    }

    /// Detaches a certificate from the thing and the policy, then deactivates it.
    async fn revoke(&self, thing: &DeviceId, arn: &str) -> Result<String, IotError> {
        let id = certificate_id(arn)?;
        self.client
            .detach_thing_principal()
            .thing_name(thing.as_str())
            .principal(arn)
            .send()
            .await
            .map_err(|e| classify(&e, IOT_PERMANENT))?;
        match self
            .client
            .detach_policy()
            .policy_name(&self.policy)
            .target(arn)
            .send()
            .await
        {
            Ok(_) => {}
            // Already detached: revoking is idempotent.
            Err(e) if matches!(classify(&e, IOT_PERMANENT), IotError::NotFound(_)) => {}
            Err(e) => return Err(classify(&e, IOT_PERMANENT)),
        }
        self.client
            .update_certificate()
            .certificate_id(&id)
            .new_status(CertificateStatus::Inactive)
            .send()
            .await
            .map_err(|e| classify(&e, IOT_PERMANENT))?;
        Ok(id)
    }
}

/// The id at the end of a certificate ARN (`arn:aws:iot:<region>:<account>:cert/<id>`).
#[cfg(feature = "iot")]
fn certificate_id(arn: &str) -> Result<String, IotError> {
    arn.rsplit_once("cert/")
        .map(|(_, id)| id.to_owned())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| IotError::Rejected(format!("{arn} is not a certificate ARN")))
}

/// An issued certificate from the fields AWS returns (all required).
#[cfg(feature = "iot")]
fn issued(
    id: Option<&str>,
    arn: Option<&str>,
    pem: Option<&str>,
    private_key_pem: Option<String>,
) -> Result<IssuedCertificate, IotError> {
    Ok(IssuedCertificate {
        certificate_id: id.ok_or_else(|| missing("certificate id"))?.to_owned(),
        certificate_arn: arn.ok_or_else(|| missing("certificate ARN"))?.to_owned(),
        certificate_pem: pem.ok_or_else(|| missing("certificate"))?.to_owned(),
        private_key_pem,
        // IoT Core authenticates devices by their certificate (mutual TLS) only.
        mqtt_password: None,
    })
}

fn missing(field: &str) -> IotError {
    IotError::Transient(format!("AWS IoT returned no {field}"))
}

#[cfg(feature = "iot")]
#[async_trait]
impl ThingProvisioner for IotProvisioner {
    async fn create_thing(&self, thing: &DeviceId, product: &ProductId) -> Result<(), IotError> {
        let attributes = AttributePayload::builder()
            .attributes("product", product.as_str())
            .build();
        match self
            .client
            .create_thing()
            .thing_name(thing.as_str())
            .attribute_payload(attributes)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Exists with other attributes: the thing name is ours (opaque, generated), keep it.
            Err(e)
                if e.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ResourceAlreadyExistsException") =>
            {
                Ok(())
            }
            Err(e) => Err(classify(&e, IOT_PERMANENT)),
        }
    }

    async fn issue_certificate(
        &self,
        thing: &DeviceId,
        csr_pem: Option<&str>,
    ) -> Result<IssuedCertificate, IotError> {
        // The thing must exist before anything is created for it.
        self.client
            .describe_thing()
            .thing_name(thing.as_str())
            .send()
            .await
            .map_err(|e| classify(&e, IOT_PERMANENT))?;
        let issued = match csr_pem {
            Some(csr) => {
                let output = self
                    .client
                    .create_certificate_from_csr()
                    .certificate_signing_request(csr)
                    .set_as_active(true)
                    .send()
                    .await
                    .map_err(|e| classify(&e, IOT_PERMANENT))?;
                issued(
                    output.certificate_id(),
                    output.certificate_arn(),
                    output.certificate_pem(),
                    None,
                )?
            }
            None => {
                let output = self
                    .client
                    .create_keys_and_certificate()
                    .set_as_active(true)
                    .send()
                    .await
                    .map_err(|e| classify(&e, IOT_PERMANENT))?;
                let key = output
                    .key_pair()
                    .and_then(|k| k.private_key())
                    .ok_or_else(|| missing("private key"))?;
                issued(
                    output.certificate_id(),
                    output.certificate_arn(),
                    output.certificate_pem(),
                    Some(key.to_owned()),
                )?
            }
        };
        self.client
            .attach_policy()
            .policy_name(&self.policy)
            .target(&issued.certificate_arn)
            .send()
            .await
            .map_err(|e| classify(&e, IOT_PERMANENT))?;
        self.client
            .attach_thing_principal()
            .thing_name(thing.as_str())
            .principal(&issued.certificate_arn)
            .send()
            .await
            .map_err(|e| classify(&e, IOT_PERMANENT))?;
        Ok(issued)
    }

    async fn certificates(&self, thing: &DeviceId) -> Result<Vec<String>, IotError> {
        self.principals(thing)
            .await?
            .iter()
            .filter(|arn| arn.contains(":cert/"))
            .map(|arn| certificate_id(arn))
            .collect()
    }

    async fn revoke_certificate(
        &self,
        thing: &DeviceId,
        certificate_id: &str,
    ) -> Result<(), IotError> {
        let arn = self
            .principals(thing)
            .await?
            .into_iter()
            .find(|arn| arn.ends_with(&format!("cert/{certificate_id}")))
            .ok_or_else(|| {
                IotError::NotFound(format!("certificate {certificate_id} of {thing}"))
            })?;
        self.revoke(thing, &arn).await.map(|_| ())
    }

    async fn delete_thing(&self, thing: &DeviceId) -> Result<(), IotError> {
        let principals = match self.principals(thing).await {
            Ok(principals) => principals,
            Err(IotError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        for arn in principals.iter().filter(|arn| arn.contains(":cert/")) {
            let id = self.revoke(thing, arn).await?;
            match self
                .client
                .delete_certificate()
                .certificate_id(&id)
                .send()
                .await
            {
                Ok(_) => {}
                // Detaching is eventually consistent: a certificate that still shows attached
                // cannot be deleted yet. It is inactive and detached already (nothing can use
                // it), so the delete goes on; it stays listed as INACTIVE in the account.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_delete_conflict_exception()) =>
                {
                    tracing::warn!(thing = %thing, certificate = %id, "inactive certificate not deleted yet (still detaching)");
                }
                Err(e) => return Err(classify(&e, IOT_PERMANENT)),
            }
        }
        match self
            .client
            .delete_thing()
            .thing_name(thing.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify(&e, IOT_PERMANENT) {
                IotError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn data_endpoint(&self) -> Result<String, IotError> {
        let output = self
            .client
            .describe_endpoint()
            .endpoint_type("iot:Data-ATS")
            .send()
            .await
            .map_err(|e| classify(&e, IOT_PERMANENT))?;
        output
            .endpoint_address()
            .map(str::to_owned)
            .ok_or_else(|| missing("endpoint address"))
    }

    fn root_ca_pem(&self) -> String {
        AMAZON_ROOT_CA_1.to_owned()
    }
}

/// The [`ShadowGateway`] on the AWS IoT Data Plane (classic shadow).
#[cfg(feature = "iot-data")]
#[derive(Debug, Clone)]
pub struct IotShadowGateway {
    client: aws_sdk_iotdataplane::Client,
}

#[cfg(feature = "iot-data")]
impl IotShadowGateway {
    /// A gateway with a client built from `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::from_client(aws_sdk_iotdataplane::Client::new(config))
    }

    /// The same with an existing client.
    pub fn from_client(client: aws_sdk_iotdataplane::Client) -> Self {
        Self { client }
    }
}

#[cfg(feature = "iot-data")]
#[async_trait]
impl ShadowGateway for IotShadowGateway {
    async fn update_desired(
        &self,
        thing: &DeviceId,
        desired: &Object,
        expected_version: Option<u64>,
        cause: &Cause,
    ) -> Result<u64, IotError> {
        let mut request =
            json!({"state": {"desired": desired}, "clientToken": cause.client_token()});
        if let (Some(version), Some(fields)) = (expected_version, request.as_object_mut()) {
            fields.insert("version".to_owned(), version.into());
        }
        let payload = serde_json::to_vec(&request)
            .map_err(|e| IotError::Rejected(format!("desired state: {e}")))?;
        let output = self
            .client
            .update_thing_shadow()
            .thing_name(thing.as_str())
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| classify(&e, DATA_PERMANENT))?;
        let accepted: Value = output
            .payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .ok_or_else(|| missing("update response"))?;
        accepted
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| missing("shadow version"))
    }

    async fn get_shadow(&self, thing: &DeviceId) -> Result<Option<Object>, IotError> {
        match self
            .client
            .get_thing_shadow()
            .thing_name(thing.as_str())
            .send()
            .await
        {
            Ok(output) => {
                let document: Value = output
                    .payload()
                    .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
                    .ok_or_else(|| missing("shadow document"))?;
                match document {
                    Value::Object(document) => Ok(Some(document)),
                    _ => Err(missing("shadow document object")),
                }
            }
            Err(e) => match classify(&e, DATA_PERMANENT) {
                IotError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete_shadow(&self, thing: &DeviceId) -> Result<(), IotError> {
        match self
            .client
            .delete_thing_shadow()
            .thing_name(thing.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify(&e, DATA_PERMANENT) {
                IotError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[cfg(all(test, feature = "iot"))]
mod tests {
    use super::*;

    #[test]
    fn certificate_ids_come_from_arns() {
        assert_eq!(
            certificate_id("arn:aws:iot:us-east-1:123456789012:cert/abc123"),
            Ok("abc123".to_owned())
        );
        assert!(certificate_id("arn:aws:iot:us-east-1:123456789012:thing/x").is_err());
        assert!(certificate_id("arn:aws:iot:us-east-1:123456789012:cert/").is_err());
    }
}
