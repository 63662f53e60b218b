use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hearth_aws::dynamo::DynamoRegistry;
use hearth_domain::device::{
    Device, DeviceId, DeviceType, HouseholdId, InvitationId, Membership, ProductId, Role, UserId,
};
use hearth_domain::sharing::{Invitation, InvitationStatus};
use hearth_ports::{DeviceRegistry, Invitations, StoreError};

use crate::support::{config, create_table};

type Item = HashMap<String, AttributeValue>;

fn id<T, E: std::fmt::Display>(parsed: Result<T, E>) -> T {
    parsed.unwrap_or_else(|e| panic!("{e}"))
}

/// The item under `pk`/`sk`, as stored.
async fn stored(client: &Client, table: &str, pk: &str, sk: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(pk.to_owned()))
        .key("SK", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map(|o| o.item().cloned())
        .unwrap_or_else(|e| panic!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
}

fn text(item: Option<&Item>, name: &str) -> Option<String> {
    item.and_then(|i| i.get(name))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

fn number(item: Option<&Item>, name: &str) -> Option<String> {
    item.and_then(|i| i.get(name))
        .and_then(|v| v.as_n().ok())
        .cloned()
}

#[tokio::test]
async fn invitation_items_have_the_documented_layout_and_stay_out_of_other_listings() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let registry = DynamoRegistry::from_client(client.clone(), table.clone());
    let home = id(HouseholdId::parse("lay-home"));
    let cabin = id(HouseholdId::parse("lay-cabin"));
    let alice = id(UserId::parse("lay-alice"));
    let bob = id(UserId::parse("lay-bob"));
    let lamp = Device {
        id: id(DeviceId::parse("lay-lamp")),
        product: id(ProductId::parse("lamp-x")),
        household: Some(home.clone()),
        name: "Lamp".to_owned(),
        device_type: DeviceType::Light,
        created_at: 1,
        serial: None,
        maker: None,
        claimed_at: Some(2),
        claim_code_hash: None,
    };
    let owner = Membership {
        user: alice.clone(),
        household: home.clone(),
        role: Role::Owner,
    };
    let invitation = Invitation {
        id: id(InvitationId::parse("lay-inv-1")),
        household: home.clone(),
        email: "bob@example.com".to_owned(),
        role: Role::Member,
        invited_by: alice.clone(),
        created_at: 1_000,
        expires_at: 10_000,
        status: InvitationStatus::Pending,
    };
    assert_eq!(registry.put_device(&lamp).await, Ok(()));
    assert_eq!(registry.put_membership(&owner).await, Ok(()));
    assert_eq!(registry.create_invitation(&invitation).await, Ok(()));

    let item = stored(&client, &table, "INVITE#lay-inv-1", "META").await;
    let item = item.as_ref();
    for (name, value) in [
        ("GSI1PK", "HOUSEHOLD#lay-home"),
        ("GSI1SK", "INVITE#lay-inv-1"),
        ("GSI2PK", "EMAIL#bob@example.com"),
        ("GSI2SK", "INVITE#lay-inv-1"),
        ("entity", "invitation"),
        ("id", "lay-inv-1"),
        ("household", "lay-home"),
        ("email", "bob@example.com"),
        ("role", "member"),
        ("invited_by", "lay-alice"),
        ("status", "pending"),
    ] {
        assert_eq!(text(item, name).as_deref(), Some(value), "{name}");
    }
    assert_eq!(number(item, "created_at").as_deref(), Some("1000"));
    assert_eq!(number(item, "expires_at_ms").as_deref(), Some("10000"));
    assert!(item.is_some_and(|i| !i.contains_key("closed_by") && !i.contains_key("closed_at")));

    // GSI1 holds devices, members and invitations of a household: each listing sees its own.
    let devices = registry.household_devices(&home, 10, None).await;
    assert_eq!(devices.map(|p| p.items), Ok(vec![lamp.clone()]));
    let members = registry.household_members(&home).await;
    assert_eq!(members, Ok(vec![owner.clone()]));
    let listed = registry.household_invitations(&home).await;
    assert_eq!(listed, Ok(vec![invitation.clone()]));
    let listed = registry.invitations_for("bob@example.com").await;
    assert_eq!(listed, Ok(vec![invitation.clone()]));
    assert_eq!(
        registry.invitations_for("BOB@example.com").await,
        Ok(vec![])
    );

    // Accepting writes the status and the membership item exactly as `put_membership` does.
    let accepted = InvitationStatus::Accepted {
        by: bob.clone(),
        at: 2_000,
    };
    let closed = registry
        .close_invitation(&invitation.id, accepted.clone(), 2_000)
        .await;
    assert_eq!(closed.map(|i| i.status), Ok(accepted));
    let item = stored(&client, &table, "INVITE#lay-inv-1", "META").await;
    assert_eq!(text(item.as_ref(), "status").as_deref(), Some("accepted"));
    assert_eq!(text(item.as_ref(), "closed_by").as_deref(), Some("lay-bob"));
    assert_eq!(number(item.as_ref(), "closed_at").as_deref(), Some("2000"));
    let membership = stored(&client, &table, "USER#lay-bob", "HOUSEHOLD#lay-home").await;
    let bob_as_put = Membership {
        user: bob.clone(),
        household: home.clone(),
        role: Role::Member,
    };
    assert_eq!(registry.put_membership(&bob_as_put).await, Ok(()));
    let membership_as_put = stored(&client, &table, "USER#lay-bob", "HOUSEHOLD#lay-home").await;
    assert!(membership.is_some());
    assert_eq!(membership, membership_as_put);

    // Declining and revoking record when, not by whom.
    let declined = Invitation {
        id: id(InvitationId::parse("lay-inv-2")),
        status: InvitationStatus::Pending,
        ..invitation.clone()
    };
    assert_eq!(registry.create_invitation(&declined).await, Ok(()));
    let closed = registry
        .close_invitation(
            &declined.id,
            InvitationStatus::Declined { at: 3_000 },
            3_000,
        )
        .await;
    assert_eq!(
        closed.map(|i| i.status),
        Ok(InvitationStatus::Declined { at: 3_000 })
    );
    let item = stored(&client, &table, "INVITE#lay-inv-2", "META").await;
    assert_eq!(text(item.as_ref(), "status").as_deref(), Some("declined"));
    assert_eq!(text(item.as_ref(), "closed_by"), None);
    assert_eq!(number(item.as_ref(), "closed_at").as_deref(), Some("3000"));

    // Moving a device re-keys it on GSI1: listed in the new household only.
    let moved = registry.move_device(&lamp.id, &home, &cabin).await;
    assert_eq!(
        moved.map(|d| d.and_then(|d| d.household)),
        Ok(Some(cabin.clone()))
    );
    let item = stored(&client, &table, "DEVICE#lay-lamp", "META").await;
    assert_eq!(
        text(item.as_ref(), "GSI1PK").as_deref(),
        Some("HOUSEHOLD#lay-cabin")
    );
    assert_eq!(
        text(item.as_ref(), "GSI1SK").as_deref(),
        Some("DEVICE#lay-lamp")
    );
    let devices = registry.household_devices(&cabin, 10, None).await;
    assert_eq!(devices.map(|p| p.items.len()), Ok(1));
    let devices = registry.household_devices(&home, 10, None).await;
    assert_eq!(devices.map(|p| p.items.len()), Ok(0));
    assert_eq!(
        registry.move_device(&lamp.id, &home, &cabin).await,
        Ok(None),
        "no longer in home"
    );
}

#[tokio::test]
async fn a_corrupt_invitation_is_rejected() {
    let config = config().await;
    let (client, table) = create_table(&config).await;
    let registry = DynamoRegistry::from_client(client.clone(), table.clone());
    let invitation = Invitation {
        id: id(InvitationId::parse("bad-inv")),
        household: id(HouseholdId::parse("bad-home")),
        email: "bob@example.com".to_owned(),
        role: Role::Member,
        invited_by: id(UserId::parse("alice")),
        created_at: 1,
        expires_at: 10,
        status: InvitationStatus::Pending,
    };
    assert_eq!(registry.create_invitation(&invitation).await, Ok(()));
    // An accepted invitation must name who accepted it.
    let updated = client
        .update_item()
        .table_name(&table)
        .key("PK", AttributeValue::S("INVITE#bad-inv".to_owned()))
        .key("SK", AttributeValue::S("META".to_owned()))
        .update_expression("SET #status = :accepted, closed_at = :at")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":accepted", AttributeValue::S("accepted".to_owned()))
        .expression_attribute_values(":at", AttributeValue::N("5".to_owned()))
        .send()
        .await;
    assert!(updated.is_ok(), "{updated:?}");
    let read = registry.invitation(&invitation.id).await;
    assert!(matches!(read, Err(StoreError::Rejected(_))), "{read:?}");
    let listed = registry.household_invitations(&invitation.household).await;
    assert!(matches!(listed, Err(StoreError::Rejected(_))), "{listed:?}");
}
