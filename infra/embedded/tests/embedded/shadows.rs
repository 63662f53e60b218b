//! Device shadows.

use hearth_domain::shadow::{Sections, Shadow};
use serde_json::json;

use crate::{fresh, ok};

pub fn shadow(version: u64, power: &str) -> Shadow {
    let reported = match json!({ "power": power, "note": "ünïcode ✓" }) {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    };
    Shadow {
        state: Sections {
            desired: None,
            reported: Some(reported),
        },
        metadata: Sections::default(),
        version,
        timestamp: 1_700_000_000 + version,
        deleted_at: None,
    }
}

#[tokio::test]
async fn shadows_are_stored_replaced_and_deleted() {
    let (_dir, db) = fresh();
    let shadows = db.shadows();
    assert_eq!(ok(shadows.get("lamp-1").await, "get"), None);
    ok(shadows.put("lamp-1", &shadow(1, "on")).await, "put");
    ok(shadows.put("lamp-2", &shadow(7, "off")).await, "put");
    assert_eq!(
        ok(shadows.get("lamp-1").await, "get"),
        Some(shadow(1, "on"))
    );
    ok(shadows.put("lamp-1", &shadow(2, "off")).await, "put");
    assert_eq!(
        ok(shadows.get("lamp-1").await, "get"),
        Some(shadow(2, "off"))
    );
    assert!(ok(shadows.delete("lamp-1").await, "delete"));
    assert!(!ok(shadows.delete("lamp-1").await, "delete again"));
    assert_eq!(ok(shadows.get("lamp-1").await, "get"), None);
    assert_eq!(
        ok(shadows.get("lamp-2").await, "get"),
        Some(shadow(7, "off"))
    );
}
