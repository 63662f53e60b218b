//! Devices, households and the roles users hold in them.
//!
//! A device's id is its AWS IoT thing name: an opaque identifier, never derived from a serial
//! number (serials are guessable; thing names appear in topics and policies). A device belongs
//! to at most one household; users hold the owner or member role in households.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shadow::Object;

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    /// Which kind of identifier.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates an identifier.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let allowed: fn(char) -> bool = $allowed;
                if value.is_empty() {
                    return Err(InvalidId { kind: $kind, reason: "empty" });
                }
                if value.len() > $max {
                    return Err(InvalidId { kind: $kind, reason: "too long" });
                }
                if !value.chars().all(allowed) {
                    return Err(InvalidId { kind: $kind, reason: "contains a character that is not allowed" });
                }
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn thing_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')
}

fn slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

fn user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+')
}

identifier!(
    /// A device id: the AWS IoT thing name (1–128 of `[a-zA-Z0-9:_-]`). Opaque.
    DeviceId, "thing name", 128, thing_name_char
);
identifier!(
    /// A product id (1–64 of `[a-zA-Z0-9_-]`), the second level of `dt/<product>/<thing>/...`.
    ProductId, "product id", 64, slug_char
);
identifier!(
    /// A household id (1–64 of `[a-zA-Z0-9_-]`).
    HouseholdId, "household id", 64, slug_char
);
identifier!(
    /// A user id: the identity provider's subject (1–128 of `[a-zA-Z0-9_.@+-]`).
    UserId, "user id", 128, user_char
);
identifier!(
    /// An invitation id (1–64 of `[a-zA-Z0-9_-]`); random, so not guessable.
    InvitationId, "invitation id", 64, slug_char
);

/// The kinds of device the platform knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    /// A dimmable, possibly colour, light.
    Light,
    /// A switchable plug.
    Plug,
    /// A heating/cooling thermostat.
    Thermostat,
    /// A door lock.
    Lock,
    /// A camera.
    Camera,
    /// A read-only sensor (temperature, humidity, motion, contact).
    Sensor,
}

/// One thing a device can do or report, with its field in the shadow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `power`: `"on"` or `"off"`.
    Power,
    /// `brightness`: integer 0–100.
    Brightness,
    /// `color`: `{"h": 0–360, "s": 0–1, "v": 0–1}`.
    Color,
    /// `colorTemperatureK`: integer 1000–10000.
    ColorTemperature,
    /// `targetTemperatureC`: number 5–35.
    TargetTemperature,
    /// `mode`: `"heat"`, `"cool"`, `"auto"`, `"eco"` or `"off"`.
    ThermostatMode,
    /// `lock`: `"locked"` or `"unlocked"`; a device may also report `"jammed"`, which cannot be
    /// set.
    Lock,
    /// `streaming`: boolean.
    Streaming,
    /// `temperatureC`: number (reported only).
    Temperature,
    /// `humidity`: number 0–100 (reported only).
    Humidity,
    /// `motion`: boolean (reported only).
    Motion,
    /// `contact`: `"open"` or `"closed"` (reported only).
    Contact,
    /// `firmwareVersion`: 1–64 printable ASCII characters (reported only).
    FirmwareVersion,
    /// `batteryPercent`: integer 0–100 (reported only).
    BatteryPercent,
}

/// Longest `firmwareVersion`, in characters.
pub const MAX_FIRMWARE_VERSION_CHARS: usize = 64;

