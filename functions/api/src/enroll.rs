//! Pre-registration by makers, claiming by owners (with the device's IoT thing and
//! certificate), credential re-issue, and device deletion.

use bytes::Bytes;
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, Role,
};
use hearth_domain::enrollment::{
    CLAIM_ENTROPY_BYTES, ClaimCode, THING_ENTROPY_BYTES, new_thing_name, validate_serial,
};
use hearth_ports::{EnrollError, IotError, IssuedCertificate};
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::devices::{iot, owners_only, store, summary, visible};
use crate::request::{check_name, json, json_body, optional_json_body, random};
use crate::{Caller, Kind, Ports, Problem};

/// The longest CSR accepted (a P-256 or RSA-4096 CSR is well under this).
const MAX_CSR_BYTES: usize = 8 * 1024;

fn enroll(e: EnrollError) -> Problem {
    match e {
        EnrollError::AlreadyRegistered => Problem::new(
            Kind::AlreadyRegistered,
            "This product already has a device with this serial number.",
        ),
        EnrollError::UnknownCode => Problem::new(
            Kind::UnknownClaimCode,
            "No unclaimed device has this claim code (a code works once).",
        ),
        EnrollError::UnknownDevice => Problem::not_found(),
        EnrollError::Store(e) => store(e),
        other => Problem::internal(&other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Registration {
    product_id: String,
    serial: String,
    device_type: DeviceType,
}

/// `POST /v1/maker/devices`: a maker pre-registers a device and receives its claim code, once.
pub async fn register(
    ports: Ports<'_>,
    caller: &Caller,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    if !caller.is_maker() {
        return Err(Problem::new(
            Kind::Forbidden,
            "Only members of the makers group can register devices.",
        ));
    }
    let body: Registration = json_body(request)?;
    let product = ProductId::parse(body.product_id.as_str())
        .map_err(|e| Problem::invalid("/productId", format!("productId: {e}.")))?;
    validate_serial(&body.serial)
        .map_err(|reason| Problem::invalid("/serial", format!("serial {reason}.")))?;
    let code = ClaimCode::generate(random::<CLAIM_ENTROPY_BYTES>()?);
    let device = Device {
        id: new_thing_name(random::<THING_ENTROPY_BYTES>()?),
        product,
        household: None,
        name: body.device_type.default_name().to_owned(),
        device_type: body.device_type,
        created_at: ports.clock.now_ms(),
        serial: Some(body.serial),
        maker: Some(caller.user.clone()),
        claimed_at: None,
        claim_code_hash: Some(code.hash()),
    };
    ports.enrollment.register(&device).await.map_err(enroll)?;
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "id": device.id.as_str(),
            "productId": device.product.as_str(),
            "serial": device.serial,
            "deviceType": device.device_type,
            "createdAt": device.created_at,
            "claimCode": code.display(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Claim {
    claim_code: String,
    name: Option<String>,
    household_id: Option<String>,
    csr: Option<String>,
}

fn check_csr(csr: Option<&str>) -> Result<(), Problem> {
    match csr {
        Some(csr) if csr.len() > MAX_CSR_BYTES => Err(Problem::invalid(
            "/csr",
            format!("csr is {} bytes; the limit is {MAX_CSR_BYTES}.", csr.len()),
        )),
        Some(csr) if !csr.contains("-----BEGIN CERTIFICATE REQUEST-----") => Err(Problem::invalid(
            "/csr",
            "csr must be a PEM certificate signing request.",
        )),
        _ => Ok(()),
    }
}

/// The household a claim goes to: the one named (the caller must own it), else the caller's
/// first owned household, else a new one (first claim).
async fn target_household(
    ports: Ports<'_>,
    caller: &Caller,
    named: Option<&str>,
) -> Result<HouseholdId, Problem> {
    let memberships = ports
        .registry
        .memberships(&caller.user)
        .await
        .map_err(store)?;
    if let Some(named) = named {
        let membership = HouseholdId::parse(named)
            .ok()
            .and_then(|id| memberships.iter().find(|m| m.household == id))
            .ok_or_else(|| Problem {
                field: Some("/householdId".to_owned()),
                ..Problem::not_found()
            })?;
        owners_only(membership.role, "add devices to it")?;
        return Ok(membership.household.clone());
    }
    let mut owned: Vec<&Membership> = memberships
        .iter()
        .filter(|m| m.role == Role::Owner)
        .collect();
    owned.sort_by(|a, b| a.household.cmp(&b.household));
    if let Some(first) = owned.first() {
        return Ok(first.household.clone());
    }
    let id = HouseholdId::parse(format!("hh-{}", hex(&random::<16>()?)))
        .map_err(|e| Problem::internal(&e))?;
    ports
        .registry
        .put_household(&Household {
            id: id.clone(),
            name: "Home".to_owned(),
        })
        .await
        .map_err(store)?;
    ports
        .registry
        .put_membership(&Membership {
            user: caller.user.clone(),
            household: id.clone(),
            role: Role::Owner,
        })
        .await
        .map_err(store)?;
    Ok(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The step of provisioning that failed.
enum Step {
    Thing,
    Certificate,
    Endpoint,
}

/// Revokes every certificate attached to the thing except `keep`, logging (not failing on) a
/// revocation that does not go through: the caller already holds a working credential.
async fn revoke_others(ports: Ports<'_>, thing: &DeviceId, keep: Option<&str>) {
    let attached = match ports.provisioner.certificates(thing).await {
        Ok(attached) => attached,
        Err(IotError::NotFound(_)) => return,
        Err(e) => {
            tracing::error!(thing = %thing, error = %e, "listing certificates to revoke failed");
            return;
        }
    };
    for id in attached.iter().filter(|id| Some(id.as_str()) != keep) {
        match ports.provisioner.revoke_certificate(thing, id).await {
            Ok(()) | Err(IotError::NotFound(_)) => {}
            Err(e) => {
                tracing::error!(thing = %thing, certificate = %id, error = %e, "revoking a previous certificate failed");
            }
        }
    }
}

/// A fresh start for a newly claimed device: its thing (created if missing), no certificate
/// or shadow left from a previous owner, and a new certificate.
async fn provision_claimed(
    ports: Ports<'_>,
    device: &Device,
    csr: Option<&str>,
) -> Result<(IssuedCertificate, String), (Step, IotError)> {
    ports
        .provisioner
        .create_thing(&device.id, &device.product)
        .await
        .map_err(|e| (Step::Thing, e))?;
    revoke_others(ports, &device.id, None).await;
    match ports.shadows.delete_shadow(&device.id).await {
        Ok(()) | Err(IotError::NotFound(_)) => {}
        Err(e) => return Err((Step::Thing, e)),
    }
    issue(ports, device, csr).await
}

/// A new certificate for the device's existing thing, and the data endpoint.
async fn issue(
    ports: Ports<'_>,
    device: &Device,
    csr: Option<&str>,
) -> Result<(IssuedCertificate, String), (Step, IotError)> {
    let certificate = ports
        .provisioner
        .issue_certificate(&device.id, csr)
        .await
        .map_err(|e| (Step::Certificate, e))?;
    let endpoint = ports
        .provisioner
        .data_endpoint()
        .await
        .map_err(|e| (Step::Endpoint, e))?;
    Ok((certificate, endpoint))
}

fn credentials(
    ports: Ports<'_>,
    thing: &DeviceId,
    certificate: &IssuedCertificate,
    endpoint: &str,
) -> Value {
    let mut body = json!({
        "certificateId": certificate.certificate_id,
        "certificatePem": certificate.certificate_pem,
        "rootCaPem": ports.provisioner.root_ca_pem(),
        "endpoint": endpoint,
    });
    if let Some(object) = body.as_object_mut() {
        if let Some(key) = &certificate.private_key_pem {
            object.insert("privateKeyPem".to_owned(), Value::String(key.clone()));
        }
        if let Some(password) = &certificate.mqtt_password {
            object.insert(
                "mqttUsername".to_owned(),
                Value::String(thing.as_str().to_owned()),
            );
            object.insert("mqttPassword".to_owned(), Value::String(password.clone()));
        }
    }
    body
}

/// A refused CSR is the client's (422 on `/csr`); anything else is ours: 503 when retrying can
/// help, else 500. After a claim (`claimed`), every answer says that the device is the caller's
/// and how to get its credentials (the claim itself stands; the code is used).
fn provisioning_failed(device: &Device, (step, e): (Step, IotError), claimed: bool) -> Problem {
    let retry = format!(
        "request its credentials with POST /v1/devices/{}/credentials",
        device.id
    );
    if let (Step::Certificate, IotError::Rejected(detail)) = (&step, &e) {
        tracing::warn!(thing = %device.id, detail, "certificate request refused");
        let detail = if claimed {
            format!(
                "The certificate signing request was refused. The device is yours: {retry} and a valid CSR."
            )
        } else {
            "The certificate signing request was refused.".to_owned()
        };
        return Problem::invalid("/csr", detail);
    }
    let step = match step {
        Step::Thing => "preparing the thing",
        Step::Certificate => "issuing the certificate",
        Step::Endpoint => "reading the data endpoint",
    };
    tracing::error!(thing = %device.id, step, error = %e, "provisioning failed");
    match (e, claimed) {
        (IotError::Transient(_), true) => Problem::new(
            Kind::Unavailable,
            format!("The device is yours, but its credentials could not be issued; {retry}."),
        ),
        (e @ IotError::Transient(_), false) => Problem::unavailable(&e),
        (_, true) => Problem::new(
            Kind::Internal,
            format!("The device is yours, but its credentials could not be issued; {retry} later."),
        ),
        (other, false) => Problem::internal(&other),
    }
}

/// `POST /v1/claims`: an owner claims a device with its claim code and receives the device's
/// certificate (from its CSR, or with a new key pair returned once).
pub async fn claim(
    ports: Ports<'_>,
    caller: &Caller,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let body: Claim = json_body(request)?;
    let code = ClaimCode::parse(&body.claim_code).ok_or_else(|| {
        Problem::invalid(
            "/claimCode",
            "claimCode must be the 20-character code printed on the device.",
        )
    })?;
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    check_csr(body.csr.as_deref())?;
    let household = target_household(ports, caller, body.household_id.as_deref()).await?;
    // Claimed first: of two owners with one code exactly one gets here.
    let device = ports
        .enrollment
        .claim(
            &code.hash(),
            &household,
            body.name.as_deref(),
            ports.clock.now_ms(),
        )
        .await
        .map_err(enroll)?;
    let (certificate, endpoint) = provision_claimed(ports, &device, body.csr.as_deref())
        .await
        .map_err(|e| provisioning_failed(&device, e, true))?;
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "device": summary(&device),
            "credentials": credentials(ports, &device.id, &certificate, &endpoint),
        }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reissue {
    csr: Option<String>,
}

/// `POST /v1/devices/{id}/credentials`: owners only; a new certificate, after which every
/// previous one of the device is deactivated.
pub async fn reissue(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let (device, role) = visible(ports, caller, id).await?;
    owners_only(role, "issue device credentials")?;
    let body: Reissue = optional_json_body(request)?.unwrap_or_default();
    check_csr(body.csr.as_deref())?;
    let household = device.household.clone().ok_or_else(Problem::not_found)?;
    // The thing exists while the device is claimed; a missing one means a delete got there
    // first, and the device is no longer the caller's.
    let (certificate, endpoint) =
        issue(ports, &device, body.csr.as_deref())
            .await
            .map_err(|e| match e {
                (_, IotError::NotFound(_)) => Problem::not_found(),
                e => provisioning_failed(&device, e, false),
            })?;
    // Still in the caller's household? A delete racing this request must not leave a working
    // certificate behind.
    let still = ports
        .registry
        .get_device(&device.id)
        .await
        .map_err(store)?
        .is_some_and(|d| d.household.as_ref() == Some(&household));
    if !still {
        revoke_others(ports, &device.id, None).await;
        return Err(Problem::not_found());
    }
    // Every other certificate of the device stops working, including one a concurrent re-issue
    // made (the last re-issue wins).
    revoke_others(ports, &device.id, Some(&certificate.certificate_id)).await;
    Ok(json(
        StatusCode::CREATED,
        &credentials(ports, &device.id, &certificate, &endpoint),
    ))
}

/// `DELETE /v1/devices/{id}`: owners only. Deletes the thing (its certificates detached,
/// deactivated and deleted) and its shadow, then releases the device from the household, so a
/// next owner can claim it with its code and starts clean.
pub async fn delete(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<Response<Bytes>, Problem> {
    let (device, role) = visible(ports, caller, id).await?;
    owners_only(role, "delete a device")?;
    let household = device.household.clone().ok_or_else(Problem::not_found)?;
    // The thing first (its certificates detached, deactivated and deleted: the device can no
    // longer connect, so it cannot recreate its shadow), then the shadow, then the release. If
    // a step fails, a retry finds the earlier ones done; the release is conditional on the
    // household, so a late delete never releases a next owner's device.
    match ports.provisioner.delete_thing(&device.id).await {
        Ok(()) | Err(IotError::NotFound(_)) => {}
        Err(e) => return Err(iot(e)),
    }
    match ports.shadows.delete_shadow(&device.id).await {
        Ok(()) | Err(IotError::NotFound(_)) => {}
        Err(e) => return Err(iot(e)),
    }
    ports
        .enrollment
        .release(&device.id, &household)
        .await
        .map_err(enroll)?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
