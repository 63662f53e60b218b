//! CloudWatch metrics in the Embedded Metric Format (EMF): a function writes one JSON line per
//! invocation to stdout, and CloudWatch Logs extracts the metrics it declares — no API call, no
//! extra latency, no IAM permission beyond writing logs.
//!
//! A line is a JSON object whose `_aws` member holds the metadata (`Timestamp` in milliseconds
//! and one metric directive: `Namespace`, one dimension set, the metrics' names and units) and
//! whose other members are the dimension values (strings) and the metric values (numbers), as
//! the EMF specification lays out.
//!
//! What a function emits is a [`Schema`], declared in a `const`: its dimension keys and its
//! metrics with their [`Unit`]s. The specification's limits (at most 100 metrics and 30
//! dimensions per directive, names of 1–1024 characters, distinct, units from CloudWatch's
//! list) are checked when the `const` is evaluated, so a schema that breaks them does not
//! build. The namespace and the dimension values come at run time and are checked by
//! [`Emitter::new`].
//!
//! This crate only formats and writes: no AWS SDK, no async, no clock (the caller passes the
//! timestamp). It must never write anything but whole lines, one `write_all` each, so that an
//! EMF line is never interleaved with other output.

use std::io::Write;

use serde_json::{Map, Number, Value, json};

/// Most metrics in one directive (the EMF specification).
pub const MAX_METRICS: usize = 100;
/// Most dimension keys in one dimension set (the EMF specification).
pub const MAX_DIMENSIONS: usize = 30;
/// Longest metric name or dimension key, in characters.
pub const MAX_NAME_CHARS: usize = 1024;
/// Longest dimension value, in characters (CloudWatch's `Dimension`).
pub const MAX_DIMENSION_VALUE_CHARS: usize = 1024;
/// Longest namespace, in characters (CloudWatch's `Namespace`).
pub const MAX_NAMESPACE_CHARS: usize = 255;
/// The environment variable that names the namespace.
pub const NAMESPACE_VARIABLE: &str = "HEARTH_METRICS_NAMESPACE";
/// The namespace when [`NAMESPACE_VARIABLE`] is not set.
pub const DEFAULT_NAMESPACE: &str = "Hearth";

/// A CloudWatch unit: every value `MetricDatum.Unit` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // The variants are CloudWatch's units, named as it names them.
pub enum Unit {
    Seconds,
    Microseconds,
    Milliseconds,
    Bytes,
    Kilobytes,
    Megabytes,
    Gigabytes,
    Terabytes,
    Bits,
    Kilobits,
    Megabits,
    Gigabits,
    Terabits,
    Percent,
    Count,
    BytesPerSecond,
    KilobytesPerSecond,
    MegabytesPerSecond,
    GigabytesPerSecond,
    TerabytesPerSecond,
    BitsPerSecond,
    KilobitsPerSecond,
    MegabitsPerSecond,
    GigabitsPerSecond,
    TerabitsPerSecond,
    CountPerSecond,
    None,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "Seconds",
            Self::Microseconds => "Microseconds",
            Self::Milliseconds => "Milliseconds",
            Self::Bytes => "Bytes",
            Self::Kilobytes => "Kilobytes",
            Self::Megabytes => "Megabytes",
            Self::Gigabytes => "Gigabytes",
            Self::Terabytes => "Terabytes",
            Self::Bits => "Bits",
            Self::Kilobits => "Kilobits",
            Self::Megabits => "Megabits",
            Self::Gigabits => "Gigabits",
            Self::Terabits => "Terabits",
            Self::Percent => "Percent",
            Self::Count => "Count",
            Self::BytesPerSecond => "Bytes/Second",
            Self::KilobytesPerSecond => "Kilobytes/Second",
            Self::MegabytesPerSecond => "Megabytes/Second",
            Self::GigabytesPerSecond => "Gigabytes/Second",
            Self::TerabytesPerSecond => "Terabytes/Second",
            Self::BitsPerSecond => "Bits/Second",
            Self::KilobitsPerSecond => "Kilobits/Second",
            Self::MegabitsPerSecond => "Megabits/Second",
            Self::GigabitsPerSecond => "Gigabits/Second",
            Self::TerabitsPerSecond => "Terabits/Second",
            Self::CountPerSecond => "Count/Second",
            Self::None => "None",
        }
    }
}

