//! Who is calling, from the JWT claims the authorizer verified.
//!
//! API Gateway's HTTP API JWT authorizer passes every claim as a string: `cognito:groups`
//! arrives as `"[makers admins]"` (a bracketed, space-separated list), not as a JSON array. The
//! local stack's development tokens are validated the same way and produce claims in the same
//! shape. The caller is only ever taken from these claims, never from the body or a header.

use std::collections::HashMap;

use hearth_domain::device::UserId;

/// The group whose members may pre-register devices.
pub const MAKERS_GROUP: &str = "makers";

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user (the token's `sub`).
    pub user: UserId,
    /// The user's groups (`cognito:groups`).
    pub groups: Vec<String>,
    /// The verified e-mail address, when the token carries one (`email` with
    /// `email_verified` = `true`: ID tokens).
    pub email: Option<String>,
}

impl Caller {
    /// The caller from string claims; `None` without a valid `sub`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Caller> {
        let user = UserId::parse(claims.get("sub")?.as_str()).ok()?;
        let groups = claims
            .get("cognito:groups")
            .map(|g| parse_groups(g))
            .unwrap_or_default();
        let email = claims
            .get("email")
            .filter(|_| claims.get("email_verified").map(String::as_str) == Some("true"))
            .cloned();
        Some(Caller {
            user,
            groups,
            email,
        })
    }

    /// Whether the caller is in the makers group.
    pub fn is_maker(&self) -> bool {
        self.groups.iter().any(|g| g == MAKERS_GROUP)
    }
}

/// `"[makers admins]"` → `["makers", "admins"]`; also accepts a JSON array string and a single
/// bare group.
pub fn parse_groups(value: &str) -> Vec<String> {
    let value = value.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(value) {
        return list;
    }
    value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn groups_arrive_as_a_bracketed_string() {
        assert_eq!(parse_groups("[makers admins]"), ["makers", "admins"]);
        assert_eq!(parse_groups("[makers]"), ["makers"]);
        assert_eq!(parse_groups("[]"), Vec::<String>::new());
        assert_eq!(parse_groups(r#"["a","b"]"#), ["a", "b"]);
        assert_eq!(parse_groups("makers"), ["makers"]);
    }

    #[test]
    fn the_caller_comes_from_sub_groups_and_a_verified_email() {
        let caller = Caller::from_claims(&claims(&[
            ("sub", "0b6c2a1e-user"),
            ("cognito:groups", "[makers]"),
            ("email", "a@example.com"),
            ("email_verified", "true"),
        ]));
        let caller = caller.unwrap_or_else(|| panic!("caller"));
        assert_eq!(caller.user.as_str(), "0b6c2a1e-user");
        assert!(caller.is_maker());
        assert_eq!(caller.email.as_deref(), Some("a@example.com"));

        let unverified = Caller::from_claims(&claims(&[
            ("sub", "u"),
            ("email", "a@example.com"),
            ("email_verified", "false"),
        ]));
        assert_eq!(unverified.and_then(|c| c.email), None);
        assert_eq!(Caller::from_claims(&claims(&[("email", "x@y")])), None);
        assert_eq!(Caller::from_claims(&claims(&[("sub", "")])), None);
    }
}
