//! `/v1/tenants`: create (202 + status URL), show, list, change (tier,
//! suspend, reactivate, config) and delete (soft). Changes write the wanted
//! state and enqueue a provisioning job (see `flotilla::tenancy::lifecycle`).
//!
//! The admin key manages tenants. A tenant's own key may read its own
//! tenant (another tenant is 404). A new tenant's API key is shown once, to
//! the admin, in the first `GET` after provisioning issued it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flotilla::tenancy::lifecycle::{Change, LifecycleError, Requested};
use flotilla::tenancy::store::{self, NewTenant, Tenant};
use flotilla::tenancy::{Slug, TenantName, TenantStatus, Tier};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AppState;
use super::auth::Caller;
use super::body::json_object;
use super::problem::Problem;
use crate::request::FieldError;

/// A tenant as the API shows it.
#[derive(Debug, Serialize)]
pub struct TenantView {
    #[serde(flatten)]
    tenant: Tenant,
    /// Its settings, resolved default → tier → overrides.
    config: Value,
    /// Where to follow it.
    status_url: String,
    /// The provisioning job this request enqueued, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<String>,
    /// The tenant's API key: present once, in the first read after it was
    /// issued. Store it; it cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

async fn view(
    state: &AppState,
    tenant: Tenant,
    job: Option<String>,
) -> Result<TenantView, Problem> {
    let config: Option<Value> =
        sqlx::query_scalar("SELECT resolved FROM tenant_configs WHERE tenant_id = $1")
            .bind(&tenant.id)
            .fetch_optional(&state.db)
            .await
            .map_err(db_unavailable)?;
    Ok(TenantView {
        status_url: format!("/v1/tenants/{}", tenant.id),
        config: config.unwrap_or(Value::Null),
        tenant,
        job,
        api_key: None,
    })
}

fn db_unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("PostgreSQL failed: {e}; retry later"),
    )
}

/// Maps a lifecycle error to its status.
pub fn problem(e: LifecycleError) -> Problem {
    match e {
        LifecycleError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
        LifecycleError::SlugTaken { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
        LifecycleError::WrongStatus { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
        LifecycleError::Override(ref o) => {
            let pointer = format!("/config/{}", o.key.replace('~', "~0").replace('/', "~1"));
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
                .with_errors(vec![FieldError::new(pointer, o.to_string())])
        }
        LifecycleError::Db(_) => db_unavailable(e),
        LifecycleError::Queue(_) => Problem::unavailable(e),
    }
}

fn accepted(view: TenantView, replayed: bool) -> Response {
    let location = HeaderValue::from_str(&view.status_url).expect("tenant ids are header-safe");
    let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
    response.headers_mut().insert(header::LOCATION, location);
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn string_field<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match map.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(FieldError::new(format!("/{name}"), "expected a string"));
            None
        }
    }
}

fn tier_field(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Tier> {
    let text = string_field(map, "tier", errors)?;
    let tier = Tier::ALL.into_iter().find(|t| t.as_str() == text);
    if tier.is_none() {
        errors.push(FieldError::new(
            "/tier",
            "unknown tier; use starter, pro or enterprise",
        ));
    }
    tier
}

fn config_field(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Map<String, Value>> {
    match map.get("config") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                "/config",
                "expected an object of overrides, e.g. {\"max_in_flight\": 8}",
            ));
            None
        }
    }
}

fn unknown_fields(map: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let shown: String = key.chars().take(40).collect();
        errors.push(FieldError::new(
            format!("/{}", shown.replace('~', "~0").replace('/', "~1")),
            format!("unknown field; the known fields are {}", known.join(", ")),
        ));
    }
}

fn invalid(errors: Vec<FieldError>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "the request has invalid fields; see errors",
    )
    .with_errors(errors)
}

/// Parses a create request.
fn new_tenant(map: &Map<String, Value>) -> Result<NewTenant, Problem> {
    let mut errors = Vec::new();
    unknown_fields(map, &["slug", "name", "tier", "config"], &mut errors);
    let slug = match string_field(map, "slug", &mut errors) {
        Some(s) => Slug::parse(s)
            .map_err(|e| errors.push(FieldError::new("/slug", e.to_string())))
            .ok(),
        None => {
            errors.push(FieldError::new(
                "/slug",
                "missing: a unique slug such as \"acme\"",
            ));
            None
        }
    };
    let name_text = string_field(map, "name", &mut errors).or(slug.as_ref().map(Slug::as_str));
    let name = name_text.and_then(|n| {
        TenantName::parse(n)
            .map_err(|e| errors.push(FieldError::new("/name", e.to_string())))
            .ok()
    });
    let tier = if map.contains_key("tier") {
        tier_field(map, &mut errors)
    } else {
        errors.push(FieldError::new(
            "/tier",
            "missing: starter, pro or enterprise",
        ));
        None
    };
    let overrides = config_field(map, &mut errors).unwrap_or_default();
    match (slug, name, tier) {
        (Some(slug), Some(name), Some(tier)) if errors.is_empty() => Ok(NewTenant {
            slug,
            name,
            tier,
            overrides,
        }),
        _ => Err(invalid(errors)),
    }
}

