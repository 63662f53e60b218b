//! Invitations on DynamoDB: `PK=INVITE#<id>`, `SK=META`; GSI1 (`HOUSEHOLD#<h>`, `INVITE#<id>`)
//! lists a household's, GSI2 (`EMAIL#<address>`, `INVITE#<id>`) an address's. Accepting puts the
//! membership in the same transaction that closes the invitation.

use super::*;

/// Invitations: `PK=INVITE#<id>`, `SK=META`; GSI1 (`HOUSEHOLD#<h>`, `INVITE#<id>`) lists a
/// household's, GSI2 (`EMAIL#<address>`, `INVITE#<id>`) an address's. The expiry is stored as
/// `expires_at_ms`, not `expires_at`: that name is the table's TTL attribute (seconds), and
/// closed invitations are kept for the owners' listing.
const GSI2: &str = "GSI2";
const GSI2PK: &str = "GSI2PK";
const GSI2SK: &str = "GSI2SK";

fn invite_pk(id: &str) -> String {
    format!("INVITE#{id}")
}

fn invitation_item(invitation: &Invitation) -> Item {
    let id = invitation.id.as_str();
    let mut item = Item::new();
    item.insert(PK.to_owned(), s(invite_pk(id)));
    item.insert(SK.to_owned(), s(META_SK));
    item.insert(
        GSI1PK.to_owned(),
        s(household_pk(invitation.household.as_str())),
    );
    item.insert(GSI1SK.to_owned(), s(invite_pk(id)));
    item.insert(GSI2PK.to_owned(), s(format!("EMAIL#{}", invitation.email)));
    item.insert(GSI2SK.to_owned(), s(invite_pk(id)));
    item.insert("entity".to_owned(), s("invitation"));
    item.insert("id".to_owned(), s(id));
    item.insert("household".to_owned(), s(invitation.household.as_str()));
    item.insert("email".to_owned(), s(invitation.email.as_str()));
    item.insert("role".to_owned(), s(invitation.role.as_str()));
    item.insert("invited_by".to_owned(), s(invitation.invited_by.as_str()));
    item.insert("created_at".to_owned(), n(invitation.created_at));
    item.insert("expires_at_ms".to_owned(), n(invitation.expires_at));
    let (status, by, at) = status_parts(&invitation.status);
    item.insert("status".to_owned(), s(status));
    if let Some(by) = by {
        item.insert("closed_by".to_owned(), s(by.as_str()));
    }
    if let Some(at) = at {
        item.insert("closed_at".to_owned(), n(at));
    }
    item
}

fn status_parts(status: &InvitationStatus) -> (&'static str, Option<&UserId>, Option<u64>) {
    match status {
        InvitationStatus::Pending => ("pending", None, None),
        InvitationStatus::Accepted { by, at } => ("accepted", Some(by), Some(*at)),
        InvitationStatus::Declined { at } => ("declined", None, Some(*at)),
        InvitationStatus::Revoked { at } => ("revoked", None, Some(*at)),
    }
}

fn decode_invitation(item: &Item) -> Result<Invitation, StoreError> {
    let text = |name: &str| required(get_s(item, name)?, item, name);
    let number = |name: &str| required(get_n(item, name)?, item, name);
    let status = match text("status")? {
        "pending" => InvitationStatus::Pending,
        "accepted" => InvitationStatus::Accepted {
            by: parse_id(UserId::parse(text("closed_by")?), item, "closed_by")?,
            at: number("closed_at")?,
        },
        "declined" => InvitationStatus::Declined {
            at: number("closed_at")?,
        },
        "revoked" => InvitationStatus::Revoked {
            at: number("closed_at")?,
        },
        _ => return Err(corrupt(item, "status")),
    };
    Ok(Invitation {
        id: parse_id(InvitationId::parse(text("id")?), item, "id")?,
        household: parse_id(HouseholdId::parse(text("household")?), item, "household")?,
        email: text("email")?.to_owned(),
        role: text("role")?.parse().map_err(|_| corrupt(item, "role"))?,
        invited_by: parse_id(UserId::parse(text("invited_by")?), item, "invited_by")?,
        created_at: number("created_at")?,
        expires_at: number("expires_at_ms")?,
        status,
    })
}

impl DynamoRegistry {
    /// Every invitation on `index` under `pk`, by id.
    async fn query_invitations(
        &self,
        index: &str,
        pk_name: &str,
        sk_name: &str,
        pk: String,
    ) -> Result<Vec<Invitation>, StoreError> {
        let mut invitations = self
            .query_all(Some((index, pk_name, sk_name)), pk, "INVITE#")
            .await?
            .iter()
            .map(decode_invitation)
            .collect::<Result<Vec<_>, _>>()?;
        invitations.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(invitations)
    }

    async fn read_invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        self.get(invite_pk(id.as_str()), META_SK)
            .await?
            .as_ref()
            .map(decode_invitation)
            .transpose()
    }
}

#[async_trait]
impl Invitations for DynamoRegistry {
    async fn create_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        self.put(invitation_item(invitation)).await
    }

    async fn invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        self.read_invitation(id).await
    }

    async fn household_invitations(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Invitation>, StoreError> {
        self.query_invitations(GSI1, GSI1PK, GSI1SK, household_pk(household.as_str()))
            .await
    }

    async fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError> {
        self.query_invitations(GSI2, GSI2PK, GSI2SK, format!("EMAIL#{email}"))
            .await
    }

    async fn close_invitation(
        &self,
        id: &InvitationId,
        status: InvitationStatus,
        now: u64,
    ) -> Result<Invitation, InvitationError> {
        for attempt in 0..MAX_ATTEMPTS {
            let invitation = self
                .read_invitation(id)
                .await?
                .ok_or(InvitationError::Unknown)?;
            if !invitation.is_open(now) {
                return Err(InvitationError::NotOpen);
            }
            let (name, by, at) = status_parts(&status);
            let mut update = Update::builder()
                .table_name(&self.table)
                .key(PK, s(invite_pk(id.as_str())))
                .key(SK, s(META_SK))
                .condition_expression("#status = :pending AND expires_at_ms > :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":status", s(name))
                .expression_attribute_values(":at", n(at.unwrap_or(now)));
            update = match by {
                Some(by) => update
                    .update_expression("SET #status = :status, closed_at = :at, closed_by = :by")
                    .expression_attribute_values(":by", s(by.as_str())),
                None => update.update_expression("SET #status = :status, closed_at = :at"),
            };
            let mut items = vec![
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
            ];
            if let Some(by) = by {
                let membership = Membership {
                    user: by.clone(),
                    household: invitation.household.clone(),
                    role: invitation.role,
                };
                items.push(put(&self.table, membership_item(&membership))?);
            }
            match self.transact(items).await? {
                Transacted::Done => {
                    return self
                        .read_invitation(id)
                        .await?
                        .ok_or(InvitationError::Unknown);
                }
                Transacted::ConditionFailed => return Err(InvitationError::NotOpen),
                Transacted::Conflict => self.backoff(attempt).await,
            }
        }
        Err(InvitationError::Store(StoreError::Transient(format!(
            "closing invitation {id}: gave up after {MAX_ATTEMPTS} transaction conflicts"
        ))))
    }
}
