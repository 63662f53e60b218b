//! Sharing a household: invitations by e-mail address, accepted or declined by the person
//! who signs in with that address, revocable by owners, single-use, and expiring.

use serde::{Deserialize, Serialize};

use crate::device::{HouseholdId, InvitationId, Role, UserId};

/// How long an invitation can be accepted: seven days.
pub const INVITATION_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// Longest e-mail address (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// An e-mail address as invitations match it: trimmed and lower-cased (matching is
/// case-insensitive). Refuses what is not `local@domain` without spaces or control characters.
pub fn normalize_email(input: &str) -> Result<String, &'static str> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err("must not be empty");
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err("must be at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => Err("must be an address like name@example.com"),
    }
}

/// Where an invitation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Waiting for the invitee.
    Pending,
    /// The invitee accepted: `by` became a member.
    Accepted {
        /// The user who accepted.
        by: UserId,
        /// When (milliseconds).
        at: u64,
    },
    /// The invitee declined.
    Declined {
        /// When (milliseconds).
        at: u64,
    },
    /// An owner revoked it.
    Revoked {
        /// When (milliseconds).
        at: u64,
    },
}

/// An invitation to join a household.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// Identifier.
    pub id: InvitationId,
    /// The household to join.
    pub household: HouseholdId,
    /// The invitee's address, normalised ([`normalize_email`]).
    pub email: String,
    /// The role the invitee gets.
    pub role: Role,
    /// The owner who invited.
    pub invited_by: UserId,
    /// When it was made (milliseconds).
    pub created_at: u64,
    /// When it stops being acceptable (milliseconds).
    pub expires_at: u64,
    /// Where it stands.
    pub status: InvitationStatus,
}

impl Invitation {
    /// Whether it can still be accepted, declined or revoked at `now`.
    pub fn is_open(&self, now: u64) -> bool {
        self.status == InvitationStatus::Pending && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_match_case_insensitively_and_junk_is_refused() {
        assert_eq!(
            normalize_email("  Bob@Example.COM "),
            Ok("bob@example.com".to_owned())
        );
        assert_eq!(
            normalize_email("ÉLODIE@exemple.fr"),
            Ok("élodie@exemple.fr".to_owned())
        );
        for bad in [
            "",
            "bob",
            "@example.com",
            "bob@",
            "a@b@c",
            "b ob@example.com",
            "bob@exa\u{7}mple.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn an_invitation_is_open_while_pending_and_unexpired() {
        let parse = |s: &str| HouseholdId::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let mut invitation = Invitation {
            id: InvitationId::parse("inv-1").unwrap_or_else(|e| panic!("{e}")),
            household: parse("home"),
            email: "bob@example.com".to_owned(),
            role: Role::Member,
            invited_by: UserId::parse("alice").unwrap_or_else(|e| panic!("{e}")),
            created_at: 0,
            expires_at: INVITATION_TTL_MS,
            status: InvitationStatus::Pending,
        };
        assert!(invitation.is_open(0));
        assert!(!invitation.is_open(INVITATION_TTL_MS), "expired");
        invitation.status = InvitationStatus::Revoked { at: 1 };
        assert!(!invitation.is_open(1));
        let json = serde_json::to_value(&invitation.status).unwrap_or_default();
        assert_eq!(json, serde_json::json!({"status": "revoked", "at": 1}));
    }
}
