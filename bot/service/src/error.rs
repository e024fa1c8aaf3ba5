//! The use-cases' error: what went wrong in terms a caller can act on. The HTTP layer maps each
//! kind to its status code (a missing record stays a 404, a refused value a 422); a chat adapter
//! turns it into a sentence. Only [`ServiceError::Internal`] is the service's own fault.

use std::fmt;

/// An error from a use-case.
#[derive(Debug)]
pub enum ServiceError {
    /// What was asked for does not exist for this caller (someone else's record does not exist
    /// for them either).
    NotFound(String),
    /// A value was refused: the field, a stable code for the rule it broke, and a sentence.
    Invalid { field: String, constraint: &'static str, message: String },
    /// The caller may not do this.
    Forbidden(String),
    /// Something the operation needs is not ready (no trained model yet).
    Unavailable(String),
    /// Anything else: a database or engine failure.
    Internal(anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ServiceError::Internal(e.into())
    }

    /// A refused setting (mapped by name: `From` would be shadowed by the catch-all below).
    pub fn setting(e: alerts::settings::SettingsError) -> Self {
        ServiceError::Invalid { field: e.field, constraint: e.constraint, message: e.message }
    }

    /// As an `anyhow` error, for callers that only report it (chat adapters, jobs).
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            ServiceError::Internal(e) => e,
            other => anyhow::anyhow!("{other}"),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::NotFound(m) | ServiceError::Forbidden(m) | ServiceError::Unavailable(m) => f.write_str(m),
            ServiceError::Invalid { field, message, .. } => write!(f, "{field}: {message}"),
            ServiceError::Internal(e) => write!(f, "{e:#}"),
        }
    }
}

// `ServiceError` is deliberately not a `std::error::Error`: that would make it convertible into
// `anyhow::Error`, and from there into an HTTP layer's catch-all 500.
impl<E: Into<anyhow::Error>> From<E> for ServiceError {
    fn from(e: E) -> Self {
        ServiceError::Internal(e.into())
    }
}
