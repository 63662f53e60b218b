//! The crate's tests: the repository's own template, small inline templates, the SQL subset and
//! topic-filter matching (with a property test against a reference implementation).

mod functions;
mod routing;
mod sql;
mod template;
mod topic_filter;

use hearth_iot_rules::template::{self as tpl, Routing, TemplateError};
use serde_json::Value;

/// The repository's `template.yaml`.
const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");

/// The repository's template, routed.
fn real() -> Routing {
    match tpl::load(TEMPLATE) {
        Ok(routing) => routing,
        Err(e) => panic!("template.yaml does not load: {e}"),
    }
}

/// An inline template that must parse.
fn parse(text: &str) -> Routing {
    match tpl::parse(text) {
        Ok(routing) => routing,
        Err(e) => panic!("template does not parse: {e}\n{text}"),
    }
}

/// An inline template that must fail; its error message.
fn parse_err(text: &str) -> (TemplateError, String) {
    match tpl::parse(text) {
        Ok(_) => panic!("template parsed but should not:\n{text}"),
        Err(e) => {
            let message = e.to_string();
            (e, message)
        }
    }
}

/// JSON bytes as a value.
fn json(bytes: &[u8]) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)),
    }
}
