//! The [`DeadLetterSink`] contract.

use super::*;

/// The [`DeadLetterSink`] contract: every letter is accepted, one result per letter. Returns
/// the letters sent so the caller can check its backing queue.
pub async fn dead_letters(sink: &dyn DeadLetterSink) -> Vec<DeadLetter> {
    let letters = vec![
        DeadLetter {
            message_id: "m-1".to_owned(),
            body: "not json".to_owned(),
            reason: "not-json".to_owned(),
            detail: "expected value at line 1 column 1".to_owned(),
        },
        DeadLetter {
            message_id: "m-2".to_owned(),
            body: "{\"note\": \"ünïcode ✓\"}".to_owned(),
            reason: "missing-envelope".to_owned(),
            detail: "envelope field `topic` is missing".to_owned(),
        },
        DeadLetter {
            message_id: "m-3".to_owned(),
            body: "x".repeat(64 * 1024),
            reason: "oversize".to_owned(),
            detail: "too big".to_owned(),
        },
    ];
    let results = sink.send(&letters).await;
    assert_eq!(results.len(), letters.len(), "one result per letter");
    for result in results {
        ok(result, "dead letter");
    }
    assert!(sink.send(&[]).await.is_empty());
    letters
}
