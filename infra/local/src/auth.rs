//! Device authentication and authorisation on the local broker, from the template's own IoT
//! policy: what works locally is what AWS IoT Core allows.
//!
//! A device connects with MQTT username = its thing name and the password issued with its
//! certificate (the local listener has no TLS, so the password stands in for the certificate).
//! The connection is then checked against the policy's `iot:Connect` (so the client id must be
//! the thing name, and the credential attached to the thing), and every publish and subscribe
//! against `iot:Publish` / `iot:Subscribe`. As AWS IoT Core does, a publish or subscribe the
//! policy does not allow is refused and the client disconnected. Messages the platform itself
//! publishes (shadow replies, presence events) are not checked; `iot:Receive` is enforced
//! through the subscriptions a client may make.
//!
//! With `--allow-anonymous` every client may connect and use any topic (for quick experiments
//! only; the stack says so loudly).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hearth_iot_rules::policy::{Action, Policy, Principal};
use mqtt5::broker::auth::{AuthProvider, AuthResult};
use mqtt5::packet::connect::ConnectPacket;
use mqtt5::types::ReasonCode;
use tracing::warn;

use crate::broker::Hooks;
use crate::provisioner::LocalProvisioner;

/// Who may connect and what they may do.
pub enum Access {
    /// Any client, any topic.
    Anonymous,
    /// Devices with credentials, confined by `policy`.
    Policy {
        /// The device policy.
        policy: Policy,
        /// `arn:aws:iot:<region>:<account>` as the template's ARNs resolve locally.
        arn_prefix: String,
        /// Where credentials are checked.
        provisioner: Arc<LocalProvisioner>,
    },
}

/// The broker's [`AuthProvider`].
pub struct DeviceAuth {
    access: Access,
    hooks: Arc<Hooks>,
}

impl DeviceAuth {
    /// Access rules, disconnecting offenders through `hooks`.
    pub fn new(access: Access, hooks: Arc<Hooks>) -> Self {
        Self { access, hooks }
    }

    fn allowed(&self, client_id: &str, user: Option<&str>, action: Action, name: &str) -> bool {
        match &self.access {
            Access::Anonymous => true,
            Access::Policy {
                policy, arn_prefix, ..
            } => {
                let principal = Principal {
                    client_id,
                    thing: user,
                    ..Principal::default()
                };
                policy.allows(arn_prefix, &principal, action, name)
            }
        }
    }

    /// Refuses and disconnects, as AWS IoT Core does.
    fn refuse(&self, client_id: &str, action: Action, name: &str) -> bool {
        warn!(
            client_id,
            ?action,
            topic = name,
            "not allowed by the device policy: disconnecting the client"
        );
        let hooks = self.hooks.clone();
        let client_id = client_id.to_owned();
        tokio::spawn(async move { hooks.disconnect(&client_id).await });
        false
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl AuthProvider for DeviceAuth {
    fn authenticate<'a>(
        &'a self,
        connect: &'a ConnectPacket,
        _client_addr: SocketAddr,
    ) -> Boxed<'a, mqtt5::Result<AuthResult>> {
        Box::pin(async move {
            let Access::Policy { provisioner, .. } = &self.access else {
                return Ok(AuthResult::success());
            };
            let (Some(thing), Some(password)) = (&connect.username, &connect.password) else {
                warn!(client_id = %connect.client_id, "connection without credentials refused");
                return Ok(AuthResult::fail(ReasonCode::BadUsernameOrPassword));
            };
            if !provisioner.authenticate(thing, password) {
                warn!(client_id = %connect.client_id, thing, "wrong or revoked device credentials");
                return Ok(AuthResult::fail(ReasonCode::BadUsernameOrPassword));
            }
            if !self.allowed(
                &connect.client_id,
                Some(thing),
                Action::Connect,
                &connect.client_id,
            ) {
                warn!(client_id = %connect.client_id, thing, "iot:Connect not allowed (the client id must be the thing name)");
                return Ok(AuthResult::fail(ReasonCode::NotAuthorized));
            }
            Ok(AuthResult::success_with_user(thing.clone()))
        })
    }

    fn authorize_publish<'a>(
        &'a self,
        client_id: &str,
        user_id: Option<&'a str>,
        topic: &'a str,
    ) -> Boxed<'a, bool> {
        // Decided here, synchronously: the future only carries the answer (this runs for every
        // publish).
        let allowed = self.allowed(client_id, user_id, Action::Publish, topic)
            || self.refuse(client_id, Action::Publish, topic);
        Box::pin(std::future::ready(allowed))
    }

    fn authorize_subscribe<'a>(
        &'a self,
        client_id: &str,
        user_id: Option<&'a str>,
        topic_filter: &'a str,
    ) -> Boxed<'a, bool> {
        let allowed = self.allowed(client_id, user_id, Action::Subscribe, topic_filter)
            || self.refuse(client_id, Action::Subscribe, topic_filter);
        Box::pin(std::future::ready(allowed))
    }
}
