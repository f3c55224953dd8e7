//! The one error response of the service: `{"error": …, "status": …}` with
//! the status sqlreg assigns (404 missing, 409 duplicate, 503 pool exhausted),
//! or 400 for a request the service cannot read.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error as the client sees it.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl From<sqlreg::Error> for ApiError {
    fn from(err: sqlreg::Error) -> Self {
        let status =
            StatusCode::from_u16(err.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A 500 is ours to fix: the details go to the log, not to the client.
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %err, "request failed");
            "internal server error".to_owned()
        } else {
            err.to_string()
        };
        Self { status, message }
    }
}

/// A body that is not JSON, lacks a field or has the wrong content type.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

/// A path parameter that is not a number.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl ApiError {
    fn bad_request(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}
