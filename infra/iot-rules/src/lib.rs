//! The local stack's rules engine: the topic rules, SQS queues, functions and their event sources,
//! HTTP API routes and IoT policies of
//! `template.yaml`, read from the template itself so that local routing cannot drift from the
//! deployed stack, and the AWS IoT SQL subset the rules use, evaluated per message.
//!
//! - [`template`]: [`template::load`] / [`template::parse`] read the SAM template into a
//!   [`template::Routing`] (rules, queues, consumers), resolving parameters, conditions and
//!   intrinsic functions as a local stack without AWS sees them; [`template::Routing::route`]
//!   routes one message to the queues.
//! - [`policy`]: the template's `AWS::IoT::Policy` documents evaluated as IoT Core does for MQTT
//!   (connect, publish, subscribe, receive, with policy variables), so that the local broker
//!   enforces the same device policy as AWS.
//! - [`schedule`]: EventBridge schedule expressions (`rate`, `cron`, `at`) and when each fires
//!   next; [`route`]: HTTP API route keys and the route a request selects.
//! - [`sql`]: [`sql::Sql`], the SQL subset (`SELECT`, `FROM` with `+` and `#`, `WHERE`,
//!   `topic()`, `topic(n)`, `timestamp()`, `clientid()`), compiled once and evaluated per message.
//!
//! A pure library: no I/O other than [`template::load`] reading the template, no async, no AWS
//! types. Routing is on the local stack's hot path: topic filters are compiled at startup, the
//! payload is parsed at most once per message (only its top level: `SELECT *` copies each field's
//! JSON text unchanged), and a message no rule matches is never parsed.

pub mod policy;
pub mod route;
pub mod schedule;
pub mod sql;
pub mod template;
