//! API errors: one type, the body format of seed 002, and a policy.
//!
//! A client error (bad input, no permission, unknown deal) says exactly what is wrong and which
//! field, so it can be fixed. An internal error says only "internal_error" with the request id;
//! its cause chain is logged once, here, and never sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use service::ServiceError;

#[derive(Debug)]
pub enum ApiError {
    /// 422: a field is missing, of the wrong type, or out of range.
    Validation {
        message: String,
        field: Option<String>,
        constraint: &'static str,
    },
    /// 400: the body is not JSON at all, or a query parameter cannot be read.
    BadRequest(String),
    /// 401: no token, or one that is forged, expired or for another audience.
    Unauthorized(&'static str),
    /// 403: authenticated, but this is not yours to see or do.
    Forbidden(String),
    NotFound(String),
    /// 409: another request with the same Idempotency-Key is still running.
    Conflict(String),
    /// 429, with the seconds until a request would be allowed.
    RateLimited {
        message: String,
        retry_after: u64,
    },
    /// 503: a dependency is not ready (no model yet, database down at readiness).
    Unavailable(String),
    /// 500: logged with its cause; the client sees the request id only.
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, constraint: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation { message: message.into(), field: Some(field.into()), constraint }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

// Each error a handler's `?` meets is converted here by name: a blanket conversion from
// everything `anyhow` takes would also turn the service's not-found and refused values into 500s.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.into())
    }
}

/// A use-case's error, as the HTTP layer answers it: a missing record stays a 404, a refused
/// value a 422 naming the field.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(m) => ApiError::NotFound(m),
            ServiceError::Invalid { field, constraint, message } => {
                ApiError::Validation { message, field: Some(field), constraint }
            }
            ServiceError::Forbidden(m) => ApiError::Forbidden(m),
            ServiceError::Unavailable(m) => ApiError::Unavailable(m),
            ServiceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The error body: `error` is a stable code, `message` a sentence for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// validation_error, bad_request, unauthorized, forbidden, not_found, conflict,
    /// rate_limit_exceeded, unavailable or internal_error.
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The current request's id, for internal-error bodies (set by the request-id middleware; the
/// audit log reads it too).
pub use service::audit::REQUEST_ID;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        let (code, message, details, retry_after) = match self {
            ApiError::Validation { message, field, constraint } => {
                ("validation_error", message, field.map(|f| json!({ "field": f, "constraint": constraint })), None)
            }
            ApiError::BadRequest(m) => ("bad_request", m, None, None),
            ApiError::Unauthorized(m) => ("unauthorized", m.to_owned(), None, None),
            ApiError::Forbidden(m) => ("forbidden", m, None, None),
            ApiError::NotFound(m) => ("not_found", m, None, None),
            ApiError::Conflict(m) => ("conflict", m, None, None),
            ApiError::RateLimited { message, retry_after } => ("rate_limit_exceeded", message, None, Some(retry_after)),
            ApiError::Unavailable(m) => ("unavailable", m, None, None),
            ApiError::Internal(e) => {
                tracing::error!(
                    request_id = request_id.as_deref().unwrap_or("-"),
                    error = format!("{e:#}"),
                    "internal error"
                );
                (
                    "internal_error",
                    "Something went wrong on our side; quote the request id to support".to_owned(),
                    None,
                    None,
                )
            }
        };
        let body = ErrorBody {
            error: code.to_owned(),
            message,
            details,
            retry_after,
            request_id: if status.is_server_error() { request_id } else { None },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ApiError {
    /// A refused setting: a 422 naming the field (the settings' error lives below the HTTP
    /// layer, so it is mapped by name rather than by `From`, which the blanket conversion to a
    /// 500 would shadow).
    pub fn setting(e: alerts::settings::SettingsError) -> Self {
        ApiError::Validation { message: e.message, field: Some(e.field), constraint: e.constraint }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_cases_not_found_and_refused_value_keep_their_status_and_only_internal_is_a_500() {
        let invalid =
            ServiceError::Invalid { field: "quiet_hours.start".into(), constraint: "format", message: "HH:MM".into() };
        let cases = [
            (ServiceError::NotFound("no alert a1".into()), StatusCode::NOT_FOUND),
            (invalid, StatusCode::UNPROCESSABLE_ENTITY),
            (ServiceError::Forbidden("managers only".into()), StatusCode::FORBIDDEN),
            (ServiceError::Unavailable("no model yet".into()), StatusCode::SERVICE_UNAVAILABLE),
            (ServiceError::Internal(anyhow::anyhow!("disk full")), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            let shown = error.to_string();
            assert_eq!(ApiError::from(error).status(), status, "{shown}");
        }
        let e = ApiError::from(ServiceError::setting(alerts::settings::SettingsError::new("muted", "enum", "no")));
        assert!(matches!(&e, ApiError::Validation { field: Some(f), constraint: "enum", .. } if f == "muted"), "{e:?}");
    }
}