/// One metric: its name (the root member that carries its value) and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The metric's name.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
}

impl Metric {
    /// A metric.
    pub const fn new(name: &'static str, unit: Unit) -> Self {
        Self { name, unit }
    }
}

/// What a function emits: its dimension keys and its `M` metrics. Declare it in a `const`
/// ([`Schema::new`] panics on a violation of the specification's limits, which in a `const`
/// fails the build).
///
/// ```
/// use hearth_metrics::{Metric, Schema, Unit};
/// const SENT: Schema<1> = Schema::new(&["Function"], [Metric::new("Sent", Unit::Count)]);
/// ```
///
/// A schema whose names collide (or that breaks another limit) does not compile:
///
/// ```compile_fail
/// use hearth_metrics::{Metric, Schema, Unit};
/// const SENT: Schema<1> = Schema::new(&["Sent"], [Metric::new("Sent", Unit::Count)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema<const M: usize> {
    dimensions: &'static [&'static str],
    metrics: [Metric; M],
}

impl<const M: usize> Schema<M> {
    /// A schema, checked against the specification's limits: 1–100 metrics, at most 30
    /// dimension keys, every name and key 1–1024 characters with no control character, all of
    /// them distinct and none `_aws`.
    ///
    /// # Panics
    /// On a violation, naming it: in a `const`, that is a build error.
    pub const fn new(dimensions: &'static [&'static str], metrics: [Metric; M]) -> Self {
        match Self::check(dimensions, &metrics) {
            Ok(()) => Self {
                dimensions,
                metrics,
            },
            Err(reason) => panic!("{}", reason),
        }
    }

    const fn check(dimensions: &[&'static str], metrics: &[Metric; M]) -> Result<(), &'static str> {
        if M == 0 {
            return Err("an EMF directive needs at least one metric");
        }
        if M > MAX_METRICS {
            return Err("an EMF directive has at most 100 metrics");
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err("an EMF dimension set has at most 30 dimension keys");
        }
        // Every member name the line will carry at the root: dimension keys, then metrics.
        let count = dimensions.len() + M;
        let mut i = 0;
        while i < count {
            let name = Self::member(dimensions, metrics, i);
            if let Err(reason) = check_name(name) {
                return Err(reason);
            }
            if str_eq(name, "_aws") {
                return Err("a metric or dimension cannot be named _aws");
            }
            let mut j = i + 1;
            while j < count {
                if str_eq(name, Self::member(dimensions, metrics, j)) {
                    return Err("metric names and dimension keys must be distinct");
                }
                j += 1;
            }
            i += 1;
        }
        Ok(())
    }

    const fn member(dimensions: &[&'static str], metrics: &[Metric; M], i: usize) -> &'static str {
        if i < dimensions.len() {
            dimensions[i]
        } else {
            metrics[i - dimensions.len()].name
        }
    }

    /// The dimension keys.
    pub fn dimensions(&self) -> &'static [&'static str] {
        self.dimensions
    }

    /// The metrics, in the order [`Emitter::line`] takes their values.
    pub fn metrics(&self) -> &[Metric; M] {
        &self.metrics
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A metric name or dimension key: 1–1024 characters, no control character.
const fn check_name(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("a metric name or dimension key must not be empty");
    }
    let mut chars = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Count characters as the bytes that start one (not UTF-8 continuation bytes).
        if b & 0xC0 != 0x80 {
            chars += 1;
        }
        if b < 0x20 || b == 0x7F {
            return Err("a metric name or dimension key must not contain control characters");
        }
        i += 1;
    }
    if chars > MAX_NAME_CHARS {
        return Err("a metric name or dimension key has at most 1024 characters");
    }
    Ok(())
}

/// The dimension every Hearth function emits: its name.
pub const FUNCTION: &str = "Function";

/// Messages (queue records) an invocation received.
pub const MESSAGES: Metric = Metric::new("Messages", Unit::Count);
/// Messages reported for retry (an SQS partial batch response's failures).
pub const FAILURES: Metric = Metric::new("Failures", Unit::Count);
/// Messages sent to a dead-letter queue.
pub const DEAD_LETTERS: Metric = Metric::new("DeadLetters", Unit::Count);
/// Records in the batch (the same count as `Messages`, kept apart so that its average and
/// maximum read as batch fill while `Messages` is summed as throughput).
pub const BATCH_SIZE: Metric = Metric::new("BatchSize", Unit::Count);
/// How long the batch's oldest message had waited since it was sent to the queue.
pub const OLDEST_MESSAGE_AGE: Metric = Metric::new("OldestMessageAge", Unit::Milliseconds);
/// How long the handler took.
pub const DURATION: Metric = Metric::new("Duration", Unit::Milliseconds);
/// HTTP requests served.
pub const REQUESTS: Metric = Metric::new("Requests", Unit::Count);
/// Responses with a 5xx status.
pub const SERVER_ERRORS: Metric = Metric::new("ServerErrors", Unit::Count);
/// Responses with a 4xx status.
pub const CLIENT_ERRORS: Metric = Metric::new("ClientErrors", Unit::Count);

/// A function consuming a queue, per invocation: `Messages`, `Failures`, `DeadLetters`,
/// `BatchSize`, `OldestMessageAge`, `Duration`, by `Function`.
pub const QUEUE_CONSUMER: Schema<6> = Schema::new(
    &[FUNCTION],
    [
        MESSAGES,
        FAILURES,
        DEAD_LETTERS,
        BATCH_SIZE,
        OLDEST_MESSAGE_AGE,
        DURATION,
    ],
);

/// An HTTP API function, per request: `Requests`, `ServerErrors`, `ClientErrors`, `Duration`,
/// by `Function`.
pub const HTTP_API: Schema<4> = Schema::new(
    &[FUNCTION],
    [REQUESTS, SERVER_ERRORS, CLIENT_ERRORS, DURATION],
);

/// The function's name for the [`FUNCTION`] dimension: Lambda's `AWS_LAMBDA_FUNCTION_NAME`
/// (the deployed name, so stacks stay apart), `fallback` (the binary's name) outside Lambda.
pub fn function_name(fallback: &str) -> String {
    name_or(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(), fallback)
}

fn name_or(lambda: Option<String>, fallback: &str) -> String {
    lambda
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// A namespace, a dimension value or a metric value that CloudWatch would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The namespace is not 1–255 printable ASCII characters, or starts with `:`.
    #[error(
        "invalid metrics namespace {0:?}: 1-255 printable ASCII characters, not starting with ':'"
    )]
    Namespace(String),
    /// A dimension value is not 1–1024 printable ASCII characters with one that is not a space.
    #[error(
        "invalid value {value:?} of dimension {key}: 1-1024 printable ASCII characters, not blank"
    )]
    DimensionValue {
        /// The dimension key.
        key: &'static str,
        /// The refused value.
        value: String,
    },
    /// The emitter got a different number of dimension values than the schema has keys.
    #[error("{given} dimension value(s) for {expected} dimension key(s)")]
    DimensionCount {
        /// Keys in the schema.
        expected: usize,
        /// Values given.
        given: usize,
    },
    /// A metric value is not a finite number (JSON has no NaN or infinity).
    #[error("metric {0} is not a finite number")]
    NotFinite(&'static str),
}

