use super::*;
use proptest::prelude::*;
use serde_json::json;

fn obj(v: Value) -> Object {
    match v {
        Value::Object(o) => o,
        other => panic!("not an object: {other}"),
    }
}

fn request(v: Value) -> UpdateRequest {
    match UpdateRequest::from_value(v) {
        Ok(r) => r,
        Err(e) => panic!("request rejected: {e}"),
    }
}

fn apply(current: Option<&Shadow>, v: Value, now: u64) -> Result<UpdateOutcome, ShadowError> {
    Shadow::update(current, &request(v), now)
}

#[test]
fn first_update_creates_version_1_with_metadata() -> Result<(), ShadowError> {
    let out = apply(
        None,
        json!({"state": {"reported": {"power": "on", "level": 40}}, "clientToken": "c1"}),
        100,
    )?;
    assert_eq!(out.shadow.version, 1);
    assert_eq!(out.shadow.timestamp, 100);
    assert_eq!(
        out.shadow.state.reported,
        Some(obj(json!({"power": "on", "level": 40})))
    );
    assert_eq!(
        out.shadow.metadata.reported,
        Some(obj(
            json!({"power": {"timestamp": 100}, "level": {"timestamp": 100}})
        ))
    );
    assert_eq!(
        out.accepted,
        json!({
            "state": {"reported": {"power": "on", "level": 40}},
            "metadata": {"reported": {"power": {"timestamp": 100}, "level": {"timestamp": 100}}},
            "version": 1, "timestamp": 100, "clientToken": "c1"
        })
    );
    assert_eq!(out.documents.previous, None);
    assert_eq!(out.documents.current.version, 1);
    assert_eq!(out.delta, None, "a reported-only update publishes no delta");
    Ok(())
}

#[test]
fn desired_change_produces_delta_and_documents() -> Result<(), ShadowError> {
    let v1 = apply(
        None,
        json!({"state": {"reported": {"power": "off", "color": {"r": 1, "g": 2}}}}),
        10,
    )?;
    let v2 = apply(
        Some(&v1.shadow),
        json!({"state": {"desired": {"power": "on", "color": {"r": 1, "g": 9}}}, "version": 1}),
        20,
    )?;
    assert_eq!(v2.shadow.version, 2);
    assert_eq!(
        v2.shadow.delta(),
        Some(obj(json!({"power": "on", "color": {"g": 9}})))
    );
    let delta = v2.delta.ok_or(ShadowError::InvalidNode)?;
    assert_eq!(delta.state, obj(json!({"power": "on", "color": {"g": 9}})));
    assert_eq!(
        delta.metadata,
        obj(json!({"power": {"timestamp": 20}, "color": {"g": {"timestamp": 20}}}))
    );
    assert_eq!(delta.version, 2);
    assert_eq!(v2.documents.previous, Some(v1.shadow.snapshot()));
    assert_eq!(v2.documents.current, v2.shadow.snapshot());
    let doc = v2.shadow.document(Some("t"));
    assert_eq!(
        doc["state"]["delta"],
        json!({"power": "on", "color": {"g": 9}})
    );
    assert_eq!(doc["clientToken"], "t");
    Ok(())
}

#[test]
fn delta_message_only_names_fields_the_request_set() -> Result<(), ShadowError> {
    let v1 = apply(None, json!({"state": {"desired": {"a": 1, "b": 2}}}), 1)?;
    let v2 = apply(Some(&v1.shadow), json!({"state": {"desired": {"b": 3}}}), 2)?;
    assert_eq!(v2.shadow.delta(), Some(obj(json!({"a": 1, "b": 3}))));
    assert_eq!(v2.delta.map(|d| d.state), Some(obj(json!({"b": 3}))));
    Ok(())
}