impl Capability {
    /// The shadow field that carries this capability.
    pub fn field(self) -> &'static str {
        match self {
            Self::Power => "power",
            Self::Brightness => "brightness",
            Self::Color => "color",
            Self::ColorTemperature => "colorTemperatureK",
            Self::TargetTemperature => "targetTemperatureC",
            Self::ThermostatMode => "mode",
            Self::Lock => "lock",
            Self::Streaming => "streaming",
            Self::Temperature => "temperatureC",
            Self::Humidity => "humidity",
            Self::Motion => "motion",
            Self::Contact => "contact",
            Self::FirmwareVersion => "firmwareVersion",
            Self::BatteryPercent => "batteryPercent",
        }
    }

    /// Whether an owner may set this field in `desired`.
    pub fn writable(self) -> bool {
        !matches!(
            self,
            Self::Temperature
                | Self::Humidity
                | Self::Motion
                | Self::Contact
                | Self::FirmwareVersion
                | Self::BatteryPercent
        )
    }

    /// Checks a desired value for this capability: a reported value's rule, less the values
    /// only a device may report (a lock's `"jammed"`).
    fn check_desired(self, value: &Value) -> Result<(), &'static str> {
        match (self, value.as_str()) {
            (Self::Lock, Some("locked" | "unlocked")) => Ok(()),
            (Self::Lock, Some("jammed")) => Err(
                "cannot be set to \"jammed\" (only the device reports it); set \"locked\" or \"unlocked\"",
            ),
            (Self::Lock, _) => Err("must be \"locked\" or \"unlocked\""),
            _ => self.check(value),
        }
    }

    /// Checks a value for this capability as a device may report it.
    fn check(self, value: &Value) -> Result<(), &'static str> {
        let in_range = |lo: f64, hi: f64| value.as_f64().is_some_and(|v| (lo..=hi).contains(&v));
        let one_of = |allowed: &[&str]| value.as_str().is_some_and(|v| allowed.contains(&v));
        let ok = match self {
            Self::Power => one_of(&["on", "off"]),
            Self::Brightness => value.as_u64().is_some_and(|v| v <= 100),
            Self::Color => value.as_object().is_some_and(|c| {
                c.len() == 3
                    && c.get("h")
                        .and_then(Value::as_f64)
                        .is_some_and(|h| (0.0..=360.0).contains(&h))
                    && c.get("s")
                        .and_then(Value::as_f64)
                        .is_some_and(|s| (0.0..=1.0).contains(&s))
                    && c.get("v")
                        .and_then(Value::as_f64)
                        .is_some_and(|v| (0.0..=1.0).contains(&v))
            }),
            Self::ColorTemperature => value.as_u64().is_some_and(|v| (1000..=10_000).contains(&v)),
            Self::TargetTemperature => in_range(5.0, 35.0),
            Self::ThermostatMode => one_of(&["heat", "cool", "auto", "eco", "off"]),
            Self::Lock => one_of(&["locked", "unlocked", "jammed"]),
            Self::Streaming | Self::Motion => value.is_boolean(),
            Self::Temperature => value.is_number(),
            Self::Humidity => in_range(0.0, 100.0),
            Self::Contact => one_of(&["open", "closed"]),
            Self::FirmwareVersion => value.as_str().is_some_and(|v| {
                (1..=MAX_FIRMWARE_VERSION_CHARS).contains(&v.len())
                    && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
            }),
            Self::BatteryPercent => value.as_u64().is_some_and(|v| v <= 100),
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Self::Power => "must be \"on\" or \"off\"",
                Self::Brightness => "must be an integer from 0 to 100",
                Self::Color => "must be {\"h\": 0-360, \"s\": 0-1, \"v\": 0-1}",
                Self::ColorTemperature => "must be an integer from 1000 to 10000",
                Self::TargetTemperature => "must be a number from 5 to 35",
                Self::ThermostatMode => "must be one of heat, cool, auto, eco, off",
                Self::Lock => "must be \"locked\", \"unlocked\" or \"jammed\"",
                Self::Streaming | Self::Motion => "must be a boolean",
                Self::Temperature => "must be a number",
                Self::Humidity => "must be a number from 0 to 100",
                Self::Contact => "must be \"open\" or \"closed\"",
                Self::FirmwareVersion => "must be 1 to 64 printable ASCII characters",
                Self::BatteryPercent => "must be an integer from 0 to 100",
            })
        }
    }
}

