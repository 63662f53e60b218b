//! The IoT registry emulated: things, and device certificates signed by a local certificate
//! authority, kept in the embedded database.
//!
//! As in AWS IoT, a certificate is issued from the device's CSR (the key never leaves the device)
//! or with a new key pair that is returned once; its id is the SHA-256 of its DER encoding;
//! revoking detaches and deactivates it; deleting a thing deletes its certificates. The local CA
//! (an ECDSA P-256 key and a self-signed certificate under `<data dir>/ca/`) is created on first
//! start and is the root CA the owner API returns locally.

use std::path::Path;

use async_trait::async_trait;
use hearth_domain::device::{DeviceId, ProductId};
use hearth_embedded::{Documents, EmbeddedError};
use hearth_ports::{IotError, IssuedCertificate, ThingProvisioner};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::stack::StackError;

/// The local certificate authority.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

fn ca_error(dir: &Path, e: impl std::fmt::Display) -> StackError {
    StackError::Storage {
        path: dir.display().to_string(),
        detail: format!("local certificate authority: {e}"),
    }
}

impl LocalCa {
    /// Opens the CA under `<data_dir>/ca`, creating it on first use.
    pub fn open(data_dir: &Path) -> Result<LocalCa, StackError> {
        let dir = data_dir.join("ca");
        let key_path = dir.join("ca-key.pem");
        let cert_path = dir.join("ca-cert.pem");
        if key_path.exists() && cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).map_err(|e| ca_error(&dir, e))?;
            let pem = std::fs::read_to_string(&cert_path).map_err(|e| ca_error(&dir, e))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| ca_error(&dir, e))?;
            let issuer = Issuer::from_ca_cert_pem(&pem, key).map_err(|e| ca_error(&dir, e))?;
            return Ok(LocalCa { issuer, pem });
        }
        std::fs::create_dir_all(&dir).map_err(|e| ca_error(&dir, e))?;
        let key = KeyPair::generate().map_err(|e| ca_error(&dir, e))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Hearth local stack");
        name.push(DnType::CommonName, "Hearth local CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2026, 1, 1);
        params.not_after = date_time_ymd(2046, 1, 1);
        let cert = params.self_signed(&key).map_err(|e| ca_error(&dir, e))?;
        let pem = cert.pem();
        write_private(&key_path, &key.serialize_pem()).map_err(|e| ca_error(&dir, e))?;
        std::fs::write(&cert_path, &pem).map_err(|e| ca_error(&dir, e))?;
        Ok(LocalCa {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A device certificate for `thing`: from `csr` (PEM), or with a new key pair (returned).
    fn issue(
        &self,
        thing: &DeviceId,
        csr: Option<&str>,
    ) -> Result<(Vec<u8>, String, Option<String>), IotError> {
        let rejected = |e: rcgen::Error| IotError::Rejected(format!("certificate request: {e}"));
        let device_params = |mut params: CertificateParams, keep_subject: bool| {
            // A CSR's subject is kept (as AWS IoT does); otherwise the subject is the thing.
            if !keep_subject || params.distinguished_name.iter().next().is_none() {
                let mut name = DistinguishedName::new();
                name.push(DnType::CommonName, thing.as_str());
                params.distinguished_name = name;
            }
            params.is_ca = IsCa::ExplicitNoCa;
            params.not_before = date_time_ymd(2026, 1, 1);
            params.not_after = date_time_ymd(2049, 12, 31);
            params.use_authority_key_identifier_extension = true;
            params
        };
        let (cert, key) = match csr {
            Some(csr) => {
                let request = CertificateSigningRequestParams::from_pem(csr).map_err(rejected)?;
                let params = device_params(request.params, true);
                let cert = params
                    .signed_by(&request.public_key, &self.issuer)
                    .map_err(rejected)?;
                (cert, None)
            }
            None => {
                let key = KeyPair::generate().map_err(|e| IotError::Transient(e.to_string()))?;
                let params = device_params(CertificateParams::default(), false);
                let cert = params
                    .signed_by(&key, &self.issuer)
                    .map_err(|e| IotError::Transient(e.to_string()))?;
                (cert, Some(key.serialize_pem()))
            }
        };
        Ok((cert.der().to_vec(), cert.pem(), key))
    }
}

/// Writes a file readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[derive(Serialize, Deserialize)]
struct Thing {
    product: String,
}

#[derive(Serialize, Deserialize)]
struct Certificate {
    thing: String,
    pem: String,
    /// SHA-256 (hex) of the MQTT password issued with the certificate.
    #[serde(default)]
    password_sha256: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equality in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The [`ThingProvisioner`] of the local stack.
pub struct LocalProvisioner {
    docs: Documents,
    ca: LocalCa,
    /// Where devices connect, once the MQTT listener is bound.
    endpoint: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for LocalProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvisioner")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

// Keys: `t <thing>` a thing; `c <thing> <id>` a certificate attached to it; `r <id>` a revoked
// one (kept, inactive, as AWS keeps an inactive certificate until it is deleted).
const SEP: char = '\u{1}';

fn thing_key(thing: &DeviceId) -> String {
    format!("t{SEP}{thing}")
}

fn attached_prefix(thing: &DeviceId) -> String {
    format!("c{SEP}{thing}{SEP}")
}

fn storage(e: EmbeddedError) -> IotError {
    IotError::Transient(e.to_string())
}

impl LocalProvisioner {
    /// Things and certificates in `docs`, signed by `ca`. Set the endpoint with
    /// [`set_endpoint`](Self::set_endpoint) once the MQTT listener is bound.
    pub fn new(docs: Documents, ca: LocalCa) -> Self {
        Self {
            docs,
            ca,
            endpoint: std::sync::OnceLock::new(),
        }
    }

    /// Where devices connect: the local MQTT listener, `host:port` (the first value sticks).
    pub fn set_endpoint(&self, endpoint: String) {
        let _ = self.endpoint.set(endpoint);
    }

    /// Whether `password` belongs to a certificate attached to `thing` (active: revoked and
    /// deleted certificates are no longer attached).
    pub fn authenticate(&self, thing: &str, password: &[u8]) -> bool {
        let Ok(thing) = DeviceId::parse(thing) else {
            return false;
        };
        let hash = sha256_hex(password);
        match self.docs.scan::<Certificate>(&attached_prefix(&thing)) {
            Ok(certificates) => certificates.iter().any(|(_, c)| {
                c.password_sha256
                    .as_deref()
                    .is_some_and(|stored| constant_time_eq(stored.as_bytes(), hash.as_bytes()))
            }),
            Err(e) => {
                tracing::error!(thing = %thing, error = %e, "reading device credentials failed");
                false
            }
        }
    }

    fn exists(&self, thing: &DeviceId) -> Result<bool, IotError> {
        Ok(self
            .docs
            .get::<Thing>(&thing_key(thing))
            .map_err(storage)?
            .is_some())
    }
}

#[async_trait]
impl ThingProvisioner for LocalProvisioner {
    async fn create_thing(&self, thing: &DeviceId, product: &ProductId) -> Result<(), IotError> {
        let key = thing_key(thing);
        let _guard = self.docs.lock(&key);
        if self.exists(thing)? {
            return Ok(());
        }
        let record = Thing {
            product: product.as_str().to_owned(),
        };
        self.docs
            .write(&[(key.as_str(), &record)], &[])
            .map_err(storage)
    }

    async fn issue_certificate(
        &self,
        thing: &DeviceId,
        csr_pem: Option<&str>,
    ) -> Result<IssuedCertificate, IotError> {
        let _guard = self.docs.lock(&thing_key(thing));
        if !self.exists(thing)? {
            return Err(IotError::NotFound(format!("thing {thing}")));
        }
        let (der, pem, private_key_pem) = self.ca.issue(thing, csr_pem)?;
        let id = sha256_hex(&der);
        let mut secret = [0u8; 24];
        getrandom::fill(&mut secret).map_err(|e| IotError::Transient(e.to_string()))?;
        let password: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let record = Certificate {
            thing: thing.as_str().to_owned(),
            pem: pem.clone(),
            password_sha256: Some(sha256_hex(password.as_bytes())),
        };
        let key = format!("{}{id}", attached_prefix(thing));
        self.docs
            .write(&[(key.as_str(), &record)], &[])
            .map_err(storage)?;
        Ok(IssuedCertificate {
            certificate_arn: format!("arn:aws:iot:local:000000000000:cert/{id}"),
            certificate_id: id,
            certificate_pem: pem,
            private_key_pem,
            mqtt_password: Some(password),
        })
    }

    async fn certificates(&self, thing: &DeviceId) -> Result<Vec<String>, IotError> {
        if !self.exists(thing)? {
            return Err(IotError::NotFound(format!("thing {thing}")));
        }
        let prefix = attached_prefix(thing);
        Ok(self
            .docs
            .scan::<Certificate>(&prefix)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    async fn revoke_certificate(
        &self,
        thing: &DeviceId,
        certificate_id: &str,
    ) -> Result<(), IotError> {
        let _guard = self.docs.lock(&thing_key(thing));
        let key = format!("{}{certificate_id}", attached_prefix(thing));
        let record: Certificate = self.docs.get(&key).map_err(storage)?.ok_or_else(|| {
            IotError::NotFound(format!("certificate {certificate_id} of {thing}"))
        })?;
        let revoked = format!("r{SEP}{certificate_id}");
        self.docs
            .write(&[(revoked.as_str(), &record)], &[key.as_str()])
            .map_err(storage)
    }

    async fn delete_thing(&self, thing: &DeviceId) -> Result<(), IotError> {
        let key = thing_key(thing);
        let _guard = self.docs.lock(&key);
        let certificates: Vec<(String, Certificate)> =
            self.docs.scan(&attached_prefix(thing)).map_err(storage)?;
        let mut remove: Vec<&str> = certificates.iter().map(|(k, _)| k.as_str()).collect();
        remove.push(&key);
        self.docs.write::<Thing>(&[], &remove).map_err(storage)
    }

    async fn data_endpoint(&self) -> Result<String, IotError> {
        self.endpoint
            .get()
            .cloned()
            .ok_or_else(|| IotError::Transient("the MQTT listener is not bound yet".to_owned()))
    }

    fn root_ca_pem(&self) -> String {
        self.ca.pem().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_provisioner_passes_the_contract_and_signs_real_certificates() {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        };
        let db = match hearth_embedded::Db::open(dir.path()) {
            Ok(db) => db,
            Err(e) => panic!("{e}"),
        };
        let ca = match LocalCa::open(dir.path()) {
            Ok(ca) => ca,
            Err(e) => panic!("{e}"),
        };
        let ca_pem = ca.pem().to_owned();
        let provisioner = LocalProvisioner::new(db.documents("iot"), ca);
        provisioner.set_endpoint("127.0.0.1:1883".to_owned());
        let key = match KeyPair::generate() {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        };
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "device");
        let csr = match params.serialize_request(&key).and_then(|csr| csr.pem()) {
            Ok(csr) => csr,
            Err(e) => panic!("{e}"),
        };
        hearth_ports::contract::provisioner(&provisioner, "loc", Some(&csr)).await;
        // The CA is kept: reopening gives the same certificate.
        let again = match LocalCa::open(dir.path()) {
            Ok(ca) => ca,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(again.pem(), ca_pem);
        assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // Without a CSR the certificate names the thing; with one, the CSR's subject is kept.
        let thing = match DeviceId::parse("loc-cn") {
            Ok(thing) => thing,
            Err(e) => panic!("{e}"),
        };
        let product = match ProductId::parse("lamp-x") {
            Ok(product) => product,
            Err(e) => panic!("{e}"),
        };
        let subject = |pem: &str| {
            let (_, pem) = match x509_parser::pem::parse_x509_pem(pem.as_bytes()) {
                Ok(parsed) => parsed,
                Err(e) => panic!("{e}"),
            };
            match pem.parse_x509() {
                Ok(cert) => Some(cert.subject().to_string()),
                Err(e) => panic!("{e}"),
            }
        };
        if let Err(e) = provisioner.create_thing(&thing, &product).await {
            panic!("{e}");
        }
        // The MQTT password works while its certificate is attached, and only for its thing.
        let issued = match provisioner.issue_certificate(&thing, None).await {
            Ok(issued) => issued,
            Err(e) => panic!("{e}"),
        };
        let password = issued.mqtt_password.clone().unwrap_or_default();
        assert_eq!(password.len(), 48);
        assert!(provisioner.authenticate("loc-cn", password.as_bytes()));
        assert!(!provisioner.authenticate("loc-cn", b"wrong"));
        assert!(!provisioner.authenticate("loc-other", password.as_bytes()));
        assert!(!provisioner.authenticate("not a thing", password.as_bytes()));
        if let Err(e) = provisioner
            .revoke_certificate(&thing, &issued.certificate_id)
            .await
        {
            panic!("{e}");
        }
        assert!(
            !provisioner.authenticate("loc-cn", password.as_bytes()),
            "revoked"
        );
        let second = match provisioner.issue_certificate(&thing, None).await {
            Ok(issued) => issued.mqtt_password.unwrap_or_default(),
            Err(e) => panic!("{e}"),
        };
        assert!(provisioner.authenticate("loc-cn", second.as_bytes()));
        if let Err(e) = provisioner.delete_thing(&thing).await {
            panic!("{e}");
        }
        assert!(
            !provisioner.authenticate("loc-cn", second.as_bytes()),
            "deleted"
        );
        if let Err(e) = provisioner.create_thing(&thing, &product).await {
            panic!("{e}");
        }
        for (csr, expected) in [(None, "loc-cn"), (Some(csr.as_str()), "device")] {
            match provisioner.issue_certificate(&thing, csr).await {
                Ok(issued) => {
                    let cn = subject(&issued.certificate_pem).unwrap_or_default();
                    assert!(cn.contains(expected), "{cn}");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}
