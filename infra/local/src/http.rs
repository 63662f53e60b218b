//! The local stack's HTTP listener: a health endpoint, read-only views of the local state (for
//! the simulator's loss check and for developers), and the routes of [`crate::lambda`] and
//! [`crate::api`] (the template's HTTP API routes, direct invokes, the local clock, development
//! tokens).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the local views read.
#[async_trait]
pub trait Inspect: Send + Sync {
    /// A device's state projection as JSON, `None` if nothing is stored.
    async fn device_state(&self, thing: &str) -> Result<Option<Value>, String>;
    /// Every queue: `{"name", "messages" (visible and in flight), "dead_letter_queue"}`.
    async fn queues(&self) -> Result<Vec<Value>, String>;
    /// Counters and latency percentiles.
    fn metrics(&self) -> Value;
    /// Messages the functions dead-lettered, with their reasons.
    async fn dead_letters(&self) -> Result<Vec<Value>, String>;
}

/// The router.
pub fn router(inspect: Arc<dyn Inspect>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/local/devices/{thing}/state", get(device_state))
        .route("/local/queues", get(queues))
        .route("/local/dead-letters", get(dead_letters))
        .route("/local/metrics", get(metrics))
        .with_state(inspect)
}

/// Serves the views and `routes` (development tokens, the local clock, direct invokes, and the
/// template's HTTP API routes as the fallback) on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    inspect: Arc<dyn Inspect>,
    routes: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = router(inspect).merge(routes);
    // The peer address becomes the HTTP API event's `sourceIp`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    })
    .await
}

/// The address a listener is bound to, for printing.
pub fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn internal(e: &str) -> Response {
    tracing::error!(error = e, "local view failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "internal error"})),
    )
        .into_response()
}

async fn device_state(
    State(inspect): State<Arc<dyn Inspect>>,
    Path(thing): Path<String>,
) -> Response {
    match inspect.device_state(&thing).await {
        Ok(Some(state)) => Json(state).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no state stored for this device"})),
        )
            .into_response(),
        Err(e) => internal(&e),
    }
}

async fn queues(State(inspect): State<Arc<dyn Inspect>>) -> Response {
    match inspect.queues().await {
        Ok(queues) => Json(queues).into_response(),
        Err(e) => internal(&e),
    }
}

async fn metrics(State(inspect): State<Arc<dyn Inspect>>) -> Json<Value> {
    Json(inspect.metrics())
}

async fn dead_letters(State(inspect): State<Arc<dyn Inspect>>) -> Response {
    match inspect.dead_letters().await {
        Ok(letters) => Json(letters).into_response(),
        Err(e) => internal(&e),
    }
}