/// A desired-state field that the device type does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {reason}")]
pub struct CapabilityError {
    /// The offending field.
    pub field: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl DeviceType {
    /// Every device type.
    pub const ALL: [DeviceType; 6] = [
        Self::Light,
        Self::Plug,
        Self::Thermostat,
        Self::Lock,
        Self::Camera,
        Self::Sensor,
    ];

    /// The type's name, as the API, the stores and `serde` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Plug => "plug",
            Self::Thermostat => "thermostat",
            Self::Lock => "lock",
            Self::Camera => "camera",
            Self::Sensor => "sensor",
        }
    }

    /// The name a device of this type has until its owner names it.
    pub fn default_name(self) -> &'static str {
        match self {
            Self::Light => "Light",
            Self::Plug => "Plug",
            Self::Thermostat => "Thermostat",
            Self::Lock => "Lock",
            Self::Camera => "Camera",
            Self::Sensor => "Sensor",
        }
    }

    /// What this type of device can do or report.
    pub fn capabilities(self) -> &'static [Capability] {
        use Capability as C;
        match self {
            Self::Light => &[
                C::Power,
                C::Brightness,
                C::Color,
                C::ColorTemperature,
                C::FirmwareVersion,
            ],
            Self::Plug => &[C::Power, C::FirmwareVersion],
            Self::Thermostat => &[
                C::TargetTemperature,
                C::ThermostatMode,
                C::Temperature,
                C::Humidity,
                C::FirmwareVersion,
            ],
            Self::Lock => &[C::Lock, C::FirmwareVersion, C::BatteryPercent],
            Self::Camera => &[C::Power, C::Streaming, C::Motion, C::FirmwareVersion],
            Self::Sensor => &[
                C::Temperature,
                C::Humidity,
                C::Motion,
                C::Contact,
                C::FirmwareVersion,
                C::BatteryPercent,
            ],
        }
    }

    /// Checks a partial desired document against the type's writable capabilities. `null`
    /// (delete the field) is accepted for any writable field.
    pub fn validate_desired(self, desired: &Object) -> Result<(), CapabilityError> {
        for (field, value) in desired {
            let capability = self
                .capabilities()
                .iter()
                .find(|c| c.field() == field)
                .ok_or_else(|| CapabilityError {
                    field: field.clone(),
                    reason: "is not a capability of this device type",
                })?;
            if !capability.writable() {
                return Err(CapabilityError {
                    field: field.clone(),
                    reason: "is reported by the device and cannot be set",
                });
            }
            if !value.is_null() {
                capability
                    .check_desired(value)
                    .map_err(|reason| CapabilityError {
                        field: field.clone(),
                        reason,
                    })?;
            }
        }
        Ok(())
    }

    /// Checks the capability fields of a reported document against their rules, reported-only
    /// ones included. Fields that are no capability of the type are left alone: a device may
    /// report more than the platform models, and the shadow service accepts it. Nothing
    /// refuses a device's report on this (the shadow is the device's); consumers that act on
    /// reported state use it to tell a modelled value from a malformed one.
    pub fn validate_reported(self, reported: &Object) -> Result<(), CapabilityError> {
        for capability in self.capabilities() {
            match reported.get(capability.field()) {
                None | Some(Value::Null) => {}
                Some(value) => capability.check(value).map_err(|reason| CapabilityError {
                    field: capability.field().to_owned(),
                    reason,
                })?,
            }
        }
        Ok(())
    }
}

/// A registered device (registry data; its state lives in the projection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Thing name.
    pub id: DeviceId,
    /// The maker's product.
    pub product: ProductId,
    /// The household it belongs to, once claimed.
    pub household: Option<HouseholdId>,
    /// Display name chosen by the owner.
    pub name: String,
    /// What kind of device it is.
    pub device_type: DeviceType,
    /// When it was registered (milliseconds since the epoch).
    pub created_at: u64,
    /// The maker's serial number (pre-registered devices).
    #[serde(default)]
    pub serial: Option<String>,
    /// The maker user who pre-registered it.
    #[serde(default)]
    pub maker: Option<UserId>,
    /// When its current household claimed it (milliseconds).
    #[serde(default)]
    pub claimed_at: Option<u64>,
    /// SHA-256 of its claim code (see [`crate::enrollment::ClaimCode::hash`]): claimable with
    /// that code while it belongs to no household. Never shown to anyone.
    #[serde(default)]
    pub claim_code_hash: Option<String>,
}

/// Why a device cannot make an ownership transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionRefused {
    /// A claim: the device already belongs to a household.
    #[error("the device already belongs to a household")]
    AlreadyClaimed,
    /// A claim: the device does not carry that claim code.
    #[error("the device does not carry that claim code")]
    WrongCode,
    /// A release: the device is not in that household (released or moved meanwhile).
    #[error("the device is not in that household")]
    NotInHousehold,
}

impl Device {
    /// The device claimed into `household` at `now` with the claim code whose hash is
    /// `code_hash`, named `name` (`None` keeps its name). Only an unclaimed device carrying that
    /// code can be claimed. The stores persist the result atomically with consuming the code.
    pub fn claim(
        &self,
        code_hash: &str,
        household: &HouseholdId,
        name: Option<&str>,
        now: u64,
    ) -> Result<Device, TransitionRefused> {
        if self.household.is_some() {
            return Err(TransitionRefused::AlreadyClaimed);
        }
        if self.claim_code_hash.as_deref() != Some(code_hash) {
            return Err(TransitionRefused::WrongCode);
        }
        Ok(Device {
            household: Some(household.clone()),
            name: name.map_or_else(|| self.name.clone(), str::to_owned),
            claimed_at: Some(now),
            ..self.clone()
        })
    }

