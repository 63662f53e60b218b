//! Households and sharing on the local stack, end to end over HTTP.

use serde_json::json;

use crate::support::{http, start, tempdir, token, token_with_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_shares_a_device_and_takes_it_back() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let api = stack.http_addr();
    let maker = token(api, "acme-line", &["makers"]).await;
    let alice = token(api, "alice", &[]).await;
    let bob = token_with_email(api, "bob", "Bob@Example.com").await;

    let registration = json!({"productId": "acme-lamp", "serial": "SN-S", "deviceType": "light"});
    let (_, registered) = http(
        api,
        "POST",
        "/v1/maker/devices",
        Some(&maker),
        Some(&registration),
    )
    .await;
    let (status, claimed) = http(
        api,
        "POST",
        "/v1/claims",
        Some(&alice),
        Some(&json!({"claimCode": registered["claimCode"]})),
    )
    .await;
    assert_eq!(status, 201, "{claimed}");
    let device = format!(
        "/v1/devices/{}",
        claimed["device"]["id"].as_str().unwrap_or_default()
    );
    let household = claimed["device"]["householdId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // A invites B (by address, any case), B accepts.
    let (status, invited) = http(
        api,
        "POST",
        &format!("/v1/households/{household}/invitations"),
        Some(&alice),
        Some(&json!({"email": "bob@EXAMPLE.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let (_, pending) = http(api, "GET", "/v1/invitations", Some(&bob), None).await;
    assert_eq!(pending["items"][0]["id"], invited["id"]);
    let (status, accepted) = http(
        api,
        "POST",
        &format!(
            "/v1/invitations/{}/accept",
            invited["id"].as_str().unwrap_or_default()
        ),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 200, "{accepted}");

    // B commands the device, cannot delete it.
    let (status, _) = http(
        api,
        "POST",
        &format!("{device}/commands"),
        Some(&bob),
        Some(&json!({"desired": {"power": "on"}})),
    )
    .await;
    assert_eq!(status, 202);
    let (status, refused) = http(api, "DELETE", &device, Some(&bob), None).await;
    assert_eq!(status, 403, "{refused}");

    // A removes B; B no longer sees the device.
    let (status, _) = http(
        api,
        "DELETE",
        &format!("/v1/households/{household}/members/bob"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = http(api, "GET", &device, Some(&bob), None).await;
    assert_eq!(status, 404);
    let (_, listed) = http(api, "GET", "/v1/devices", Some(&bob), None).await;
    assert_eq!(listed, json!({"items": []}));
    stack.stop().await;
}