#[test]
fn version_conflict_is_409() -> Result<(), ShadowError> {
    let v1 = apply(None, json!({"state": {"reported": {"a": 1}}}), 1)?;
    let err = apply(
        Some(&v1.shadow),
        json!({"state": {"reported": {"a": 2}}, "version": 5}),
        2,
    );
    assert_eq!(err, Err(ShadowError::VersionConflict));
    assert_eq!(ShadowError::VersionConflict.code(), 409);
    let ok = apply(
        Some(&v1.shadow),
        json!({"state": {"reported": {"a": 2}}, "version": 1}),
        2,
    )?;
    assert_eq!(ok.shadow.version, 2);
    Ok(())
}

#[test]
fn null_deletes_fields_and_sections() -> Result<(), ShadowError> {
    let v1 = apply(
        None,
        json!({"state": {"desired": {"a": 1, "n": {"x": 1}}, "reported": {"a": 1}}}),
        1,
    )?;
    let v2 = apply(
        Some(&v1.shadow),
        json!({"state": {"desired": {"n": {"x": null}}}}),
        2,
    )?;
    assert_eq!(v2.shadow.state.desired, Some(obj(json!({"a": 1}))));
    assert_eq!(
        v2.shadow.metadata.desired,
        Some(obj(json!({"a": {"timestamp": 1}})))
    );
    let v3 = apply(Some(&v2.shadow), json!({"state": {"desired": null}}), 3)?;
    assert_eq!(v3.shadow.state.desired, None);
    assert_eq!(v3.shadow.metadata.desired, None);
    assert_eq!(v3.shadow.state.reported, Some(obj(json!({"a": 1}))));
    assert_eq!(v3.accepted["state"], json!({"desired": null}));
    Ok(())
}

#[test]
fn arrays_replace_and_objects_merge() -> Result<(), ShadowError> {
    let v1 = apply(
        None,
        json!({"state": {"reported": {"colors": ["red", "green"], "cfg": {"a": 1, "b": 2}}}}),
        1,
    )?;
    let v2 = apply(
        Some(&v1.shadow),
        json!({"state": {"reported": {"colors": ["blue"], "cfg": {"b": 3}}}}),
        2,
    )?;
    assert_eq!(
        v2.shadow.state.reported,
        Some(obj(json!({"colors": ["blue"], "cfg": {"a": 1, "b": 3}})))
    );
    assert_eq!(
        v2.shadow.metadata.reported,
        Some(obj(json!({
            "colors": [{"timestamp": 2}],
            "cfg": {"a": {"timestamp": 1}, "b": {"timestamp": 2}}
        })))
    );
    Ok(())
}

#[test]
fn rejects_malformed_requests_with_aws_messages() {
    let cases: Vec<(&[u8], ShadowError)> = vec![
        (b"not json", ShadowError::InvalidJson),
        (
            b"{\"state\": {\"reported\": {\"a\": 1}}",
            ShadowError::InvalidJson,
        ),
        (b"\xff\xfe", ShadowError::UnsupportedEncoding),
        (b"{}", ShadowError::MissingState),
        (b"[1]", ShadowError::MissingState),
        (b"{\"state\": 1}", ShadowError::StateNotObject),
        (
            b"{\"state\": {\"desired\": 1}}",
            ShadowError::DesiredNotObject,
        ),
        (
            b"{\"state\": {\"reported\": [1]}}",
            ShadowError::ReportedNotObject,
        ),
        (b"{\"state\": {\"delta\": {}}}", ShadowError::InvalidNode),
        (b"{\"state\": {}}", ShadowError::InvalidNode),
        (
            b"{\"state\": {\"reported\": {}}, \"version\": -1}",
            ShadowError::InvalidVersion,
        ),
        (
            b"{\"state\": {\"reported\": {}}, \"version\": \"3\"}",
            ShadowError::InvalidVersion,
        ),
        (
            b"{\"state\": {\"reported\": {}}, \"clientToken\": 7}",
            ShadowError::InvalidClientToken,
        ),
    ];
    for (payload, expected) in cases {
        assert_eq!(
            UpdateRequest::parse(payload),
            Err(expected.clone()),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
    let long_token = "x".repeat(MAX_CLIENT_TOKEN_BYTES + 1);
    let payload = json!({"state": {"reported": {}}, "clientToken": long_token}).to_string();
    assert_eq!(
        UpdateRequest::parse(payload.as_bytes()),
        Err(ShadowError::InvalidClientToken)
    );
}

#[test]
fn enforces_nesting_limit() {
    let six = json!({"state": {"reported": {"a": {"b": {"c": {"d": {"e": 1}}}}}}});
    assert!(UpdateRequest::from_value(six).is_ok());
    let six_with_array = json!({"state": {"reported": {"a": {"b": {"c": {"d": {"e": [1]}}}}}}});
    assert!(UpdateRequest::from_value(six_with_array).is_ok());
    let seven = json!({"state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": [1]}}}}}}}});
    let err = UpdateRequest::from_value(seven);
    assert_eq!(err, Err(ShadowError::TooDeep));
    assert_eq!(ShadowError::TooDeep.code(), 400);
}

