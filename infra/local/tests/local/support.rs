use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hearth_local::simulator::get_json;
use hearth_local::stack::{Config, Stack};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

pub fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

/// A stack on free ports that lets any client connect (these tests are about other things;
/// `auth.rs` runs the stack as it starts by default, with device credentials and the policy).
pub fn config(data_dir: &Path) -> Config {
    let mut config = Config::new(data_dir.to_path_buf(), local(), local(), template());
    config.allow_anonymous = true;
    config
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn start(data_dir: &Path) -> Stack {
    match Stack::start(config(data_dir)).await {
        Ok(stack) => stack,
        Err(e) => panic!("stack did not start: {e}"),
    }
}

/// An MQTT client whose incoming publishes arrive on a channel.
pub struct Device {
    pub client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<(String, Value)>,
    acks: mpsc::UnboundedReceiver<u16>,
}

impl Device {
    pub async fn connect(mqtt: SocketAddr, client_id: &str, subscriptions: &[&str]) -> Device {
        let mut options = MqttOptions::new(client_id, mqtt.ip().to_string(), mqtt.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, incoming) = mpsc::unbounded_channel();
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let (ready_tx, mut ready) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let _ = ack_tx.send(ack.pkid);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        if tx.send((p.topic.clone(), value)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let device = Device {
            client,
            incoming,
            acks,
        };
        for topic in subscriptions {
            if let Err(e) = device.client.subscribe(*topic, QoS::AtLeastOnce).await {
                panic!("subscribe: {e}");
            }
        }
        // ConnAck plus one SubAck per subscription.
        for _ in 0..=subscriptions.len() {
            if tokio::time::timeout(Duration::from_secs(5), ready.recv())
                .await
                .is_err()
            {
                panic!("{client_id} did not connect/subscribe");
            }
        }
        device
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
        {
            panic!("publish: {e}");
        }
    }

    /// Waits for a PUBACK.
    pub async fn acked(&mut self) {
        if tokio::time::timeout(Duration::from_secs(10), self.acks.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            panic!("no PUBACK");
        }
    }

    /// The next message on `topic` within 10 s.
    pub async fn expect(&mut self, topic: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.incoming.recv()).await {
                Ok(Some((t, value))) if t == topic => return value,
                Ok(Some(_)) => {}
                _ => panic!("nothing on {topic}"),
            }
        }
    }
}

/// Polls the stack's state view until `check` holds (10 s).
pub async fn state_until(http: SocketAddr, thing: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(state) = get_json(http, &format!("/local/devices/{thing}/state")).await {
            if check(&state) {
                return state;
            }
            last = state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("state of {thing} never matched; last seen: {last}");
}

pub fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    }
}

/// A minimal HTTP/1.1 request to the stack: the status and the JSON body (`Null` if none).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => panic!("connect {addr}: {e}"),
    };
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        panic!("write: {e}");
    }
    let mut response = Vec::new();
    if let Err(e) = stream.read_to_end(&mut response).await {
        panic!("read: {e}");
    }
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A development token from the running stack.
pub async fn token(addr: SocketAddr, user: &str, groups: &[&str]) -> String {
    let request = serde_json::json!({"user": user, "groups": groups});
    let (status, body) = http(addr, "POST", "/dev/tokens", None, Some(&request)).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap_or_default().to_owned()
}

/// A development token carrying a verified e-mail address.
pub async fn token_with_email(addr: SocketAddr, user: &str, email: &str) -> String {
    let request = serde_json::json!({"user": user, "email": email});
    let (status, body) = http(addr, "POST", "/dev/tokens", None, Some(&request)).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap_or_default().to_owned()
}