    /// The device released from `household` (its owner deleted it): unclaimed, named after its
    /// type again, claimable with its code by the next owner. Only while it is in `household`:
    /// a late or repeated delete never releases it from a next owner.
    pub fn release(&self, household: &HouseholdId) -> Result<Device, TransitionRefused> {
        if self.household.as_ref() != Some(household) {
            return Err(TransitionRefused::NotInHousehold);
        }
        Ok(Device {
            household: None,
            claimed_at: None,
            name: self.device_type.default_name().to_owned(),
            ..self.clone()
        })
    }
}

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Validates a display name: 1–64 characters, no control characters, not blank.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        Err("must not be blank")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err("must be at most 64 characters")
    } else if name.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else {
        Ok(())
    }
}

/// A household: the unit devices belong to and users share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Household {
    /// Identifier.
    pub id: HouseholdId,
    /// Display name.
    pub name: String,
}

/// A user's role in a household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Can read, command, share, rename and delete.
    Owner,
    /// Can read and command.
    Member,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 2] = [Self::Owner, Self::Member];

    /// The role's name, as the API, the stores and `serde` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }
}

/// A name that is not one of an enumeration's (a device type, a role).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// What was looked for ("device type", "role").
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

impl std::str::FromStr for DeviceType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "device type",
                name: s.to_owned(),
            })
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "role",
                name: s.to_owned(),
            })
    }
}

