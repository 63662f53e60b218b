//! The [`Invitations`](crate::Invitations) contract.

use super::*;

/// The [`Invitations`](crate::Invitations) contract: storage, listings by household and by
/// e-mail, and single-use closing (accepting creates the membership).
pub async fn invitations(
    registry: &dyn DeviceRegistry,
    invitations: &dyn crate::Invitations,
    prefix: &str,
    races: Races,
) {
    use crate::InvitationError;
    use hearth_domain::device::InvitationId;
    use hearth_domain::sharing::{Invitation, InvitationStatus};

    let home = id(HouseholdId::parse(format!("{prefix}-i-home")));
    let cabin = id(HouseholdId::parse(format!("{prefix}-i-cabin")));
    let alice = id(UserId::parse(format!("{prefix}-alice")));
    let bob = id(UserId::parse(format!("{prefix}-bob")));
    let bob_email = format!("{prefix}-bob@example.com");
    let invitation = |n: usize, household: &HouseholdId, email: &str, role: Role| Invitation {
        id: id(InvitationId::parse(format!("{prefix}-inv-{n}"))),
        household: household.clone(),
        email: email.to_owned(),
        role,
        invited_by: alice.clone(),
        created_at: 1_000,
        expires_at: 10_000,
        status: InvitationStatus::Pending,
    };
    let to_bob = invitation(1, &home, &bob_email, Role::Member);
    let to_carol = invitation(
        2,
        &home,
        &format!("{prefix}-carol@example.com"),
        Role::Owner,
    );
    let cabin_bob = invitation(3, &cabin, &bob_email, Role::Owner);
    for i in [&to_bob, &to_carol, &cabin_bob] {
        ok(invitations.create_invitation(i).await, "create_invitation");
    }
    assert_eq!(
        ok(invitations.invitation(&to_bob.id).await, "invitation"),
        Some(to_bob.clone())
    );
    let missing = id(InvitationId::parse(format!("{prefix}-inv-missing")));
    assert_eq!(
        ok(invitations.invitation(&missing).await, "invitation"),
        None
    );
    let ids = |list: Vec<Invitation>| list.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ok(
            invitations.household_invitations(&home).await,
            "household_invitations"
        )),
        vec![to_bob.id.clone(), to_carol.id.clone()]
    );
    assert_eq!(
        ids(ok(
            invitations.invitations_for(&bob_email).await,
            "invitations_for"
        )),
        vec![to_bob.id.clone(), cabin_bob.id.clone()]
    );

    // Accepting makes bob a member, once.
    let accepted = InvitationStatus::Accepted {
        by: bob.clone(),
        at: 2_000,
    };
    let closed = ok(
        invitations
            .close_invitation(&to_bob.id, accepted.clone(), 2_000)
            .await,
        "close_invitation",
    );
    assert_eq!(closed.status, accepted);
    let memberships = ok(registry.memberships(&bob).await, "memberships");
    assert_eq!(
        memberships,
        vec![Membership {
            user: bob.clone(),
            household: home.clone(),
            role: Role::Member
        }]
    );
    let again = InvitationStatus::Declined { at: 2_500 };
    assert_eq!(
        invitations
            .close_invitation(&to_bob.id, again, 2_500)
            .await
            .map(|i| i.id),
        Err(InvitationError::NotOpen)
    );
    assert_eq!(
        ok(invitations.invitation(&to_bob.id).await, "invitation").map(|i| i.status),
        Some(accepted)
    );
    // Expired: no longer open, nothing changes.
    let late = InvitationStatus::Accepted {
        by: bob.clone(),
        at: 10_000,
    };
    assert_eq!(
        invitations
            .close_invitation(&cabin_bob.id, late, 10_000)
            .await
            .map(|i| i.id),
        Err(InvitationError::NotOpen)
    );
    assert_eq!(ok(registry.memberships(&bob).await, "memberships").len(), 1);
    assert_eq!(
        invitations
            .close_invitation(&missing, InvitationStatus::Revoked { at: 1 }, 1)
            .await
            .map(|i| i.id),
        Err(InvitationError::Unknown)
    );

    // Concurrent closes of one invitation: exactly one wins.
    let statuses = [
        InvitationStatus::Revoked { at: 3_000 },
        InvitationStatus::Declined { at: 3_000 },
        InvitationStatus::Revoked { at: 3_001 },
        InvitationStatus::Declined { at: 3_001 },
    ];
    let results = race(
        races,
        statuses
            .iter()
            .map(|s| invitations.close_invitation(&to_carol.id, s.clone(), 3_000))
            .collect(),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || r == &Err(InvitationError::NotOpen))
    );
}
