//! The SQL subset: parsing, refusals, SELECT, WHERE and the functions.

use hearth_iot_rules::sql::Sql;
use serde_json::{Value, json};

use super::json;

fn sql(text: &str) -> Sql {
    match Sql::parse(text) {
        Ok(sql) => sql,
        Err(e) => panic!("`{text}` does not parse: {e}"),
    }
}

/// The output of `text` for a payload on `topic` (client `dev-1`, clock 42), as JSON.
fn select(text: &str, topic: &str, payload: &Value) -> Option<Value> {
    sql(text)
        .apply(topic, payload.to_string().as_bytes(), "dev-1", 42)
        .map(|bytes| json(&bytes))
}

/// Whether WHERE `condition` lets `payload` through.
fn passes(condition: &str, payload: &Value) -> bool {
    select(
        &format!("SELECT * FROM 'a' WHERE {condition}"),
        "a",
        payload,
    )
    .is_some()
}

#[test]
fn select_star_alone_passes_any_payload_through_unchanged() {
    let star = sql("SELECT * FROM 'a/b'");
    for payload in [
        &br#"{ "spaced" : [1, 2.50] }"#[..],
        b"\x00\xffbinary",
        b"80",
        b"",
    ] {
        assert_eq!(star.apply("a/b", payload, "c", 1).as_deref(), Some(payload));
    }
}

#[test]
fn named_items_extend_and_override_the_payload() {
    let out = select(
        "SELECT *, topic(2) AS b, 'x' AS color, temperature AS t FROM 'a/+'",
        "a/b",
        &json!({"color": "red", "temperature": 50, "b": 0}),
    );
    assert_eq!(
        out,
        Some(json!({"color": "x", "temperature": 50, "b": "b", "t": 50}))
    );
    // A later item replaces an earlier one of the same name; an Undefined one replaces nothing.
    assert_eq!(
        select(
            "SELECT 1 AS n, 2 AS n, missing AS n FROM 'a'",
            "a",
            &json!({})
        ),
        Some(json!({"n": 2}))
    );
    assert_eq!(
        select(
            "SELECT *, missing AS color FROM 'a'",
            "a",
            &json!({"color": "red"})
        ),
        Some(json!({"color": "red"}))
    );
}

#[test]
fn fields_literals_and_functions() {
    let payload = json!({"state": {"reported": {"power": "on"}}, "n": 1, "s": "a\"b\\c\u{1}"});
    assert_eq!(
        select(
            "SELECT state.reported.power, state.reported AS r, state.nope.x AS gone, s, \
             'it' AS str, -1.5 AS neg, 10 AS int, true AS yes, FALSE AS no, null AS nil, \
             clientid() AS client, timestamp() AS ts, topic() AS t FROM '#'",
            "x/y",
            &payload,
        ),
        Some(json!({
            "power": "on", "r": {"power": "on"}, "s": "a\"b\\c\u{1}", "str": "it", "neg": -1.5,
            "int": 10, "yes": true, "no": false, "nil": null, "client": "dev-1", "ts": 42,
            "t": "x/y"
        }))
    );
}

#[test]
fn topic_levels_count_from_one_and_past_the_end_are_left_out() {
    let text = "SELECT topic(1) AS a, topic(3) AS c, topic(4) AS d FROM '#'";
    assert_eq!(
        select(text, "x/y/z", &json!({})),
        Some(json!({"a": "x", "c": "z"}))
    );
    assert_eq!(select(text, "x", &json!({})), Some(json!({"a": "x"})));
    assert_eq!(
        select("SELECT topic(2) AS e FROM '#'", "a//b", &json!({})),
        Some(json!({"e": ""}))
    );
}

#[test]
fn where_comparisons() {
    let p = json!({"n": 5, "f": 2.5, "s": "abc", "num": "7", "b": true, "z": null,
                   "arr": [1, 2], "obj": {"k": 1}});
    for (condition, expected) in [
        ("n = 5", true),
        ("n = 5.0", true),
        ("n = 6", false),
        ("n <> 6", true),
        ("n != 5", false),
        ("n < 6", true),
        ("n <= 5", true),
        ("n > 5", false),
        ("n >= 5", true),
        ("f > 2", true),
        ("f < 2.49", false),
        ("s = 'abc'", true),
        ("s <> 'abd'", true),
        ("s = 5", false),
        ("s <> 5", true),
        ("num > 6", true),
        ("num = 7", false),
        ("s > 1", false),
        ("b = true", true),
        ("b", true),
        ("z = null", true),
        ("arr = arr", true),
        ("obj.k = 1", true),
        ("-5 < n", true),
        ("missing = 1", false),
        ("missing <> 1", false),
        ("missing < 1", false),
        ("NOT missing = 1", false),
        ("NOT n = 6", true),
    ] {
        assert_eq!(passes(condition, &p), expected, "WHERE {condition}");
    }
}

#[test]
fn where_boolean_logic() {
    let p = json!({"a": 1, "b": 2, "t": "TRUE"});
    for (condition, expected) in [
        ("a = 1 AND b = 2", true),
        ("a = 1 AND b = 3", false),
        ("a = 2 OR b = 2", true),
        ("a = 2 OR b = 3", false),
        ("NOT (a = 1 AND b = 3)", true),
        ("a = 2 AND b = 3 OR a = 1", true),
        ("a = 2 AND (b = 3 OR a = 1)", false),
        ("NOT NOT a = 1", true),
        ("t AND a = 1", true),
        ("missing = 1 OR a = 1", false),
        ("a = 1 AND missing = 1", false),
    ] {
        assert_eq!(passes(condition, &p), expected, "WHERE {condition}");
    }
}

