//! A minimal MQTT 3.1.1 client codec for the load generator.
//!
//! The simulator shares a 2-core machine with the stack it measures, so each simulated device is
//! a plain TCP stream with this codec instead of a full client with its own event loop: a
//! publish is one encode into a reused buffer and one write. It covers what a simulated device
//! sends (CONNECT with optional credentials, SUBSCRIBE, QoS 1 PUBLISH, PUBACK, PINGREQ,
//! DISCONNECT) and what it receives (CONNACK, SUBACK, PUBACK, PUBLISH at QoS 0/1, PINGRESP).
//! The end-to-end tests use a real client (`rumqttc`), not this codec.

use bytes::{Buf, BytesMut};
use thiserror::Error;

/// A packet the broker sent that this codec could not accept.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// The remaining-length field runs over four bytes.
    #[error("malformed remaining length")]
    Length,
    /// A packet is shorter than its fixed fields.
    #[error("truncated {0} packet")]
    Truncated(&'static str),
    /// A topic name is not UTF-8.
    #[error("topic name is not UTF-8")]
    Topic,
}

/// A packet from the broker.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK with its return code (0 = accepted).
    ConnAck(u8),
    /// PUBACK for a packet identifier.
    PubAck(u16),
    /// SUBACK with its return codes (0x80 = refused).
    SubAck(u16, Vec<u8>),
    /// An application message.
    Publish {
        /// Quality of service (0, 1 or 2).
        qos: u8,
        /// Packet identifier (QoS > 0).
        id: Option<u16>,
        /// Topic name.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// PINGRESP.
    PingResp,
    /// Another packet type (its fixed-header type nibble); ignored by the simulator.
    Other(u8),
}

/// Appends the remaining-length encoding of `len`.
fn put_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = u8::try_from(len % 128).unwrap_or(0);
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            return;
        }
    }
}

/// Appends an MQTT string (at most 65,535 bytes: longer input is cut, which no simulated
/// topic or identifier reaches).
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s[..usize::from(len)]);
}

/// Appends a CONNECT (clean session) for `client_id`, with optional username and password.
pub fn connect(
    out: &mut Vec<u8>,
    client_id: &str,
    keep_alive_secs: u16,
    credentials: Option<(&str, &str)>,
) {
    let mut body = Vec::with_capacity(32 + client_id.len());
    put_str(&mut body, b"MQTT");
    body.push(4);
    let mut flags = 0x02;
    if credentials.is_some() {
        flags |= 0x80 | 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&keep_alive_secs.to_be_bytes());
    put_str(&mut body, client_id.as_bytes());
    if let Some((user, password)) = credentials {
        put_str(&mut body, user.as_bytes());
        put_str(&mut body, password.as_bytes());
    }
    out.push(0x10);
    put_length(out, body.len());
    out.extend_from_slice(&body);
}

/// Appends a SUBSCRIBE for one filter at QoS 1.
pub fn subscribe(out: &mut Vec<u8>, id: u16, filter: &str) {
    out.push(0x82);
    put_length(out, 2 + 2 + filter.len() + 1);
    out.extend_from_slice(&id.to_be_bytes());
    put_str(out, filter.as_bytes());
    out.push(1);
}

/// Appends a QoS 1 PUBLISH.
pub fn publish(out: &mut Vec<u8>, id: u16, topic: &str, payload: &[u8]) {
    out.push(0x32);
    put_length(out, 2 + topic.len() + 2 + payload.len());
    put_str(out, topic.as_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends a PUBACK.
pub fn puback(out: &mut Vec<u8>, id: u16) {
    out.extend_from_slice(&[0x40, 0x02]);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a PINGREQ.
pub fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xC0, 0x00]);
}

/// Appends a DISCONNECT.
pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xE0, 0x00]);
}

