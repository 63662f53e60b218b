use std::collections::HashSet;

use super::*;

/// Every unit CloudWatch's `MetricDatum.Unit` accepts.
const CLOUDWATCH_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks a line against the EMF specification's document structure: a JSON object whose
/// `_aws` has a numeric `Timestamp` and `CloudWatchMetrics` directives (namespace, dimension
/// sets of at most 30 keys, at most 100 metric definitions with a name and a CloudWatch unit),
/// every metric named present at the root as a number or an array of numbers, and every
/// dimension key as a string. Returns the problems found.
pub(crate) fn emf_problems(line: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if line.contains('\n') {
        problems.push("the document spans more than one line".to_owned());
    }
    let root: Value = match serde_json::from_str(line) {
        Ok(Value::Object(root)) => Value::Object(root),
        Ok(other) => return vec![format!("not a JSON object: {other}")],
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no _aws object at the root".to_owned()];
    };
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        problems.push("_aws.Timestamp is not a number of milliseconds".to_owned());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        problems.push("_aws.CloudWatchMetrics is not an array".to_owned());
        return problems;
    };
    for directive in directives {
        if directive
            .get("Namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(format!("directive without a namespace: {directive}"));
        }
        for set in directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let keys = set.as_array().map(Vec::as_slice).unwrap_or_default();
            if keys.len() > MAX_DIMENSIONS {
                problems.push(format!("{} dimension keys", keys.len()));
            }
            for key in keys {
                let present = key
                    .as_str()
                    .and_then(|k| root.get(k))
                    .is_some_and(Value::is_string);
                if !present {
                    problems.push(format!("dimension {key} is not a string at the root"));
                }
            }
        }
        if !directive.get("Dimensions").is_some_and(Value::is_array) {
            problems.push("directive without Dimensions".to_owned());
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if metrics.is_empty() || metrics.len() > MAX_METRICS {
            problems.push(format!("{} metric definitions", metrics.len()));
        }
        for metric in metrics {
            let Some(name) = metric.get("Name").and_then(Value::as_str) else {
                problems.push(format!("metric without a name: {metric}"));
                continue;
            };
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| CLOUDWATCH_UNITS.contains(&u))
            {
                problems.push(format!("metric {name} has unit {unit}"));
            }
            let numeric = match root.get(name) {
                Some(Value::Number(_)) => true,
                Some(Value::Array(values)) => values.iter().all(Value::is_number),
                _ => false,
            };
            if !numeric {
                problems.push(format!("metric {name} has no numeric value at the root"));
            }
        }
    }
    problems
}

fn emitter_for<const M: usize>(schema: &'static Schema<M>) -> Emitter<M> {
    Emitter::new(schema, "Hearth", vec!["hearth-state-processor".to_owned()])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_line_has_the_shape_the_specification_describes() {
    let emitter = emitter_for(&QUEUE_CONSUMER);
    let line = emitter
        .line(1_700_000_000_123, [10.0, 2.0, 1.0, 10.0, 1_500.0, 12.5])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(emf_problems(&line), Vec::<String>::new(), "{line}");
    let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        parsed,
        json!({
            "Function": "hearth-state-processor",
            "Messages": 10.0,
            "Failures": 2.0,
            "DeadLetters": 1.0,
            "BatchSize": 10.0,
            "OldestMessageAge": 1500.0,
            "Duration": 12.5,
            "_aws": {
                "Timestamp": 1_700_000_000_123_u64,
                "CloudWatchMetrics": [{
                    "Namespace": "Hearth",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "Messages", "Unit": "Count"},
                        {"Name": "Failures", "Unit": "Count"},
                        {"Name": "DeadLetters", "Unit": "Count"},
                        {"Name": "BatchSize", "Unit": "Count"},
                        {"Name": "OldestMessageAge", "Unit": "Milliseconds"},
                        {"Name": "Duration", "Unit": "Milliseconds"},
                    ],
                }],
            },
        })
    );
    let api = emitter_for(&HTTP_API);
    let line = api
        .line(1, [1.0, 0.0, 1.0, 3.0])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(emf_problems(&line), Vec::<String>::new(), "{line}");
}

#[test]
fn the_checker_finds_what_breaks_the_specification() {
    for (line, problem) in [
        (r#"{"Messages": 1}"#, "no _aws"),
        (
            r#"{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["Function"]], "Metrics": [{"Name": "Messages", "Unit": "Count"}]}]}, "Messages": 1}"#,
            "dimension",
        ),
        (
            r#"{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "Messages", "Unit": "Count"}]}]}, "Messages": "1"}"#,
            "numeric",
        ),
        (
            r#"{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "Messages", "Unit": "Counts"}]}]}, "Messages": 1}"#,
            "unit",
        ),
        (
            r#"{"_aws": {"CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "M"}]}]}, "M": [1, 2]}"#,
            "Timestamp",
        ),
    ] {
        let problems = emf_problems(line);
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "{line}: {problems:?}"
        );
    }
}

