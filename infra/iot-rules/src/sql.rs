//! The subset of AWS IoT SQL (version `2016-03-23`) that the template's topic rules use.
//!
//! ```text
//! SELECT <item>, ... FROM '<topic filter>' [WHERE <condition>]
//! item       := * | <expression> [AS <name>]
//! expression := <field>[.<field>...] | 'string' | number | true | false | null
//!             | topic() | topic(<n>) | timestamp() | clientid()
//!             | <expression> (= | <> | != | < | <= | > | >=) <expression>
//!             | <expression> AND <expression> | <expression> OR <expression>
//!             | NOT <expression> | ( <expression> )
//! ```
//!
//! Keywords and function names are case-insensitive; field names are not. Anything else (other
//! functions, arithmetic, `CASE`, nested `SELECT`, array indexing, quoted identifiers) is refused
//! by [`Sql::parse`] with an error naming the construct. A string literal ends at the next `'`.
//! An item other than a field needs `AS <name>`; a field path is named after its last field.
//!
//! Semantics, from the AWS IoT SQL reference:
//! - `topic()` is the topic the message was published on and `topic(n)` its n-th level (from 1);
//!   a level past the end is Undefined. For a Basic Ingest topic
//!   (`$aws/rules/<rule name>/<topic>`) both see `<topic>`: AWS IoT removes the prefix.
//! - `timestamp()` is the rules engine's clock (milliseconds since the epoch), given by the caller
//!   like `clientid()`, the publisher's MQTT client id.
//! - A missing field is Undefined. A SELECT item that is Undefined is left out of the output; a
//!   comparison with an Undefined operand is Undefined, and so are AND, OR and NOT of anything
//!   other than booleans (or the strings "true" and "false"). WHERE lets a message through only
//!   when it evaluates to `true`, and is evaluated before SELECT.
//! - `*` copies the payload's fields; named items are added after them and replace a payload
//!   field of the same name (a later item replaces an earlier one).
//!
//! Payloads that are not a JSON object ("binary payloads" in the AWS IoT documentation, which
//! counts JSON scalars such as `80` among them). The reference's page on binary payloads says
//! `SELECT *` passes such a payload on unchanged, that a statement may otherwise only use
//! functions, and that fields can be added to "an empty or a JSON payload". So:
//! - an empty payload reads as `{}`;
//! - `SELECT *` alone (with or without WHERE) outputs any payload byte for byte, JSON or not;
//! - every field of a binary payload is Undefined (so a WHERE on a field is false);
//! - `*` with named items over a binary payload produces nothing (AWS IoT fails the rule, logs
//!   the failure, and runs no action); named items without `*` produce an object of the defined
//!   items.

mod eval;
mod parse;
mod topic;

use serde_json::Value;

pub(crate) use eval::Message;
pub use topic::TopicFilter;
pub(crate) use topic::basic_ingest;

/// A parsed statement: compiled once, evaluated per message without re-parsing.
#[derive(Debug, Clone)]
pub struct Sql {
    text: String,
    /// `*` is in the SELECT list.
    star: bool,
    /// The named SELECT items, in order.
    items: Vec<Item>,
    from: TopicFilter,
    condition: Option<Expr>,
}

#[derive(Debug, Clone)]
struct Item {
    name: String,
    /// `"name":`, escaped once at parse time.
    key: String,
    expr: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    Field(Vec<String>),
    Literal(Literal),
    /// `topic()` (`None`) or `topic(n)`, n from 1.
    Topic(Option<usize>),
    Timestamp,
    ClientId,
    Compare(Box<Expr>, CmpOp, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone)]
struct Literal {
    value: Value,
    /// The value as JSON text, serialized once at parse time.
    json: String,
}

impl Literal {
    fn new(value: Value) -> Self {
        let json = value.to_string();
        Self { value, json }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A statement outside the supported subset, or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {position} of the SQL)")]
pub struct SqlError {
    position: usize,
    message: String,
}

impl SqlError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }

    /// What is wrong, naming the offending token or construct.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The byte offset in the SQL text where the problem was found.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Sql {
    /// Parses a statement of the subset.
    ///
    /// # Errors
    /// The statement is malformed or uses SQL outside the subset; the error names the token or
    /// construct.
    pub fn parse(text: &str) -> Result<Self, SqlError> {
        parse::parse(text)
    }

    /// The statement as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The FROM clause.
    #[must_use]
    pub fn topic_filter(&self) -> &TopicFilter {
        &self.from
    }

    /// Evaluates WHERE and SELECT for a message whose topic (as the rule sees it, without any
    /// Basic Ingest prefix) is `topic`, without checking it against FROM.
    ///
    /// `None` when WHERE is not true, or when the statement adds fields to `*` and the payload is
    /// not a JSON object; otherwise the output payload.
    #[must_use]
    pub fn apply(
        &self,
        topic: &str,
        payload: &[u8],
        client_id: &str,
        now_ms: u64,
    ) -> Option<Vec<u8>> {
        self.evaluate(&Message::new(topic, payload, client_id, now_ms))
    }
}
