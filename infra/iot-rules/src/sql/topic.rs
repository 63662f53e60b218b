//! MQTT topic filters (the FROM clause) and Basic Ingest topics.

use super::SqlError;

/// The topic prefix of AWS IoT Basic Ingest: `$aws/rules/<rule name>/<topic>`.
pub(crate) const BASIC_INGEST_PREFIX: &str = "$aws/rules/";

/// Splits a Basic Ingest topic into the rule name and the topic the rule sees.
///
/// AWS IoT removes `$aws/rules/<rule name>/` before the rule runs, so `topic()` and `topic(n)`
/// never see the prefix. `None` when `topic` is not a Basic Ingest topic.
pub(crate) fn basic_ingest(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix(BASIC_INGEST_PREFIX)?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// An MQTT topic filter, parsed once: `+` matches one level, `#` (last) any number of levels,
/// the parent level included (`a/#` matches `a`).
///
/// As MQTT 3.1.1 §4.7.2 requires, a filter that starts with a wildcard does not match a topic that
/// starts with `$` (`#` does not match `$aws/things/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    text: String,
    levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(String),
    /// `+`
    One,
    /// `#`, always the last level.
    Many,
}

impl TopicFilter {
    /// Parses a topic filter.
    ///
    /// # Errors
    /// The filter is empty, or a `+` or `#` shares its level with other characters, or `#` is not
    /// the last level.
    pub fn parse(filter: &str) -> Result<Self, SqlError> {
        if filter.is_empty() {
            return Err(SqlError::new(0, "the topic filter is empty"));
        }
        if filter.contains('\0') {
            return Err(SqlError::new(
                0,
                "the topic filter contains a NUL character",
            ));
        }
        let count = filter.split('/').count();
        let mut levels = Vec::with_capacity(count);
        for (i, level) in filter.split('/').enumerate() {
            levels.push(match level {
                "+" => Level::One,
                "#" if i + 1 == count => Level::Many,
                "#" => {
                    return Err(SqlError::new(
                        0,
                        format!("`#` must be the last level of the topic filter `{filter}`"),
                    ));
                }
                _ if level.contains(['+', '#']) => {
                    return Err(SqlError::new(
                        0,
                        format!(
                            "a wildcard must fill its whole level in the topic filter `{filter}`"
                        ),
                    ));
                }
                _ => Level::Literal(level.to_owned()),
            });
        }
        Ok(Self {
            text: filter.to_owned(),
            levels,
        })
    }

    /// The filter as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a message published on `topic` matches this filter.
    #[must_use]
    pub fn matches(&self, topic: &str) -> bool {
        if topic.starts_with('$') && matches!(self.levels.first(), Some(Level::One | Level::Many)) {
            return false;
        }
        let mut segments = topic.split('/');
        for level in &self.levels {
            match level {
                Level::Many => return true,
                Level::One => {
                    if segments.next().is_none() {
                        return false;
                    }
                }
                Level::Literal(literal) => match segments.next() {
                    Some(segment) if segment == literal => {}
                    _ => return false,
                },
            }
        }
        segments.next().is_none()
    }
}

impl std::fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}
