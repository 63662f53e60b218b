//! Invitations and device transfer.

use http::Method;
use serde_json::json;

use crate::support::{World, call, call_as, caller};
use hearth_api::Caller;

fn with_email(user: &str, email: &str) -> Caller {
    Caller {
        email: Some(email.to_owned()),
        ..caller(user)
    }
}

#[tokio::test]
async fn an_invitee_accepts_commands_but_cannot_delete_and_loses_access_when_removed() {
    let world = World::seeded().await;
    let dave = with_email("dave", "Dave@Example.com");
    let created = call(
        &world,
        "alice",
        Method::POST,
        "/v1/households/home-b/invitations",
        Some(r#"{"email":"  DAVE@example.COM ","role":"member"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    assert_eq!(created.body["email"], "dave@example.com");
    assert_eq!(created.body["status"], "pending");
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("inv-") && id.len() == 30, "{id}");

    // The invitation is dave's (case-insensitively), nobody else's.
    let mine = call_as(&world, &dave, Method::GET, "/v1/invitations", None).await;
    assert_eq!(
        mine.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        mine.raw
    );
    let erin = with_email("erin", "erin@example.com");
    assert_eq!(
        call_as(&world, &erin, Method::GET, "/v1/invitations", None)
            .await
            .body,
        json!({"items": []})
    );
    call_as(
        &world,
        &erin,
        Method::POST,
        &format!("/v1/invitations/{id}/accept"),
        None,
    )
    .await
    .problem(404, "not-found");
    // Without a verified e-mail address nothing is addressed to the caller.
    call(
        &world,
        "dave",
        Method::POST,
        &format!("/v1/invitations/{id}/accept"),
        None,
    )
    .await
    .problem(404, "not-found");

    let accepted = call_as(
        &world,
        &dave,
        Method::POST,
        &format!("/v1/invitations/{id}/accept"),
        None,
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.raw);
    assert_eq!(accepted.body["status"], "accepted");
    call_as(
        &world,
        &dave,
        Method::POST,
        &format!("/v1/invitations/{id}/accept"),
        None,
    )
    .await
    .problem(409, "invitation-closed");

    // A member commands, cannot delete.
    let command = call_as(
        &world,
        &dave,
        Method::POST,
        "/v1/devices/b-2/commands",
        Some(r#"{"desired":{"targetTemperatureC":21}}"#),
    )
    .await;
    assert_eq!(command.status, 202, "{}", command.raw);
    call_as(&world, &dave, Method::DELETE, "/v1/devices/b-2", None)
        .await
        .problem(403, "forbidden");

    // Removed: the device is gone for dave.
    let removed = call(
        &world,
        "alice",
        Method::DELETE,
        "/v1/households/home-b/members/dave",
        None,
    )
    .await;
    assert_eq!(removed.status, 204, "{}", removed.raw);
    call_as(&world, &dave, Method::GET, "/v1/devices/b-2", None)
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn owners_list_and_revoke_invitations_and_invitees_decline() {
    let world = World::seeded().await;
    let path = "/v1/households/home-a/invitations";
    let carol = with_email("carol", "carol@example.com");
    let first = call(
        &world,
        "alice",
        Method::POST,
        path,
        Some(r#"{"email":"carol@example.com","role":"owner"}"#),
    )
    .await;
    let second = call(
        &world,
        "alice",
        Method::POST,
        path,
        Some(r#"{"email":"carol@example.com","role":"member"}"#),
    )
    .await;
    assert_eq!(first.status, 201);
    // Members neither invite nor see invitations; strangers get a 404.
    call(
        &world,
        "bob",
        Method::POST,
        path,
        Some(r#"{"email":"x@example.com","role":"member"}"#),
    )
    .await
    .problem(403, "forbidden");
    call(&world, "bob", Method::GET, path, None)
        .await
        .problem(403, "forbidden");
    call_as(&world, &carol, Method::GET, path, None)
        .await
        .problem(404, "not-found");
    let listed = call(&world, "alice", Method::GET, path, None).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));

    let first_id = first.body["id"].as_str().unwrap_or_default().to_owned();
    let revoked = call(
        &world,
        "alice",
        Method::DELETE,
        &format!("{path}/{first_id}"),
        None,
    )
    .await;
    assert_eq!(revoked.status, 204, "{}", revoked.raw);
    call(
        &world,
        "alice",
        Method::DELETE,
        &format!("{path}/{first_id}"),
        None,
    )
    .await
    .problem(409, "invitation-closed");
    call_as(
        &world,
        &carol,
        Method::POST,
        &format!("/v1/invitations/{first_id}/accept"),
        None,
    )
    .await
    .problem(409, "invitation-closed");
    // Another household's owner cannot revoke it through their household.
    call(
        &world,
        "bob",
        Method::DELETE,
        &format!("/v1/households/home-c/invitations/{first_id}"),
        None,
    )
    .await
    .problem(404, "not-found");

    let second_id = second.body["id"].as_str().unwrap_or_default().to_owned();
    let declined = call_as(
        &world,
        &carol,
        Method::POST,
        &format!("/v1/invitations/{second_id}/decline"),
        None,
    )
    .await;
    assert_eq!(declined.body["status"], "declined", "{}", declined.raw);
    assert_eq!(
        call_as(&world, &carol, Method::GET, "/v1/households", None)
            .await
            .body,
        json!({"items": []})
    );
    for (body, field) in [
        (
            r#"{"email":"not-an-address","role":"member"}"#,
            Some("/email"),
        ),
        (r#"{"email":"a@b.c","role":"admin"}"#, None),
    ] {
        let reply = call(&world, "alice", Method::POST, path, Some(body)).await;
        reply.problem(422, "validation");
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field);
        }
    }
}

#[tokio::test]
async fn owners_transfer_devices_between_their_households() {
    let world = World::seeded().await;
    let moved = call(
        &world,
        "alice",
        Method::POST,
        "/v1/devices/a-light/transfer",
        Some(r#"{"householdId":"home-b"}"#),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.raw);
    assert_eq!(moved.body["householdId"], "home-b");
    // bob (a member of home-a only) no longer sees it.
    call(&world, "bob", Method::GET, "/v1/devices/a-light", None)
        .await
        .problem(404, "not-found");
    call(
        &world,
        "bob",
        Method::POST,
        "/v1/devices/a-lock/transfer",
        Some(r#"{"householdId":"home-c"}"#),
    )
    .await
    .problem(403, "forbidden");
    let reply = call(
        &world,
        "alice",
        Method::POST,
        "/v1/devices/a-lock/transfer",
        Some(r#"{"householdId":"home-c"}"#),
    )
    .await;
    reply.problem(404, "not-found");
    assert_eq!(reply.body["field"], "/householdId");
    call(
        &world,
        "alice",
        Method::POST,
        "/v1/devices/a-lock/transfer",
        Some(r#"{"householdId":"home-a"}"#),
    )
    .await
    .problem(422, "validation");
}

#[tokio::test]
async fn an_invitation_expires_after_seven_days_on_the_clock() {
    let world = World::seeded().await;
    let dave = with_email("dave", "dave@example.com");
    let world = &world;
    let invite = |household: &'static str| async move {
        let created = call(
            world,
            "alice",
            Method::POST,
            &format!("/v1/households/{household}/invitations"),
            Some(r#"{"email":"dave@example.com","role":"member"}"#),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.raw);
        created.body["id"].as_str().unwrap_or_default().to_owned()
    };
    let accept = |id: String| {
        let dave = &dave;
        async move {
            call_as(
                world,
                dave,
                Method::POST,
                &format!("/v1/invitations/{id}/accept"),
                None,
            )
            .await
        }
    };
    let seven_days = std::time::Duration::from_secs(7 * 24 * 3600);

    // A millisecond before the end of its seventh day an invitation still works...
    let early = invite("home-b").await;
    world
        .clock
        .advance(seven_days - std::time::Duration::from_millis(1));
    let accepted = accept(early).await;
    assert_eq!(accepted.status, 200, "{}", accepted.raw);

    // ...and from then on it is refused, listed as expired, and offered to nobody.
    let late = invite("home-a").await;
    world.clock.advance(seven_days);
    accept(late.clone()).await.problem(409, "invitation-closed");
    let listed = call(
        world,
        "alice",
        Method::GET,
        "/v1/households/home-a/invitations",
        None,
    )
    .await;
    let status = listed.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == late.as_str()))
        .map(|i| i["status"].clone());
    assert_eq!(status, Some(json!("expired")), "{}", listed.raw);
    let mine = call_as(world, &dave, Method::GET, "/v1/invitations", None).await;
    assert_eq!(mine.body, json!({"items": []}), "{}", mine.raw);
}