/// Takes the next complete packet off `buf`; `Ok(None)` when more bytes are needed.
pub fn next(buf: &mut BytesMut) -> Result<Option<Incoming>, WireError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut header = 1;
    loop {
        if header > 4 {
            return Err(WireError::Length);
        }
        let Some(&byte) = buf.get(header) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << (7 * (header - 1));
        header += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    if buf.len() < header + len {
        return Ok(None);
    }
    buf.advance(header);
    let body = buf.split_to(len);
    let id = |name| {
        body.get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(WireError::Truncated(name))
    };
    let packet = match first >> 4 {
        2 => Incoming::ConnAck(*body.get(1).ok_or(WireError::Truncated("CONNACK"))?),
        4 => Incoming::PubAck(id("PUBACK")?),
        9 => Incoming::SubAck(id("SUBACK")?, body.get(2..).unwrap_or_default().to_vec()),
        3 => {
            let qos = (first >> 1) & 0x03;
            let topic_len = usize::from(id("PUBLISH")?);
            let topic = body
                .get(2..2 + topic_len)
                .ok_or(WireError::Truncated("PUBLISH"))?;
            let topic = std::str::from_utf8(topic).map_err(|_| WireError::Topic)?;
            let mut rest = 2 + topic_len;
            let id = if qos > 0 {
                let b = body
                    .get(rest..rest + 2)
                    .ok_or(WireError::Truncated("PUBLISH"))?;
                rest += 2;
                Some(u16::from_be_bytes([b[0], b[1]]))
            } else {
                None
            };
            Incoming::Publish {
                qos,
                id,
                topic: topic.to_owned(),
                payload: body.get(rest..).unwrap_or_default().to_vec(),
            }
        }
        13 => Incoming::PingResp,
        other => Incoming::Other(other),
    };
    Ok(Some(packet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<Incoming>, WireError> {
        next(&mut BytesMut::from(bytes))
    }

    #[test]
    fn remaining_length_uses_the_variable_byte_encoding() {
        for (len, expected) in [
            (0, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            put_length(&mut out, len);
            assert_eq!(out, expected, "length {len}");
        }
    }

    #[test]
    fn connect_matches_the_specification_example_layout() {
        let mut out = Vec::new();
        connect(&mut out, "dev", 60, Some(("u", "p")));
        assert_eq!(
            out,
            [
                0x10, 21, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60, 0, 3, b'd', b'e', b'v', 0,
                1, b'u', 0, 1, b'p'
            ]
        );
        out.clear();
        connect(&mut out, "d", 30, None);
        assert_eq!(out[9], 0x02, "clean session only");
    }

    #[test]
    fn a_publish_round_trips_through_the_decoder() {
        let mut out = Vec::new();
        publish(&mut out, 7, "dt/a/b", b"{\"seq\":1}");
        let payload = vec![b'x'; 300];
        publish(&mut out, 8, "t", &payload);
        let mut buf = BytesMut::from(&out[..]);
        assert_eq!(
            next(&mut buf),
            Ok(Some(Incoming::Publish {
                qos: 1,
                id: Some(7),
                topic: "dt/a/b".to_owned(),
                payload: b"{\"seq\":1}".to_vec(),
            }))
        );
        assert_eq!(
            next(&mut buf),
            Ok(Some(Incoming::Publish {
                qos: 1,
                id: Some(8),
                topic: "t".to_owned(),
                payload,
            }))
        );
        assert_eq!(next(&mut buf), Ok(None));
    }

    #[test]
    fn acks_and_qos0_publishes_decode() {
        assert_eq!(parse(&[0x20, 2, 0, 0]), Ok(Some(Incoming::ConnAck(0))));
        assert_eq!(parse(&[0x20, 2, 0, 5]), Ok(Some(Incoming::ConnAck(5))));
        assert_eq!(parse(&[0x40, 2, 1, 2]), Ok(Some(Incoming::PubAck(258))));
        assert_eq!(
            parse(&[0x90, 3, 0, 9, 0x80]),
            Ok(Some(Incoming::SubAck(9, vec![0x80])))
        );
        assert_eq!(parse(&[0xD0, 0]), Ok(Some(Incoming::PingResp)));
        assert_eq!(
            parse(&[0x30, 5, 0, 1, b't', b'h', b'i']),
            Ok(Some(Incoming::Publish {
                qos: 0,
                id: None,
                topic: "t".to_owned(),
                payload: b"hi".to_vec(),
            }))
        );
    }

    #[test]
    fn partial_packets_wait_for_more_bytes() {
        let mut out = Vec::new();
        publish(&mut out, 1, "topic", &[b'x'; 200]);
        for cut in 0..out.len() {
            let mut buf = BytesMut::from(&out[..cut]);
            assert_eq!(next(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed");
        }
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        assert_eq!(
            parse(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(WireError::Length)
        );
        assert_eq!(parse(&[0x40, 1, 0]), Err(WireError::Truncated("PUBACK")));
        assert_eq!(
            parse(&[0x32, 3, 0, 9, b't']),
            Err(WireError::Truncated("PUBLISH"))
        );
        assert_eq!(parse(&[0x30, 3, 0, 1, 0xff]), Err(WireError::Topic));
        assert_eq!(parse(&[0x20, 0]), Err(WireError::Truncated("CONNACK")));
    }
}
