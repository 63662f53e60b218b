//! Every sample event in `events/state-processor/` (the files `sam local invoke` and
//! `cargo lambda invoke --data-file` use) runs through the handler.

use std::path::Path;

use aws_lambda_events::event::sqs::SqsEvent;

use crate::support::World;

/// Expected (dead-lettered, devices written) per file.
fn expected(name: &str) -> (usize, usize) {
    match name {
        "poison.json" => (2, 1),
        "mixed-batch.json" => (0, 3),
        _ => (0, 1),
    }
}

#[tokio::test]
async fn every_sample_event_is_handled() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/state-processor");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "sample events missing: {files:?}");
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let event: SqsEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let world = World::default();
        let (retry, summary) = world.run(&event).await;
        assert!(retry.is_empty(), "{name}: {retry:?}");
        assert_eq!(
            (summary.dead_lettered, summary.devices),
            expected(&name),
            "{name}"
        );
        assert_eq!(summary.ignored, 0, "{name}");
        for record in &event.records {
            let body: serde_json::Value = match record.body.as_deref().map(serde_json::from_str) {
                Some(Ok(v)) => v,
                _ => continue,
            };
            if let Some(thing) = body.get("thing").and_then(|t| t.as_str()) {
                if body
                    .get("topic")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.starts_with("cmd/"))
                {
                    continue;
                }
                assert!(
                    !world.state(thing).await.is_empty(),
                    "{name}: no state for {thing}"
                );
            }
        }
    }
}