#[test]
fn enforces_size_limits() -> Result<(), ShadowError> {
    let big = "x".repeat(MAX_STATE_BYTES / 2);
    let v1 = apply(None, json!({"state": {"reported": {"a": big}}}), 1)?;
    let err = apply(
        Some(&v1.shadow),
        json!({"state": {"desired": {"b": big}}}),
        2,
    );
    assert_eq!(err, Err(ShadowError::PayloadTooLarge));
    assert_eq!(ShadowError::PayloadTooLarge.code(), 413);
    let huge = vec![b' '; MAX_REQUEST_BYTES + 1];
    assert_eq!(
        UpdateRequest::parse(&huge),
        Err(ShadowError::PayloadTooLarge)
    );
    Ok(())
}

#[test]
fn delete_reports_the_deleted_version_or_404() -> Result<(), ShadowError> {
    let v1 = apply(None, json!({"state": {"reported": {"a": 1}}}), 1)?;
    let v2 = apply(
        Some(&v1.shadow),
        json!({"state": {"reported": {"a": 2}}}),
        2,
    )?;
    let deleted = Shadow::delete(Some(&v2.shadow), "lamp", Some("tok".into()), 3)?;
    assert_eq!(
        serde_json::to_value(&deleted).ok(),
        Some(json!({"version": 2, "timestamp": 3, "clientToken": "tok"}))
    );
    let missing = Shadow::delete(None, "lamp", None, 3);
    assert_eq!(missing, Err(ShadowError::NotFound("lamp".into())));
    let rejected = ShadowError::NotFound("lamp".into()).response(3, None);
    assert_eq!(rejected.code, 404);
    assert_eq!(rejected.message, "No shadow exists with name: 'lamp'");
    Ok(())
}

#[test]
fn a_recreated_shadow_continues_its_version_within_48_hours() -> Result<(), ShadowError> {
    let v1 = apply(None, json!({"state": {"reported": {"a": 1}}}), 1_000)?;
    let v2 = apply(
        Some(&v1.shadow),
        json!({"state": {"reported": {"a": 2}}}),
        1_001,
    )?;
    let tombstone = v2.shadow.tombstone(1_002);
    assert!(!tombstone.is_live());
    assert_eq!(
        Shadow::delete(Some(&tombstone), "t", None, 1_003),
        Err(ShadowError::NotFound("t".into())),
        "a deleted shadow cannot be deleted again"
    );
    let soon = apply(
        Some(&tombstone),
        json!({"state": {"reported": {"b": 1}}}),
        2_000,
    )?;
    assert_eq!(soon.shadow.version, 3, "within 48 h the version continues");
    assert_eq!(
        soon.shadow.state.reported,
        Some(obj(json!({"b": 1}))),
        "but the state is new"
    );
    assert_eq!(soon.documents.previous, None);
    let late = apply(
        Some(&tombstone),
        json!({"state": {"reported": {"b": 1}}}),
        1_002 + VERSION_MEMORY_SECS + 1,
    )?;
    assert_eq!(late.shadow.version, 1, "after 48 h versions start again");
    Ok(())
}