/// A user's membership of a household.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The user.
    pub user: UserId,
    /// The household.
    pub household: HouseholdId,
    /// The user's role in it.
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_role_names_are_spelled_once_and_match_serde() {
        for t in DeviceType::ALL {
            assert_eq!(t.as_str().parse::<DeviceType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).ok(), Some(json!(t.as_str())));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_value(r).ok(), Some(json!(r.as_str())));
        }
        assert!("Light".parse::<DeviceType>().is_err());
        assert!("admin".parse::<Role>().is_err());
    }
    use serde_json::json;

    #[test]
    fn thing_names_follow_aws_rules() {
        assert!(DeviceId::parse("hth-01J9Z3:lamp_1").is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("a/b").is_err());
        assert!(DeviceId::parse("a+b").is_err());
        assert!(DeviceId::parse("x".repeat(129)).is_err());
        assert!(DeviceId::parse("x".repeat(128)).is_ok());
        let parsed: Result<DeviceId, _> = serde_json::from_value(json!("bad#id"));
        assert!(parsed.is_err());
    }

    #[test]
    fn desired_state_is_checked_against_capabilities() {
        let lock = DeviceType::Lock;
        let ok = json!({"lock": "locked"});
        assert_eq!(
            ok.as_object().map(|o| lock.validate_desired(o)),
            Some(Ok(()))
        );
        let bad = json!({"brightness": 10});
        let err = bad.as_object().map(|o| lock.validate_desired(o));
        assert!(
            matches!(err, Some(Err(CapabilityError { ref field, .. })) if field == "brightness")
        );
        let light = DeviceType::Light;
        for (doc, ok) in [
            (json!({"brightness": 100, "power": "on"}), true),
            (json!({"brightness": 101}), false),
            (json!({"brightness": null}), true),
            (json!({"color": {"h": 120, "s": 0.5, "v": 1}}), true),
            (json!({"color": {"h": 400, "s": 0.5, "v": 1}}), false),
        ] {
            let result = doc.as_object().map(|o| light.validate_desired(o).is_ok());
            assert_eq!(result, Some(ok), "{doc}");
        }
        let sensor = json!({"temperatureC": 20});
        assert!(
            sensor
                .as_object()
                .is_some_and(|o| DeviceType::Sensor.validate_desired(o).is_err())
        );
    }

    #[test]
    fn a_lock_reports_jammed_but_cannot_be_set_to_it() {
        let lock = DeviceType::Lock;
        let desired = |doc: Value| doc.as_object().map(|o| lock.validate_desired(o));
        assert_eq!(desired(json!({"lock": "unlocked"})), Some(Ok(())));
        let err = desired(json!({"lock": "jammed"}));
        assert!(
            matches!(&err, Some(Err(CapabilityError { field, reason })) if field == "lock" && reason.contains("jammed")),
            "{err:?}"
        );
        let err = desired(json!({"lock": 1}));
        assert!(
            matches!(&err, Some(Err(CapabilityError { reason, .. })) if !reason.contains("jammed")),
            "a desired lock is offered only the settable values: {err:?}"
        );
        let reported = |doc: Value| doc.as_object().map(|o| lock.validate_reported(o).is_ok());
        assert_eq!(reported(json!({"lock": "jammed"})), Some(true));
        assert_eq!(reported(json!({"lock": "ajar"})), Some(false));
    }

    #[test]
    fn a_thermostat_can_be_set_to_eco() {
        let thermostat = DeviceType::Thermostat;
        for (mode, ok) in [("eco", true), ("heat", true), ("off", true), ("dry", false)] {
            let doc = json!({"mode": mode});
            let result = doc
                .as_object()
                .map(|o| thermostat.validate_desired(o).is_ok());
            assert_eq!(result, Some(ok), "{mode}");
            let result = doc
                .as_object()
                .map(|o| thermostat.validate_reported(o).is_ok());
            assert_eq!(result, Some(ok), "reported {mode}");
        }
    }

    #[test]
    fn firmware_version_and_battery_are_reported_only() {
        for t in DeviceType::ALL {
            let fields: Vec<_> = t.capabilities().iter().map(|c| c.field()).collect();
            assert!(fields.contains(&"firmwareVersion"), "{t:?}");
            let battery = matches!(t, DeviceType::Lock | DeviceType::Sensor);
            assert_eq!(fields.contains(&"batteryPercent"), battery, "{t:?}");
            for doc in [
                json!({"firmwareVersion": "1.2.3"}),
                json!({"batteryPercent": 50}),
            ] {
                let err = doc.as_object().map(|o| t.validate_desired(o));
                assert!(matches!(err, Some(Err(_))), "{t:?} {doc}");
            }
        }
        let err = json!({"batteryPercent": 50})
            .as_object()
            .map(|o| DeviceType::Lock.validate_desired(o));
        assert!(
            matches!(&err, Some(Err(CapabilityError { field, reason })) if field == "batteryPercent" && reason.contains("cannot be set")),
            "{err:?}"
        );
    }

    #[test]
    fn reported_values_follow_their_rules() {
        let sensor = DeviceType::Sensor;
        let long = "1".repeat(MAX_FIRMWARE_VERSION_CHARS);
        let too_long = "1".repeat(MAX_FIRMWARE_VERSION_CHARS + 1);
        for (doc, ok) in [
            (json!({"firmwareVersion": "2.0.1-rc.1+b5 (EU)"}), true),
            (json!({"firmwareVersion": long}), true),
            (json!({"firmwareVersion": too_long}), false),
            (json!({"firmwareVersion": ""}), false),
            (json!({"firmwareVersion": "1.0\n"}), false),
            (json!({"firmwareVersion": "1.0\u{e9}"}), false),
            (json!({"firmwareVersion": 2}), false),
            (json!({"batteryPercent": 0}), true),
            (json!({"batteryPercent": 100}), true),
            (json!({"batteryPercent": 101}), false),
            (json!({"batteryPercent": -1}), false),
            (json!({"batteryPercent": 50.5}), false),
            (json!({"batteryPercent": null, "temperatureC": 21.5}), true),
            (json!({"humidity": 120}), false),
            (json!({"contact": "ajar"}), false),
            // Fields the type does not model are the device's business.
            (json!({"rssi": -70, "lock": "anything"}), true),
        ] {
            let result = doc.as_object().map(|o| sensor.validate_reported(o));
            assert_eq!(result.as_ref().map(Result::is_ok), Some(ok), "{doc}");
            if let Some(Err(e)) = result {
                assert!(doc.get(&e.field).is_some(), "{doc}: names {}", e.field);
            }
        }
    }

    #[test]
    fn every_type_has_capabilities_with_distinct_fields() {
        for t in DeviceType::ALL {
            let fields: std::collections::HashSet<_> =
                t.capabilities().iter().map(|c| c.field()).collect();
            assert_eq!(fields.len(), t.capabilities().len(), "{t:?}");
            assert!(!fields.is_empty());
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("Kitchen lamp").is_ok());
        assert!(validate_name("  ").is_err());
        assert!(validate_name("a\u{0}b").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
    }
}
