//! `/v1/households`: households, names, members, roles, leaving.

use http::Method;
use serde_json::json;

use crate::support::{World, call};

#[tokio::test]
async fn callers_list_their_households_with_their_role() {
    let world = World::seeded().await;
    let reply = call(&world, "alice", Method::GET, "/v1/households", None).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(
        reply.body,
        json!({"items": [
            {"id": "home-a", "name": "home-a", "role": "owner"},
            {"id": "home-b", "name": "home-b", "role": "owner"},
        ]})
    );
    let bob = call(&world, "bob", Method::GET, "/v1/households", None).await;
    assert_eq!(
        bob.body["items"][0],
        json!({"id": "home-a", "name": "home-a", "role": "member"})
    );
    let nobody = call(&world, "carol", Method::GET, "/v1/households", None).await;
    assert_eq!(nobody.body, json!({"items": []}));
}

#[tokio::test]
async fn owners_rename_members_get_403_and_strangers_404() {
    let world = World::seeded().await;
    let path = "/v1/households/home-a";
    let reply = call(
        &world,
        "alice",
        Method::PATCH,
        path,
        Some(r#"{"name":"Lake house"}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(
        reply.body,
        json!({"id": "home-a", "name": "Lake house", "role": "owner"})
    );
    let listed = call(&world, "bob", Method::GET, "/v1/households", None).await;
    assert_eq!(listed.body["items"][0]["name"], "Lake house");
    call(
        &world,
        "bob",
        Method::PATCH,
        path,
        Some(r#"{"name":"Mine"}"#),
    )
    .await
    .problem(403, "forbidden");
    let stranger = call(
        &world,
        "carol",
        Method::PATCH,
        path,
        Some(r#"{"name":"Mine"}"#),
    )
    .await;
    let missing = call(
        &world,
        "carol",
        Method::PATCH,
        "/v1/households/nope",
        Some(r#"{"name":"Mine"}"#),
    )
    .await;
    stranger.problem(404, "not-found");
    assert_eq!(
        stranger.raw, missing.raw,
        "another household is indistinguishable from none"
    );
    let reply = call(
        &world,
        "alice",
        Method::PATCH,
        path,
        Some(r#"{"name":" "}"#),
    )
    .await;
    reply.problem(422, "validation");
    assert_eq!(reply.body["field"], "/name");
}

#[tokio::test]
async fn members_are_listed_promoted_and_removed_by_owners() {
    let world = World::seeded().await;
    let members = call(
        &world,
        "bob",
        Method::GET,
        "/v1/households/home-a/members",
        None,
    )
    .await;
    assert_eq!(
        members.body,
        json!({"items": [{"userId": "alice", "role": "owner"}, {"userId": "bob", "role": "member"}]})
    );
    call(
        &world,
        "carol",
        Method::GET,
        "/v1/households/home-a/members",
        None,
    )
    .await
    .problem(404, "not-found");
    let bob = "/v1/households/home-a/members/bob";
    call(
        &world,
        "bob",
        Method::PATCH,
        bob,
        Some(r#"{"role":"owner"}"#),
    )
    .await
    .problem(403, "forbidden");
    call(
        &world,
        "alice",
        Method::PATCH,
        "/v1/households/home-a/members/zed",
        Some(r#"{"role":"owner"}"#),
    )
    .await
    .problem(404, "not-found");
    call(
        &world,
        "alice",
        Method::PATCH,
        bob,
        Some(r#"{"role":"boss"}"#),
    )
    .await
    .problem(422, "validation");
    let promoted = call(
        &world,
        "alice",
        Method::PATCH,
        bob,
        Some(r#"{"role":"owner"}"#),
    )
    .await;
    assert_eq!(
        promoted.body,
        json!({"userId": "bob", "role": "owner"}),
        "{}",
        promoted.raw
    );
    // Now bob, an owner, may rename a device of home-a.
    let renamed = call(
        &world,
        "bob",
        Method::PATCH,
        "/v1/devices/a-light",
        Some(r#"{"name":"Bob's"}"#),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.raw);

    // alice removes bob: he no longer sees the household or its devices.
    let removed = call(&world, "alice", Method::DELETE, bob, None).await;
    assert_eq!(removed.status, 204, "{}", removed.raw);
    call(&world, "bob", Method::GET, "/v1/devices/a-light", None)
        .await
        .problem(404, "not-found");
    let listed = call(&world, "bob", Method::GET, "/v1/households", None).await;
    assert_eq!(
        listed.body,
        json!({"items": [{"id": "home-c", "name": "home-c", "role": "owner"}]})
    );
    call(&world, "alice", Method::DELETE, bob, None)
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn a_household_with_members_or_devices_keeps_an_owner() {
    let world = World::seeded().await;
    // alice is home-a's only owner and bob is a member: she can neither step down nor leave.
    call(
        &world,
        "alice",
        Method::PATCH,
        "/v1/households/home-a/members/alice",
        Some(r#"{"role":"member"}"#),
    )
    .await
    .problem(409, "last-owner");
    call(
        &world,
        "alice",
        Method::DELETE,
        "/v1/households/home-a/members/alice",
        None,
    )
    .await
    .problem(409, "last-owner");
    // home-b has devices and no other member: its owner cannot leave either.
    call(
        &world,
        "alice",
        Method::DELETE,
        "/v1/households/home-b/members/alice",
        None,
    )
    .await
    .problem(409, "last-owner");
    // A member leaves freely; members cannot remove others.
    call(
        &world,
        "bob",
        Method::DELETE,
        "/v1/households/home-a/members/alice",
        None,
    )
    .await
    .problem(403, "forbidden");
    let left = call(
        &world,
        "bob",
        Method::DELETE,
        "/v1/households/home-a/members/bob",
        None,
    )
    .await;
    assert_eq!(left.status, 204, "{}", left.raw);
    // bob is home-c's only owner and it has a device: he cannot step down.
    let promote = call(
        &world,
        "bob",
        Method::PATCH,
        "/v1/households/home-c/members/bob",
        Some(r#"{"role":"member"}"#),
    )
    .await;
    promote.problem(409, "last-owner");
}
