//! Reading request bodies and query strings within the API's limits, and writing JSON
//! responses.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::problem::{Kind, Problem};

/// `N` random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N], Problem> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Problem::internal(&e))?;
    Ok(bytes)
}

/// A display name (of a device or a household) that the domain accepts, or a 422 pointing at
/// `/name`.
pub fn check_name(name: &str) -> Result<(), Problem> {
    hearth_domain::device::validate_name(name)
        .map_err(|reason| Problem::invalid("/name", format!("name {reason}.")))
}

/// The checked name of a rename's `{"name": ...}` body (see [`json_body`]).
pub fn name_body(request: &Request<Bytes>) -> Result<String, Problem> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rename {
        name: String,
    }
    let Rename { name } = json_body(request)?;
    check_name(&name)?;
    Ok(name)
}

/// The largest request body any route accepts (a desired document is at most 8 KB of state).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The JSON body of `request`: 415 unless it is `application/json`, 413 over
/// [`MAX_BODY_BYTES`], 400 if it is not JSON, 422 if it does not have the route's shape.
pub fn json_body<T: DeserializeOwned>(request: &Request<Bytes>) -> Result<T, Problem> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        return Err(Problem::new(
            Kind::UnsupportedMediaType,
            "Send the body as application/json.",
        ));
    }
    let body = request.body();
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            Kind::PayloadTooLarge,
            format!(
                "The body is {} bytes; the limit is {MAX_BODY_BYTES}.",
                body.len()
            ),
        ));
    }
    // Parsed straight into the route's type (duplicate members stay an error); a body that is
    // JSON but not an object is a 422, not a 400.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(match serde_json::from_slice::<Value>(body) {
            Ok(_) => Problem::new(Kind::Validation, "The body must be a JSON object."),
            Err(e) => not_json(&e),
        });
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem::new(Kind::Validation, e.to_string()),
        _ => not_json(&e),
    })
}

fn not_json(e: &serde_json::Error) -> Problem {
    Problem::new(
        Kind::BadRequest,
        format!("The body is not valid JSON: {e}."),
    )
}

/// Like [`json_body`] for a route whose body is optional: `None` when it is empty.
pub fn optional_json_body<T: DeserializeOwned>(
    request: &Request<Bytes>,
) -> Result<Option<T>, Problem> {
    if request.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    json_body(request).map(Some)
}

/// The value of query parameter `name`, percent-decoded.
pub fn query<'a>(request: &'a Request<Bytes>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['%', '+']) {
        return value.into();
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// A JSON response.
pub fn json(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let request = Request::get("/v1/devices?limit=5&cursor=a%2Fb+c&empty")
            .body(Bytes::new())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query(&request, "limit").as_deref(), Some("5"));
        assert_eq!(query(&request, "cursor").as_deref(), Some("a/b c"));
        assert_eq!(query(&request, "empty").as_deref(), Some(""));
        assert_eq!(query(&request, "missing"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
