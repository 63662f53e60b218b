//! Devices on the local broker as it starts by default: credentials from a claim, and the
//! template's IoT policy enforced on every connect, publish and subscribe.

use std::net::SocketAddr;
use std::time::Duration;

use hearth_local::stack::Stack;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{config, http, tempdir, token};

async fn start_secured(dir: &std::path::Path) -> Stack {
    let mut config = config(dir);
    config.allow_anonymous = false;
    match Stack::start(config).await {
        Ok(stack) => stack,
        Err(e) => panic!("stack did not start: {e}"),
    }
}

/// Registers and claims a device; its thing name and the claim's credentials.
async fn provision(api: SocketAddr, serial: &str) -> (String, Value) {
    let maker = token(api, "acme-line", &["makers"]).await;
    let owner = token(api, "alice", &[]).await;
    let registration = json!({"productId": "acme-lamp", "serial": serial, "deviceType": "light"});
    let (status, registered) = http(
        api,
        "POST",
        "/v1/maker/devices",
        Some(&maker),
        Some(&registration),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let claim = json!({"claimCode": registered["claimCode"]});
    let (status, claimed) = http(api, "POST", "/v1/claims", Some(&owner), Some(&claim)).await;
    assert_eq!(status, 201, "{claimed}");
    (
        claimed["device"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        claimed["credentials"].clone(),
    )
}

/// An MQTT connection whose events (and its end) arrive on a channel.
struct Conn {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Option<Packet>>,
}

async fn connect(
    mqtt: SocketAddr,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<Conn, String> {
    let mut options = MqttOptions::new(client_id, mqtt.ip().to_string(), mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, mut events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(packet)) => {
                    if tx.send(Some(packet)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        Ok(Some(Some(Packet::ConnAck(ack)))) if ack.code == ConnectReturnCode::Success => {
            Ok(Conn { client, events })
        }
        other => Err(format!("{other:?}")),
    }
}

impl Conn {
    /// The next packet within 5 s; `None` once the connection closed.
    async fn next(&mut self) -> Option<Packet> {
        match tokio::time::timeout(Duration::from_secs(5), self.events.recv()).await {
            Ok(Some(packet)) => packet,
            Ok(None) => None,
            Err(_) => panic!("nothing within 5 s"),
        }
    }

    /// Waits until the broker closes the connection.
    async fn closed(&mut self) {
        while self.next().await.is_some() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_confined_to_its_own_topics() {
    let dir = tempdir();
    let stack = start_secured(dir.path()).await;
    let (mine, credentials) = provision(stack.http_addr(), "SN-A").await;
    let (other, _) = provision(stack.http_addr(), "SN-B").await;
    let password = credentials["mqttPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let login = Some((mine.as_str(), password.as_str()));

    let mut conn = match connect(stack.mqtt_addr(), &mine, login).await {
        Ok(conn) => conn,
        Err(e) => panic!("the device could not connect: {e}"),
    };
    // Its own shadow and telemetry: allowed.
    let own = format!("$aws/things/{mine}/shadow/update");
    let delta = format!("$aws/things/{mine}/shadow/update/delta");
    if let Err(e) = conn.client.subscribe(&delta, QoS::AtLeastOnce).await {
        panic!("{e}");
    }
    match conn.next().await {
        Some(Packet::SubAck(ack)) => assert!(
            ack.return_codes
                .iter()
                .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))),
            "{ack:?}"
        ),
        other => panic!("{other:?}"),
    }
    for (topic, body) in [
        (own.clone(), json!({"state": {"reported": {"power": "on"}}})),
        (format!("dt/acme-lamp/{mine}/telemetry"), json!({"seq": 1})),
    ] {
        if let Err(e) = conn
            .client
            .publish(topic, QoS::AtLeastOnce, false, body.to_string())
            .await
        {
            panic!("{e}");
        }
        assert!(matches!(conn.next().await, Some(Packet::PubAck(_))));
    }
    // Another thing's shadow: refused and disconnected.
    let foreign = format!("$aws/things/{other}/shadow/update");
    if let Err(e) = conn
        .client
        .publish(foreign, QoS::AtLeastOnce, false, "{}")
        .await
    {
        panic!("{e}");
    }
    conn.closed().await;

    // Subscribing to another thing's topics: refused and disconnected too.
    let mut conn = match connect(stack.mqtt_addr(), &mine, login).await {
        Ok(conn) => conn,
        Err(e) => panic!("reconnect: {e}"),
    };
    let spy = format!("$aws/things/{other}/shadow/update/delta");
    if let Err(e) = conn.client.subscribe(spy, QoS::AtLeastOnce).await {
        panic!("{e}");
    }
    conn.closed().await;
    let mut conn = match connect(stack.mqtt_addr(), &mine, login).await {
        Ok(conn) => conn,
        Err(e) => panic!("reconnect: {e}"),
    };
    if let Err(e) = conn
        .client
        .subscribe("$aws/things/+/shadow/update/delta", QoS::AtLeastOnce)
        .await
    {
        panic!("{e}");
    }
    conn.closed().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_revoked_and_deleted_credentials_cannot_connect() {
    let dir = tempdir();
    let stack = start_secured(dir.path()).await;
    let api = stack.http_addr();
    let mqtt = stack.mqtt_addr();
    let (thing, credentials) = provision(api, "SN-C").await;
    let password = credentials["mqttPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    assert!(connect(mqtt, &thing, None).await.is_err(), "no credentials");
    assert!(
        connect(mqtt, &thing, Some((&thing, "wrong")))
            .await
            .is_err(),
        "wrong secret"
    );
    assert!(
        connect(mqtt, "someone-else", Some((&thing, &password)))
            .await
            .is_err(),
        "client id is not the thing name"
    );
    assert!(
        connect(mqtt, &thing, Some((&thing, &password)))
            .await
            .is_ok()
    );

    // Re-issued credentials: the old secret stops working, the new one works.
    let owner = token(api, "alice", &[]).await;
    let (status, reissued) = http(
        api,
        "POST",
        &format!("/v1/devices/{thing}/credentials"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 201, "{reissued}");
    let new_password = reissued["mqttPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        connect(mqtt, &thing, Some((&thing, &password)))
            .await
            .is_err(),
        "revoked"
    );
    assert!(
        connect(mqtt, &thing, Some((&thing, &new_password)))
            .await
            .is_ok()
    );

    // A deleted device cannot connect at all.
    let (status, _) = http(
        api,
        "DELETE",
        &format!("/v1/devices/{thing}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        connect(mqtt, &thing, Some((&thing, &new_password)))
            .await
            .is_err(),
        "deleted"
    );
    stack.stop().await;
}