/// The namespace from [`NAMESPACE_VARIABLE`], [`DEFAULT_NAMESPACE`] when it is not set.
pub fn namespace_from_env() -> Result<String, MetricsError> {
    let namespace =
        std::env::var(NAMESPACE_VARIABLE).unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    check_namespace(&namespace)?;
    Ok(namespace)
}

fn check_namespace(namespace: &str) -> Result<(), MetricsError> {
    let printable = namespace.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if printable
        && (1..=MAX_NAMESPACE_CHARS).contains(&namespace.len())
        && !namespace.starts_with(':')
        && !namespace.trim().is_empty()
    {
        Ok(())
    } else {
        Err(MetricsError::Namespace(namespace.to_owned()))
    }
}

/// Formats and writes the EMF lines of one [`Schema`] with a fixed namespace and dimension
/// values (a function's: built once per process).
#[derive(Debug, Clone)]
pub struct Emitter<const M: usize> {
    schema: &'static Schema<M>,
    namespace: String,
    dimensions: Vec<(&'static str, String)>,
}

impl<const M: usize> Emitter<M> {
    /// An emitter for `schema` in `namespace`, with one value per dimension key, in the
    /// schema's order.
    pub fn new(
        schema: &'static Schema<M>,
        namespace: impl Into<String>,
        dimension_values: Vec<String>,
    ) -> Result<Self, MetricsError> {
        let namespace = namespace.into();
        check_namespace(&namespace)?;
        if dimension_values.len() != schema.dimensions.len() {
            return Err(MetricsError::DimensionCount {
                expected: schema.dimensions.len(),
                given: dimension_values.len(),
            });
        }
        let dimensions = schema
            .dimensions
            .iter()
            .zip(dimension_values)
            .map(|(&key, value)| {
                let printable = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
                if printable
                    && (1..=MAX_DIMENSION_VALUE_CHARS).contains(&value.len())
                    && !value.trim().is_empty()
                {
                    Ok((key, value))
                } else {
                    Err(MetricsError::DimensionValue { key, value })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            schema,
            namespace,
            dimensions,
        })
    }

    /// The EMF document for one observation: `values` in the order of the schema's metrics,
    /// `timestamp_ms` in milliseconds since the epoch.
    pub fn document(&self, timestamp_ms: u64, values: [f64; M]) -> Result<Value, MetricsError> {
        let mut root = Map::new();
        for (key, value) in &self.dimensions {
            root.insert((*key).to_owned(), Value::String(value.clone()));
        }
        for (metric, value) in self.schema.metrics.iter().zip(values) {
            let number = Number::from_f64(value).ok_or(MetricsError::NotFinite(metric.name))?;
            root.insert(metric.name.to_owned(), Value::Number(number));
        }
        let metrics: Vec<Value> = self
            .schema
            .metrics
            .iter()
            .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [self.schema.dimensions],
                    "Metrics": metrics,
                }],
            }),
        );
        Ok(Value::Object(root))
    }

    /// The document as one line (compact JSON, no line break).
    pub fn line(&self, timestamp_ms: u64, values: [f64; M]) -> Result<String, MetricsError> {
        self.document(timestamp_ms, values).map(|d| d.to_string())
    }

    /// Writes the line and its `\n` to `out` in one `write_all`.
    pub fn emit_to(
        &self,
        out: &mut (impl Write + ?Sized),
        timestamp_ms: u64,
        values: [f64; M],
    ) -> Result<(), EmitError> {
        let mut line = self.line(timestamp_ms, values)?;
        line.push('\n');
        out.write_all(line.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// Writes the line to stdout (where Lambda sends it to CloudWatch Logs), see [`Stdout`].
    pub fn emit(&self, timestamp_ms: u64, values: [f64; M]) -> Result<(), EmitError> {
        self.emit_to(&mut Stdout, timestamp_ms, values)
    }
}

/// The process's stdout as the production writer: each `write_all` takes the stdout lock once
/// and writes its whole buffer under it, so a line never interleaves with another thread's
/// output (a log line, say).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        std::io::stdout().lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().lock().flush()
    }
}

/// Why a line was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// A value CloudWatch would refuse.
    #[error(transparent)]
    Invalid(#[from] MetricsError),
    /// The writer failed.
    #[error("writing the metrics line: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests;
