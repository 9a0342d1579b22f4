//! Who is calling: every `/v1` route needs `Authorization: Bearer <key>`.
//!
//! The admin key (`FLOTILLA_ADMIN_KEY`) manages tenants and may act for any
//! tenant. A tenant's key reaches only that tenant: a job enqueued with it
//! belongs to it whatever the body says, and another tenant's resources
//! answer 404 (not 403), so a key cannot probe what exists elsewhere.
//! Unknown, malformed or revoked keys, and keys of deleted tenants, get 401.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flotilla::ids::TenantId;
use flotilla::tenancy::TenantStatus;
use flotilla::tenancy::api_key::{self, ApiKey, KeyOwner};

use super::AppState;
use super::problem::Problem;

/// The authenticated caller, put in the request's extensions for handlers
/// (`Extension<Caller>`).
#[derive(Debug, Clone)]
pub enum Caller {
    /// The operator's key.
    Admin,
    /// A tenant's key, with the tenant as it is now.
    Tenant(KeyOwner),
}

impl Caller {
    /// The tenant a tenant key is scoped to; `None` for the admin.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Caller::Admin => None,
            Caller::Tenant(owner) => Some(&owner.tenant),
        }
    }

    /// Whether this caller may see `tenant`'s resources.
    pub fn can_see(&self, tenant: &TenantId) -> bool {
        self.tenant().is_none_or(|own| own == tenant)
    }

    /// Refuses a tenant key on an operator's route.
    pub fn require_admin(&self) -> Result<(), Problem> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(_) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "this route needs the admin key (FLOTILLA_ADMIN_KEY); a tenant key cannot use it",
            )),
        }
    }

    /// Refuses a write by a tenant that may not write now (suspended).
    pub fn require_writable(&self) -> Result<(), Problem> {
        match self {
            Caller::Tenant(owner) if owner.status != TenantStatus::Active => Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "tenant {} is {}: it may read but not enqueue; ask the operator to reactivate it",
                    owner.tenant, owner.status
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The middleware on `/v1`: resolves the bearer key to a [`Caller`].
pub async fn require_key(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    match caller(&state, request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

async fn caller(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Caller, Problem> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
        .ok_or_else(|| {
            unauthorized(
                "this route needs an API key: send `Authorization: Bearer <key>` with the admin key or a tenant's key",
            )
        })?;
    if api_key::same_secret(presented, &state.admin_key) {
        return Ok(Caller::Admin);
    }
    let key = ApiKey::parse(presented).map_err(|e| unauthorized(&e.to_string()))?;
    match api_key::authenticate(&state.db, &key).await {
        Ok(Some(owner)) => Ok(Caller::Tenant(owner)),
        Ok(None) => Err(unauthorized(
            "unknown or revoked API key; use the key issued when the tenant was created",
        )),
        Err(e) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot check the API key: {e}; retry later"),
        )),
    }
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"flotilla\""),
    )
}
