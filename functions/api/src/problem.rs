//! Errors as `application/problem+json` (RFC 9457) with a stable `type` per kind of problem.
//!
//! A problem says what the client can act on and nothing else: storage and AWS error text is
//! logged, never returned.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every kind of problem the API returns, each with a stable type URI and one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: the body is not JSON, or a query parameter is malformed.
    BadRequest,
    /// 401: no authenticated caller.
    Unauthenticated,
    /// 403: the caller can see the resource but their role does not allow the action.
    Forbidden,
    /// 404: no such route, or nothing the caller can see at this path.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 404: no unclaimed device has the claim code (unknown, or already used).
    UnknownClaimCode,
    /// 409: the shadow is not at the expected version.
    VersionConflict,
    /// 409: the product already has a device with this serial.
    AlreadyRegistered,
    /// 409: the change would leave a household with members or devices but no owner.
    LastOwner,
    /// 409: the invitation was used, declined, revoked or expired (or the invitee is already a
    /// member).
    InvitationClosed,
    /// 413: the body is larger than the route accepts.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed JSON that breaks a rule (names the field).
    Validation,
    /// 503: a dependency is throttling or unavailable; retry later.
    Unavailable,
    /// 500: anything else (logged with its detail, returned without).
    Internal,
}

impl Kind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnknownClaimCode => StatusCode::NOT_FOUND,
            Self::VersionConflict
            | Self::AlreadyRegistered
            | Self::LastOwner
            | Self::InvitationClosed => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable slug at the end of the type URI.
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::UnknownClaimCode => "unknown-claim-code",
            Self::VersionConflict => "version-conflict",
            Self::AlreadyRegistered => "already-registered",
            Self::LastOwner => "last-owner",
            Self::InvitationClosed => "invitation-closed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Validation => "validation",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "The request is malformed",
            Self::Unauthenticated => "Authentication is required",
            Self::Forbidden => "Your role does not allow this",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::UnknownClaimCode => "Unknown claim code",
            Self::VersionConflict => "The device state changed in the meantime",
            Self::AlreadyRegistered => "Already registered",
            Self::LastOwner => "The household needs an owner",
            Self::InvitationClosed => "The invitation cannot be used",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The request body must be application/json",
            Self::Validation => "The request breaks a rule",
            Self::Unavailable => "Temporarily unavailable",
            Self::Internal => "Internal error",
        }
    }
}

/// Type URIs are `urn:hearth:problem:<slug>`: stable, and never mistaken for a page to fetch.
pub fn type_uri(kind: Kind) -> String {
    format!("urn:hearth:problem:{}", kind.slug())
}

/// A problem to return.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Its kind.
    pub kind: Kind,
    /// What went wrong, for a human; never internal detail.
    pub detail: String,
    /// The offending field (JSON Pointer into the body, or a parameter name), if any.
    pub field: Option<String>,
    /// Methods the path supports (405 only).
    pub allow: Option<&'static str>,
}

impl Problem {
    /// A problem of `kind`.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            field: None,
            allow: None,
        }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(Kind::Validation, detail)
        }
    }

    /// The 404 for anything the caller cannot see (never a 403: existence is not revealed).
    pub fn not_found() -> Self {
        Self::new(Kind::NotFound, "No such resource.")
    }

    /// A 500 whose detail goes to the log only.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(Kind::Internal, "Something went wrong on our side.")
    }

    /// A 503 whose detail goes to the log only.
    pub fn unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "dependency unavailable");
        Self::new(Kind::Unavailable, "Please retry in a moment.")
    }

    /// The body.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "type": type_uri(self.kind),
            "title": self.kind.title(),
            "status": self.kind.status().as_u16(),
            "detail": self.detail,
        });
        if let (Some(field), Some(object)) = (&self.field, body.as_object_mut()) {
            object.insert("field".to_owned(), Value::String(field.clone()));
        }
        body
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.to_json().to_string()));
        *response.status_mut() = self.kind.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.kind == Kind::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