#[test]
fn documents_message_round_trips_aws_json() {
    // The shape AWS publishes on update/documents (previous is absent for a new shadow).
    let text = r#"{
        "previous": {"state": {"desired": {"power": "on"}}, "metadata": {"desired": {"power": {"timestamp": 1}}}, "version": 1},
        "current": {"state": {"desired": {"power": "on"}, "reported": {"power": "on"}},
                    "metadata": {"desired": {"power": {"timestamp": 1}}, "reported": {"power": {"timestamp": 2}}}, "version": 2},
        "timestamp": 2, "clientToken": "abc"
    }"#;
    let parsed: Result<DocumentsMessage, _> = serde_json::from_str(text);
    let Ok(msg) = parsed else {
        panic!("documents message did not parse: {parsed:?}")
    };
    assert_eq!(msg.current.version, 2);
    assert_eq!(msg.previous.map(|p| p.version), Some(1));
    let created: Result<DocumentsMessage, _> = serde_json::from_str(
        r#"{"previous": null, "current": {"state": {"reported": {}}, "version": 1}, "timestamp": 5}"#,
    );
    assert!(created.is_ok_and(|m| m.previous.is_none()));
}

// ---- property tests ----

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (0i64..4).prop_map(Value::from),
        prop::sample::select(vec!["on", "off"]).prop_map(Value::from),
        prop::collection::vec(0i64..3, 0..3).prop_map(Value::from),
    ]
}

