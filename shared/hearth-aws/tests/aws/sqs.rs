use std::collections::HashMap;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use hearth_aws::sqs::SqsDeadLetterSink;
use hearth_ports::{DeadLetter, DeadLetterSink, contract};

use crate::support::{config, unique};

async fn queue(client: &aws_sdk_sqs::Client) -> String {
    let created = client
        .create_queue()
        .queue_name(unique("hearth-dlq"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)));
    created.queue_url().unwrap_or_default().to_owned()
}

/// Every message on the queue: body and string attributes.
async fn drain(client: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out = Vec::new();
    loop {
        let received = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)));
        if received.messages().is_empty() {
            return out;
        }
        for m in received.messages() {
            let attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.body().unwrap_or_default().to_owned(), attributes));
            if let Some(handle) = m.receipt_handle() {
                let deleted = client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await;
                assert!(deleted.is_ok());
            }
        }
    }
}

#[tokio::test]
async fn dead_letter_sink_passes_the_contract_and_keeps_the_reason() {
    let config = config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let url = queue(&client).await;
    let sink = SqsDeadLetterSink::from_client(client.clone(), url.clone());
    let sent = contract::dead_letters(&sink).await;
    let mut received = drain(&client, &url).await;
    received.sort_by(|a, b| {
        a.1.get("hearth.source-message-id")
            .cmp(&b.1.get("hearth.source-message-id"))
    });
    assert_eq!(received.len(), sent.len());
    for ((body, attributes), letter) in received.iter().zip(&sent) {
        assert_eq!(body, &letter.body, "body unchanged");
        assert_eq!(attributes.get("hearth.reason"), Some(&letter.reason));
        assert_eq!(attributes.get("hearth.detail"), Some(&letter.detail));
        assert_eq!(
            attributes.get("hearth.source-message-id"),
            Some(&letter.message_id)
        );
        assert_eq!(attributes.get("hearth.truncated"), None);
    }
}

#[tokio::test]
async fn letters_are_batched_within_sqs_limits() {
    let config = config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let url = queue(&client).await;
    let sink = SqsDeadLetterSink::from_client(client.clone(), url.clone());
    // 25 letters, three of them large: more than one batch by count and by size, and one
    // larger than a single SQS message.
    let letters: Vec<DeadLetter> = (0..25)
        .map(|i| DeadLetter {
            message_id: format!("m-{i:02}"),
            body: match i {
                3 | 4 => "y".repeat(200 * 1024),
                5 => "z".repeat(300 * 1024),
                _ => format!("{{\"n\": {i}}}"),
            },
            reason: "invalid-shape".to_owned(),
            detail: "d".repeat(5000),
        })
        .collect();
    let results = sink.send(&letters).await;
    assert_eq!(results.len(), 25);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let received = drain(&client, &url).await;
    assert_eq!(received.len(), 25);
    let truncated: Vec<&HashMap<String, String>> = received
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a.contains_key("hearth.truncated"))
        .collect();
    assert_eq!(truncated.len(), 1);
    assert_eq!(
        truncated[0]
            .get("hearth.source-message-id")
            .map(String::as_str),
        Some("m-05")
    );
    assert!(received.iter().all(|(_, a)| {
        a.get("hearth.detail")
            .is_some_and(|d| d.chars().count() == 1024)
    }));
}

#[tokio::test]
async fn a_missing_queue_fails_every_letter() {
    let config = config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let sink = SqsDeadLetterSink::from_client(
        client,
        "http://127.0.0.1:1/123456789012/no-such-queue".to_owned(),
    );
    let letter = DeadLetter {
        message_id: "m".to_owned(),
        body: "b".to_owned(),
        reason: "not-json".to_owned(),
        detail: String::new(),
    };
    let results = sink.send(&[letter.clone(), letter]).await;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_err));
}
