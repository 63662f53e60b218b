//! Topic-filter matching: cases, and a property test against a reference implementation.

use hearth_iot_rules::sql::TopicFilter;
use proptest::prelude::*;

fn filter(text: &str) -> TopicFilter {
    match TopicFilter::parse(text) {
        Ok(filter) => filter,
        Err(e) => panic!("`{text}` does not parse: {e}"),
    }
}

#[test]
fn wildcards() {
    for (f, topic, expected) in [
        ("a/b", "a/b", true),
        ("a/b", "a/c", false),
        ("a/b", "a/b/c", false),
        ("a/b", "a", false),
        ("a/+", "a/b", true),
        ("a/+", "a/", true),
        ("a/+", "a", false),
        ("a/+", "a/b/c", false),
        ("+/+", "a/b", true),
        ("+", "/", false),
        ("+/+", "/", true),
        ("a/#", "a/b", true),
        ("a/#", "a/b/c", true),
        ("a/#", "a", true),
        ("a/#", "ab", false),
        ("a/#", "b/a", false),
        ("#", "a/b/c", true),
        ("#", "", true),
        ("a/+/c/#", "a/b/c", true),
        ("a/+/c/#", "a/b/d/e", false),
        ("dt/+/+/telemetry", "dt/p/t1/telemetry", true),
        ("dt/+/+/telemetry", "dt/p/telemetry", false),
        (
            "$aws/things/+/shadow/update/documents",
            "$aws/things/lamp-1/shadow/update/documents",
            true,
        ),
        // MQTT: a filter starting with a wildcard does not match a `$` topic.
        ("#", "$aws/things/x", false),
        ("+/things/#", "$aws/things/x", false),
        ("$aws/#", "$aws/things/x", true),
    ] {
        assert_eq!(
            filter(f).matches(topic),
            expected,
            "`{f}` against `{topic}`"
        );
    }
}

#[test]
fn malformed_filters_are_refused() {
    for text in ["", "a/#/b", "a#", "a/b+", "+a", "#/a", "a/\0"] {
        assert!(TopicFilter::parse(text).is_err(), "`{text}` parsed");
    }
}

/// The definition, level by level (MQTT 3.1.1 §4.7).
fn reference(filter: &[&str], topic: &[&str]) -> bool {
    match (filter.split_first(), topic.split_first()) {
        (Some((&"#", _)), _) => true,
        (Some((&"+", f)), Some((_, t))) => reference(f, t),
        (Some((level, f)), Some((segment, t))) => level == segment && reference(f, t),
        (None, None) => true,
        _ => false,
    }
}

fn reference_matches(filter: &str, topic: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    if topic.starts_with('$') && matches!(levels.first(), Some(&"+" | &"#")) {
        return false;
    }
    reference(&levels, &topic.split('/').collect::<Vec<_>>())
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just(String::new()),
        Just("$aws".to_owned()),
        "[a-c]{1,3}",
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..6).prop_map(|levels| levels.join("/"))
}

fn filter_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![segment(), Just("+".to_owned()), Just("+".to_owned())],
            0..6,
        ),
        any::<bool>(),
    )
        .prop_filter_map("a filter has a level", |(mut levels, hash)| {
            if hash {
                levels.push("#".to_owned());
            }
            let text = levels.join("/");
            (!text.is_empty()).then_some(text)
        })
}

proptest! {
    #[test]
    fn matching_agrees_with_the_reference(f in filter_text(), t in topic()) {
        let parsed = filter(&f);
        prop_assert_eq!(parsed.matches(&t), reference_matches(&f, &t), "`{}` against `{}`", f, t);
    }

    #[test]
    fn a_filter_matches_the_topics_it_describes(t in topic(), mask in prop::collection::vec(any::<bool>(), 6), cut in 0usize..6) {
        // Replace some levels of a topic with `+`, maybe cut it with `#`: it must still match
        // (unless a leading wildcard meets a `$` topic).
        let levels: Vec<&str> = t.split('/').collect();
        let mut f: Vec<&str> = levels
            .iter()
            .zip(mask.iter().chain(std::iter::repeat(&false)))
            .map(|(level, wild)| if *wild { "+" } else { *level })
            .collect();
        if cut < f.len() {
            f.truncate(cut);
            f.push("#");
        }
        let f = f.join("/");
        prop_assume!(!f.is_empty());
        let expected = !(t.starts_with('$') && (f.starts_with('+') || f.starts_with('#')));
        prop_assert_eq!(filter(&f).matches(&t), expected, "`{}` against `{}`", f, t);
    }
}
