//! Commands and their causes: who asked for a desired-state change.
//!
//! A command is a partial desired document merged into the device shadow. Every entry point that
//! commands a device (the REST API, an automation, Alexa, Google) says so in the shadow update's
//! `clientToken`, which AWS IoT echoes in the `update/documents` message the state processor
//! reads; the projection keeps it with the shadow version it produced, so a later consumer (an
//! Alexa change report, a Google Report State, an automation's log) can say what caused a change.
//! An update without a Hearth token was the device's own (or another client's).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::shadow::MAX_CLIENT_TOKEN_BYTES;

/// The entry point that sent a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandSource {
    /// The owners' REST API (the phone app, the web console).
    Api,
    /// A household automation (a rule, a geofence, a schedule).
    Automation,
    /// An Alexa Smart Home directive.
    Alexa,
    /// A Google Home EXECUTE intent.
    Google,
}

impl CommandSource {
    /// Every source.
    pub const ALL: [Self; 4] = [Self::Api, Self::Automation, Self::Alexa, Self::Google];

    /// The source's name in tokens and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Automation => "automation",
            Self::Alexa => "alexa",
            Self::Google => "google",
        }
    }
}

impl fmt::Display for CommandSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`CommandSource`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown command source {0:?}")]
pub struct UnknownSource(pub String);

impl FromStr for CommandSource {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

/// What caused a desired-state change: the source and a reference within it (the user, the
/// automation's id, the directive's message id), carried in the shadow update's `clientToken`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cause {
    /// The entry point.
    pub source: CommandSource,
    /// Who or what within it (may be empty); cut to fit the token.
    pub reference: String,
}

/// The prefix of every client token Hearth writes.
const TOKEN_PREFIX: &str = "hearth:";

impl Cause {
    /// A cause; `reference` is cut (at a character boundary) so that the token fits AWS's
    /// 64-byte `clientToken` limit.
    pub fn new(source: CommandSource, reference: &str) -> Self {
        let room = MAX_CLIENT_TOKEN_BYTES - TOKEN_PREFIX.len() - source.as_str().len() - 1;
        let mut end = reference.len().min(room);
        while !reference.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            source,
            reference: reference[..end].to_owned(),
        }
    }

    /// The shadow update's `clientToken`: `hearth:<source>:<reference>`, at most 64 bytes.
    pub fn client_token(&self) -> String {
        format!("{TOKEN_PREFIX}{}:{}", self.source, self.reference)
    }

    /// The cause a client token names, `None` for a token Hearth did not write (a device's own).
    pub fn from_client_token(token: &str) -> Option<Self> {
        let (source, reference) = token.strip_prefix(TOKEN_PREFIX)?.split_once(':')?;
        Some(Self {
            source: source.parse().ok()?,
            reference: reference.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_round_trips_through_its_client_token() {
        for source in CommandSource::ALL {
            let cause = Cause::new(source, "alice@example.com");
            let token = cause.client_token();
            assert!(token.len() <= MAX_CLIENT_TOKEN_BYTES);
            assert_eq!(Cause::from_client_token(&token), Some(cause));
            assert_eq!(source.as_str().parse::<CommandSource>(), Ok(source));
        }
    }

    #[test]
    fn a_long_reference_is_cut_to_fit_at_a_character_boundary() {
        let cause = Cause::new(CommandSource::Automation, &"é".repeat(100));
        let token = cause.client_token();
        assert!(token.len() <= MAX_CLIENT_TOKEN_BYTES, "{}", token.len());
        assert!(token.len() >= MAX_CLIENT_TOKEN_BYTES - 1);
        assert_eq!(Cause::from_client_token(&token), Some(cause));
    }

    #[test]
    fn foreign_tokens_name_no_cause() {
        for token in ["", "c1", "hearth:", "hearth:radio:x", "other:api:x"] {
            assert_eq!(Cause::from_client_token(token), None, "{token}");
        }
        assert_eq!(
            Cause::from_client_token("hearth:api:"),
            Some(Cause::new(CommandSource::Api, ""))
        );
    }
}