#[test]
fn keywords_and_functions_are_case_insensitive() {
    assert_eq!(
        select(
            "select *, TOPIC(1) as Level, Timestamp() As ts, CLIENTID() aS c from 'a/#' \
             where N = 1 and not (x = 2) Or FALSE",
            "a/b",
            &json!({"N": 1, "x": 3}),
        ),
        Some(json!({"N": 1, "x": 3, "Level": "a", "ts": 42, "c": "dev-1"}))
    );
    // Field names are case-sensitive.
    assert_eq!(
        select("SELECT n FROM 'a'", "a", &json!({"N": 1})),
        Some(json!({}))
    );
}

#[test]
fn a_payload_that_is_not_a_json_object() {
    let run = |text: &str, payload: &[u8]| sql(text).apply("a", payload, "c", 42);
    assert_eq!(run("SELECT *, 1 AS one FROM 'a'", b"\x01\x02"), None);
    assert_eq!(run("SELECT *, 1 AS one FROM 'a'", b"[1]"), None);
    assert_eq!(
        run("SELECT topic() AS t, x AS x FROM 'a'", b"\x01\x02").as_deref(),
        Some(&br#"{"t":"a"}"#[..])
    );
    assert_eq!(run("SELECT * FROM 'a' WHERE x = 1", b"\x01"), None);
    assert_eq!(
        run("SELECT * FROM 'a' WHERE timestamp() = 42", b"\x01").as_deref(),
        Some(&b"\x01"[..])
    );
    assert_eq!(
        run("SELECT *, 1 AS one FROM 'a'", b"").as_deref(),
        Some(&br#"{"one":1}"#[..])
    );
}

#[test]
fn unsupported_sql_is_refused_naming_the_construct() {
    for (text, needle) in [
        ("SELECT upper(name) AS n FROM 'a'", "upper()"),
        ("SELECT a + 1 AS b FROM 'a'", "`+`"),
        ("SELECT a - 1 AS b FROM 'a'", "`-`"),
        ("SELECT a * 2 AS b FROM 'a'", "`*`"),
        ("SELECT a / 2 AS b FROM 'a'", "`/`"),
        ("SELECT * FROM 'a' WHERE a % 2 = 0", "`%`"),
        ("SELECT CASE a WHEN 1 THEN 2 END AS b FROM 'a'", "CASE"),
        ("SELECT (SELECT a FROM 'b') AS c FROM 'a'", "nested SELECT"),
        ("SELECT * FROM 'a' WHERE a IN (1, 2)", "IN"),
        ("SELECT a[0] AS b FROM 'a'", "`[`"),
        ("SELECT \"a b\" FROM 'a'", "`\"`"),
        ("SET @x = 1 SELECT * FROM 'a'", "SET"),
        ("SELECT * FROM 'a' WHERE a == 1", "`==`"),
        ("SELECT topic() FROM 'a'", "AS <name>"),
        ("SELECT 'x' FROM 'a'", "AS <name>"),
        ("SELECT topic(0) AS t FROM 'a'", "topic(0)"),
        ("SELECT topic(1.5) AS t FROM 'a'", "topic(1.5)"),
        ("SELECT timestamp(1) AS t FROM 'a'", "no argument"),
        ("SELECT * FROM a", "quoted topic filter"),
        ("SELECT *", "FROM"),
        ("SELECT * FROM 'a' extra", "`extra`"),
        ("SELECT * FROM 'a' WHERE a = 1 = 2", "`=`"),
        ("SELECT *, * FROM 'a'", "twice"),
        ("SELECT a AS FROM 'a'", "a name after AS"),
        ("SELECT * FROM 'a", "unterminated"),
        ("SELECT * FROM 'a/#/b'", "`#`"),
        ("SELECT * FROM 'a+/b'", "wildcard"),
        ("SELECT * FROM ''", "empty"),
        ("UPDATE x", "SELECT"),
        ("SELECT * FROM 'a'; SELECT * FROM 'b'", "`;`"),
    ] {
        match Sql::parse(text) {
            Ok(_) => panic!("`{text}` parsed"),
            Err(e) => assert!(
                e.to_string().contains(needle),
                "`{text}`: the error `{e}` does not name {needle}"
            ),
        }
    }
}

#[test]
fn errors_point_at_the_offending_token() {
    let Err(e) = Sql::parse("SELECT a, lower(b) AS c FROM 'a'") else {
        panic!("parsed");
    };
    assert_eq!(e.position(), 10);
    assert!(e.message().contains("lower()"));
}

#[test]
fn the_statement_keeps_its_text_and_filter() {
    let parsed = sql("SELECT * FROM '$aws/things/+/shadow/#'");
    assert_eq!(parsed.as_str(), "SELECT * FROM '$aws/things/+/shadow/#'");
    assert_eq!(parsed.topic_filter().as_str(), "$aws/things/+/shadow/#");
    assert!(parsed.topic_filter().matches("$aws/things/x/shadow/update"));
}