/// Objects without nulls, up to three levels deep.
fn state_object() -> impl Strategy<Value = Object> {
    let value = leaf().prop_recursive(3, 16, 4, |inner| {
        prop::collection::btree_map(key(), inner, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    });
    prop::collection::btree_map(key(), value, 0..4).prop_map(|m| m.into_iter().collect())
}

/// Update objects: like state objects, with nulls (deletions) allowed.
fn update_object() -> impl Strategy<Value = Object> {
    let value =
        prop_oneof![1 => Just(Value::Null), 4 => leaf()].prop_recursive(3, 16, 4, |inner| {
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        });
    prop::collection::btree_map(key(), value, 1..4).prop_map(|m| m.into_iter().collect())
}

fn section() -> impl Strategy<Value = SectionUpdate> {
    prop_oneof![
        1 => Just(SectionUpdate::Absent),
        1 => Just(SectionUpdate::Clear),
        6 => update_object().prop_map(SectionUpdate::Merge),
    ]
}

fn update_request() -> impl Strategy<Value = UpdateRequest> {
    (section(), section())
        .prop_filter("at least one section", |(d, r)| {
            *d != SectionUpdate::Absent || *r != SectionUpdate::Absent
        })
        .prop_map(|(desired, reported)| UpdateRequest {
            desired,
            reported,
            ..UpdateRequest::default()
        })
}

/// Every leaf path of `state` has a `{"timestamp": n}` in `meta`, and `meta` has nothing else.
fn metadata_mirrors(state: &Object, meta: &Object) -> bool {
    state.len() == meta.len()
        && state.iter().all(|(k, v)| match (v, meta.get(k)) {
            (Value::Object(s), Some(Value::Object(m))) => metadata_mirrors(s, m),
            (Value::Array(a), Some(Value::Array(m))) => a.len() == m.len(),
            (Value::Object(_) | Value::Array(_), _) => false,
            (_, Some(Value::Object(m))) => m.get("timestamp").is_some_and(Value::is_u64),
            _ => false,
        })
}

fn contains_null(o: &Object) -> bool {
    o.values().any(|v| match v {
        Value::Null => true,
        Value::Object(o) => contains_null(o),
        _ => false,
    })
}

proptest! {
    #[test]
    fn updates_keep_the_shadow_well_formed(requests in prop::collection::vec(update_request(), 1..8)) {
        let mut shadow: Option<Shadow> = None;
        for (i, req) in requests.iter().enumerate() {
            let now = 1_000 + i as u64;
            let before = shadow.as_ref().map_or(0, |s| s.version);
            match Shadow::update(shadow.as_ref(), req, now) {
                Ok(out) => {
                    prop_assert_eq!(out.shadow.version, before + 1);
                    prop_assert_eq!(out.documents.current.version, before + 1);
                    prop_assert_eq!(out.documents.previous.map(|p| p.version), shadow.as_ref().map(|s| s.version));
                    for (state, meta) in [
                        (&out.shadow.state.desired, &out.shadow.metadata.desired),
                        (&out.shadow.state.reported, &out.shadow.metadata.reported),
                    ] {
                        prop_assert_eq!(state.is_some(), meta.is_some());
                        if let (Some(s), Some(m)) = (state, meta) {
                            prop_assert!(!contains_null(s), "nulls are never stored");
                            prop_assert!(metadata_mirrors(s, m), "metadata {:?} for {:?}", m, s);
                        }
                    }
                    prop_assert!(out.shadow.state_bytes() <= MAX_STATE_BYTES);
                    shadow = Some(out.shadow);
                }
                Err(e) => prop_assert_eq!(e, ShadowError::PayloadTooLarge),
            }
        }
    }

    #[test]
    fn merged_fields_read_back(current in state_object(), update in state_object()) {
        let first = Shadow::update(None, &UpdateRequest { reported: SectionUpdate::Merge(current), ..Default::default() }, 1);
        prop_assume!(first.is_ok());
        let Ok(first) = first else { unreachable!() };
        let second = Shadow::update(Some(&first.shadow), &UpdateRequest { reported: SectionUpdate::Merge(update.clone()), ..Default::default() }, 2);
        let Ok(second) = second else { return Ok(()) };
        let reported = second.shadow.state.reported.unwrap_or_default();
        // Every scalar or array the update set is now what it set; objects merged recursively.
        fn check(update: &Object, have: &Object) -> bool {
            update.iter().all(|(k, v)| match (v, have.get(k)) {
                (Value::Object(u), Some(Value::Object(h))) => check(u, h),
                (v, Some(h)) => v == h,
                (_, None) => false,
            })
        }
        prop_assert!(check(&update, &reported));
    }

    #[test]
    fn delta_is_exactly_the_unreported_desire(desired in state_object(), reported in state_object()) {
        let d = delta(&desired, Some(&reported));
        // Every delta leaf is desired and differs from reported.
        fn leaves_ok(d: &Object, desired: &Object, reported: Option<&Object>) -> bool {
            d.iter().all(|(k, v)| {
                let want = desired.get(k);
                let have = reported.and_then(|r| r.get(k));
                match (v, want, have) {
                    (Value::Object(dv), Some(Value::Object(w)), Some(Value::Object(h))) => !dv.is_empty() && leaves_ok(dv, w, Some(h)),
                    (v, Some(w), have) => v == w && have != Some(w),
                    _ => false,
                }
            })
        }
        prop_assert!(leaves_ok(&d, &desired, Some(&reported)));
        // Reporting the delta leaves nothing to do.
        let mut merged = reported;
        let mut meta = Object::new();
        merge(&mut merged, &mut meta, &d, 1);
        prop_assert!(delta(&desired, Some(&merged)).is_empty());
        // Reporting exactly what is desired also leaves nothing to do.
        prop_assert!(delta(&desired, Some(&desired)).is_empty());
    }

    #[test]
    fn applying_the_same_update_twice_changes_only_version(update in update_request(), base in state_object()) {
        let seed = UpdateRequest { reported: SectionUpdate::Merge(base.clone()), desired: SectionUpdate::Merge(base), ..Default::default() };
        let Ok(seeded) = Shadow::update(None, &seed, 1) else { return Ok(()) };
        let Ok(once) = Shadow::update(Some(&seeded.shadow), &update, 2) else { return Ok(()) };
        let Ok(twice) = Shadow::update(Some(&once.shadow), &update, 2) else { return Ok(()) };
        prop_assert_eq!(&once.shadow.state, &twice.shadow.state);
        prop_assert_eq!(twice.shadow.version, once.shadow.version + 1);
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = UpdateRequest::parse(&bytes);
    }
}