/// `POST /v1/tenants` (admin).
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        caller.require_admin()?;
        let new = new_tenant(&json_object(&headers, body)?)?;
        let Requested { tenant, job, new } = state.lifecycle.create(&new).await.map_err(problem)?;
        Ok::<_, Problem>(accepted(
            view(&state, tenant, job.map(|j| j.to_string())).await?,
            !new,
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Finds the tenant in the path, as `caller` may see it (404 otherwise).
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Tenant, Problem> {
    let tenant = state.lifecycle.find(id).await.map_err(problem)?;
    if caller.can_see(&tenant.tenant_id()) {
        Ok(tenant)
    } else {
        Err(problem(LifecycleError::NotFound(
            id.chars().take(64).collect(),
        )))
    }
}

/// `GET /v1/tenants/{id}` (admin, or the tenant's own key). `{id}` may be
/// the slug.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let tenant = visible(&state, &caller, &id).await?;
        let tenant_id = tenant.tenant_id();
        let mut shown = view(&state, tenant, None).await?;
        if matches!(caller, Caller::Admin) {
            shown.api_key = state
                .lifecycle
                .take_new_key(&tenant_id)
                .await
                .map_err(problem)?;
        }
        Ok::<_, Problem>(Json(shown).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Query of `GET /v1/tenants`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/tenants?status=&after=&limit=` (admin): a page, oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = async {
        caller.require_admin()?;
        let Query(query) =
            query.map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
        let status = match query.status.as_deref() {
            None => None,
            Some(s) => Some(
                TenantStatus::parse(s)
                    .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e))?,
            ),
        };
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        let tenants = store::list(state.lifecycle.db(), status, query.after.as_deref(), limit)
            .await
            .map_err(db_unavailable)?;
        let next = (tenants.len() as i64 == limit)
            .then(|| tenants.last().map(|t| t.id.clone()))
            .flatten();
        Ok::<_, Problem>(
            Json(serde_json::json!({"tenants": tenants, "next_after": next})).into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Parses a change request: `tier`, `status` (`suspended` or `active`),
/// `config` (overrides, replacing the current ones).
fn changes(map: &Map<String, Value>) -> Result<Vec<Change>, Problem> {
    let mut errors = Vec::new();
    unknown_fields(map, &["tier", "status", "config"], &mut errors);
    let mut changes = Vec::new();
    if map.contains_key("tier")
        && let Some(tier) = tier_field(map, &mut errors)
    {
        changes.push(Change::Tier(tier));
    }
    match string_field(map, "status", &mut errors) {
        Some("suspended") => changes.push(Change::Suspend),
        Some("active") => changes.push(Change::Reactivate),
        Some(_) => errors.push(FieldError::new(
            "/status",
            "use \"suspended\" to suspend or \"active\" to reactivate; DELETE deletes",
        )),
        None => {}
    }
    if let Some(overrides) = config_field(map, &mut errors) {
        changes.push(Change::Overrides(overrides));
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    if changes.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to change: send tier, status or config",
        ));
    }
    Ok(changes)
}

/// `PATCH /v1/tenants/{id}` (admin): tier, suspension, config.
pub async fn change(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        caller.require_admin()?;
        let changes = changes(&json_object(&headers, body)?)?;
        let mut last = None;
        let mut any_new = false;
        for change in changes {
            let requested = state.lifecycle.change(&id, change).await.map_err(problem)?;
            any_new |= requested.new;
            let job = requested.job.map(|j| j.to_string());
            last = Some((requested.tenant, job.or(last.and_then(|(_, j)| j))));
        }
        let (tenant, job) = last.expect("at least one change");
        Ok::<_, Problem>(accepted(view(&state, tenant, job).await?, !any_new))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /v1/tenants/{id}` (admin): soft delete; purged after the retention.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        caller.require_admin()?;
        let requested = state.lifecycle.delete(&id).await.map_err(problem)?;
        let job = requested.job.map(|j| j.to_string());
        Ok::<_, Problem>(accepted(
            view(&state, requested.tenant, job).await?,
            !requested.new,
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