#[test]
fn units_are_cloudwatchs() {
    let units = [
        Unit::Seconds,
        Unit::Microseconds,
        Unit::Milliseconds,
        Unit::Bytes,
        Unit::Kilobytes,
        Unit::Megabytes,
        Unit::Gigabytes,
        Unit::Terabytes,
        Unit::Bits,
        Unit::Kilobits,
        Unit::Megabits,
        Unit::Gigabits,
        Unit::Terabits,
        Unit::Percent,
        Unit::Count,
        Unit::BytesPerSecond,
        Unit::KilobytesPerSecond,
        Unit::MegabytesPerSecond,
        Unit::GigabytesPerSecond,
        Unit::TerabytesPerSecond,
        Unit::BitsPerSecond,
        Unit::KilobitsPerSecond,
        Unit::MegabitsPerSecond,
        Unit::GigabitsPerSecond,
        Unit::TerabitsPerSecond,
        Unit::CountPerSecond,
        Unit::None,
    ];
    let spelled: HashSet<_> = units.iter().map(|u| u.as_str()).collect();
    assert_eq!(spelled, CLOUDWATCH_UNITS.into_iter().collect());
}

#[test]
fn schemas_outside_the_limits_are_refused() {
    const NAME: Metric = Metric::new("Messages", Unit::Count);
    assert_eq!(Schema::<1>::check(&[FUNCTION], &[NAME]), Ok(()));
    assert_eq!(Schema::<1>::check(&[], &[NAME]), Ok(()));
    assert!(Schema::<0>::check(&[FUNCTION], &[]).is_err());
    assert!(Schema::<101>::check(&[], &[NAME; 101]).is_err());
    let keys: &'static [&'static str] = &[
        "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13",
        "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25", "k26",
        "k27", "k28", "k29", "k30",
    ];
    assert!(Schema::<1>::check(keys, &[NAME]).is_err(), "31 keys");
    assert_eq!(Schema::<1>::check(&keys[..30], &[NAME]), Ok(()), "30 keys");
    for bad in ["", "_aws", "a\nb"] {
        assert!(
            Schema::<1>::check(&[], &[Metric::new(bad, Unit::Count)]).is_err(),
            "{bad:?}"
        );
    }
    let long: &'static str = "é".repeat(MAX_NAME_CHARS).leak();
    assert_eq!(
        Schema::<1>::check(&[], &[Metric::new(long, Unit::Count)]),
        Ok(())
    );
    let too_long: &'static str = "x".repeat(MAX_NAME_CHARS + 1).leak();
    assert!(Schema::<1>::check(&[], &[Metric::new(too_long, Unit::Count)]).is_err());
    assert!(
        Schema::<2>::check(&[], &[NAME, NAME]).is_err(),
        "duplicate metric"
    );
    assert!(
        Schema::<1>::check(&["Messages"], &[NAME]).is_err(),
        "a dimension named like a metric"
    );
}

#[test]
fn namespaces_dimension_values_and_numbers_are_checked() {
    for namespace in ["", ":Hearth", "Héarth", "   ", &"x".repeat(256)] {
        assert!(
            matches!(
                Emitter::new(&QUEUE_CONSUMER, namespace, vec!["f".to_owned()]),
                Err(MetricsError::Namespace(_))
            ),
            "{namespace:?}"
        );
    }
    assert!(Emitter::new(&QUEUE_CONSUMER, "Hearth/Staging 2", vec!["f".to_owned()]).is_ok());
    assert!(matches!(
        Emitter::new(&QUEUE_CONSUMER, "Hearth", vec![]),
        Err(MetricsError::DimensionCount {
            expected: 1,
            given: 0
        })
    ));
    for value in ["", " ", "a\tb", &"x".repeat(1025)] {
        assert!(
            matches!(
                Emitter::new(&QUEUE_CONSUMER, "Hearth", vec![value.to_owned()]),
                Err(MetricsError::DimensionValue {
                    key: "Function",
                    ..
                })
            ),
            "{value:?}"
        );
    }
    let emitter = emitter_for(&HTTP_API);
    assert_eq!(
        emitter.line(1, [1.0, f64::NAN, 0.0, 1.0]),
        Err(MetricsError::NotFinite("ServerErrors"))
    );
}

/// A writer that records each `write` call, to see that a line is written in one piece.
#[derive(Default)]
struct Calls(Vec<Vec<u8>>);

impl Write for Calls {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_line_is_written_whole_with_its_line_break() {
    let emitter = emitter_for(&HTTP_API);
    let mut out = Calls::default();
    emitter
        .emit_to(&mut out, 5, [1.0, 1.0, 0.0, 2.0])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.0.len(), 1, "one write");
    let text = String::from_utf8(out.0.concat()).unwrap_or_else(|e| panic!("{e}"));
    let line = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("no line break: {text}"));
    assert_eq!(emf_problems(line), Vec::<String>::new());
    let mut refused = Calls::default();
    assert!(
        emitter
            .emit_to(&mut refused, 5, [f64::INFINITY, 1.0, 0.0, 2.0])
            .is_err()
    );
    assert!(refused.0.is_empty(), "nothing written for a refused line");
}

#[test]
fn the_function_name_comes_from_lambda_or_the_fallback() {
    assert_eq!(
        name_or(Some("hearth-Api-1A2B".to_owned()), "hearth-api"),
        "hearth-Api-1A2B"
    );
    assert_eq!(name_or(Some(String::new()), "hearth-api"), "hearth-api");
    assert_eq!(name_or(None, "hearth-api"), "hearth-api");
}
