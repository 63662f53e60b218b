//! A registry with two users' households and devices, and helpers to call the handler.

use bytes::Bytes;
use hearth_api::{Caller, Ports, handle};
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, Role, UserId,
};
use hearth_ports::memory::{MemoryProvisioner, MemoryRegistry, MemoryShadows, MemoryStateStore};
use hearth_ports::{DeviceRegistry, ManualClock};
use http::{Method, Request, StatusCode};
use serde_json::Value;

pub fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

pub struct World {
    pub registry: MemoryRegistry,
    pub state: MemoryStateStore,
    pub shadows: MemoryShadows,
    pub provisioner: MemoryProvisioner,
    /// The handler's time: stands still until a test moves it.
    pub clock: ManualClock,
}

/// When every test world's clock starts (2023-11-14).
pub const EPOCH_MS: u64 = 1_700_000_000_000;

impl Default for World {
    fn default() -> Self {
        Self {
            registry: MemoryRegistry::default(),
            state: MemoryStateStore::default(),
            shadows: MemoryShadows::default(),
            provisioner: MemoryProvisioner::default(),
            clock: ManualClock::new(EPOCH_MS),
        }
    }
}

pub fn caller(user: &str) -> Caller {
    Caller {
        user: ok(UserId::parse(user)),
        groups: Vec::new(),
        email: None,
    }
}

pub fn device(id: &str, household: &str, device_type: DeviceType) -> Device {
    Device {
        id: ok(DeviceId::parse(id)),
        product: ok(ProductId::parse("acme-1")),
        household: Some(ok(HouseholdId::parse(household))),
        name: format!("Device {id}"),
        device_type,
        created_at: 1_700_000_000_000,
        serial: None,
        maker: None,
        claimed_at: None,
        claim_code_hash: None,
    }
}

impl World {
    /// alice owns `home-a` (light `a-light`, lock `a-lock`, plug `a-plug`) and `home-b`
    /// (`b-1`, `b-2`); bob owns `home-c` (`c-1`) and is a member of `home-a`.
    pub async fn seeded() -> World {
        let world = World::default();
        for (user, household, role) in [
            ("alice", "home-a", Role::Owner),
            ("alice", "home-b", Role::Owner),
            ("bob", "home-c", Role::Owner),
            ("bob", "home-a", Role::Member),
        ] {
            ok(world
                .registry
                .put_household(&Household {
                    id: ok(HouseholdId::parse(household)),
                    name: household.to_owned(),
                })
                .await);
            ok(world
                .registry
                .put_membership(&Membership {
                    user: ok(UserId::parse(user)),
                    household: ok(HouseholdId::parse(household)),
                    role,
                })
                .await);
        }
        for d in [
            device("a-light", "home-a", DeviceType::Light),
            device("a-lock", "home-a", DeviceType::Lock),
            device("a-plug", "home-a", DeviceType::Plug),
            device("b-1", "home-b", DeviceType::Sensor),
            device("b-2", "home-b", DeviceType::Thermostat),
            device("c-1", "home-c", DeviceType::Light),
        ] {
            ok(world.registry.put_device(&d).await);
        }
        world
    }

    /// `household` no longer lists device `id`.
    pub async fn registry_has_no_trace_of(&self, id: &str, household: &str) -> bool {
        let page = ok(self
            .registry
            .household_devices(&ok(HouseholdId::parse(household)), 100, None)
            .await);
        page.items.iter().all(|d| d.id.as_str() != id)
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports {
            registry: &self.registry,
            state: &self.state,
            enrollment: &self.registry,
            invitations: &self.registry,
            shadows: &self.shadows,
            provisioner: &self.provisioner,
            clock: &self.clock,
        }
    }

    /// Moves the world's clock on by a millisecond; the new time.
    pub fn tick(&self) -> u64 {
        self.clock.advance(std::time::Duration::from_millis(1))
    }
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub allow: Option<String>,
    pub body: Value,
    pub raw: String,
}

pub fn request(method: Method, path: &str, body: Option<&str>) -> Request<Bytes> {
    let mut builder = Request::builder().method(method).uri(path);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    ok(builder.body(Bytes::from(body.unwrap_or("").to_owned())))
}

pub async fn send(ports: Ports<'_>, caller: Option<&Caller>, request: Request<Bytes>) -> Reply {
    let response = handle(ports, caller, request).await;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let raw = String::from_utf8_lossy(response.body()).into_owned();
    Reply {
        status: response.status(),
        content_type: header(http::header::CONTENT_TYPE).unwrap_or_default(),
        allow: header(http::header::ALLOW),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    }
}

pub async fn call(
    world: &World,
    user: &str,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> Reply {
    send(
        world.ports(),
        Some(&caller(user)),
        request(method, path, body),
    )
    .await
}

impl Reply {
    /// Asserts a problem of `slug` with `status`.
    pub fn problem(&self, status: u16, slug: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.raw);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.raw
        );
        assert_eq!(
            self.body["type"],
            format!("urn:hearth:problem:{slug}"),
            "{}",
            self.raw
        );
        assert_eq!(self.body["status"], status, "{}", self.raw);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        self
    }
}

pub fn maker(user: &str) -> Caller {
    Caller {
        groups: vec!["makers".to_owned()],
        ..caller(user)
    }
}

pub async fn call_as(
    world: &World,
    who: &Caller,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> Reply {
    send(world.ports(), Some(who), request(method, path, body)).await
}
