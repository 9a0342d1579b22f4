//! Every `/v1` route needs a key: the admin key, or a tenant's key that
//! reaches only its own tenant. Real `serve`, real Redis and PostgreSQL.

use flotilla::ids::{Namespace, TenantId};
use flotilla::tenancy::api_key;
use flotilla_tests::producer::{ADMIN_KEY, Api, problem};
use flotilla_tests::{fresh_database_with_url, fresh_namespace};
use sqlx::PgPool;

async fn tenant_with_key(pool: &PgPool, slug: &str, status: &str) -> (TenantId, String) {
    flotilla_tests::tenant_with_key(pool, slug, "pro", status).await
}

async fn api_with_tenants() -> (Api, PgPool, Namespace) {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    (Api::start_with_database(&ns, &url).await, pool, ns)
}

#[tokio::test]
async fn a_request_without_a_key_is_401_with_a_bearer_challenge() {
    let (api, _, _) = api_with_tenants().await;
    let response = api.http.get(api.url("/v1/queues")).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"flotilla\""
    );
    let p = problem(response, 401).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{p}"
    );
}

#[tokio::test]
async fn unknown_malformed_and_revoked_keys_are_401() {
    let (api, pool, _) = api_with_tenants().await;
    let (tenant, key) = tenant_with_key(&pool, "revoked", "active").await;
    api_key::revoke_all(&pool, &tenant).await.unwrap();
    let unknown = api_key::ApiKey::generate();
    for presented in [
        key.as_str(),
        unknown.reveal(),
        "flt_nonsense",
        "wrong-admin-key-0123456789",
    ] {
        let _ = problem(
            api.get_as(presented, "/v1/jobs/01JD0000000000000000000000")
                .await,
            401,
        )
        .await;
    }
}

#[tokio::test]
async fn probes_and_metrics_need_no_key() {
    let (api, _, _) = api_with_tenants().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let status = api.http.get(api.url(path)).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_tenant_key_enqueues_for_its_own_tenant_whatever_the_body_says() {
    let (api, pool, _) = api_with_tenants().await;
    let (tenant, key) = tenant_with_key(&pool, "owner", "active").await;
    let response = api
        .post_as(
            &key,
            "bench",
            r#"{"tenant": "someone-else", "payload": {}}"#,
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let accepted: serde_json::Value = response.json().await.unwrap();
    assert_eq!(accepted["tenant"], tenant.as_str());
    let without_tenant = api.post_as(&key, "bench", r#"{"payload": {}}"#, None).await;
    assert_eq!(without_tenant.status().as_u16(), 202);
}

#[tokio::test]
async fn another_tenants_job_is_404_to_a_tenant_key_and_visible_to_the_admin() {
    let (api, pool, _) = api_with_tenants().await;
    let (_, key_a) = tenant_with_key(&pool, "tenant-a", "active").await;
    let (_, key_b) = tenant_with_key(&pool, "tenant-b", "active").await;
    let accepted: serde_json::Value = api
        .post_as(&key_b, "bench", "{}", None)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/v1/jobs/{}", accepted["id"].as_str().unwrap());
    let _ = problem(api.get_as(&key_a, &path).await, 404).await;
    assert_eq!(api.get_as(&key_b, &path).await.status().as_u16(), 200);
    assert_eq!(api.get_as(ADMIN_KEY, &path).await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_suspended_tenant_may_read_but_not_enqueue() {
    let (api, pool, _) = api_with_tenants().await;
    let (_, key) = tenant_with_key(&pool, "paused", "active").await;
    let accepted: serde_json::Value = api
        .post_as(&key, "bench", "{}", None)
        .await
        .json()
        .await
        .unwrap();
    sqlx::query("UPDATE tenants SET status = 'suspended' WHERE slug = 'paused'")
        .execute(&pool)
        .await
        .unwrap();
    let p = problem(api.post_as(&key, "bench", "{}", None).await, 403).await;
    assert!(p["detail"].as_str().unwrap().contains("suspended"), "{p}");
    let path = format!("/v1/jobs/{}", accepted["id"].as_str().unwrap());
    assert_eq!(api.get_as(&key, &path).await.status().as_u16(), 200);
}

#[tokio::test]
async fn operator_routes_refuse_a_tenant_key_with_403() {
    let (api, pool, _) = api_with_tenants().await;
    let (_, key) = tenant_with_key(&pool, "curious", "active").await;
    let _ = problem(api.get_as(&key, "/v1/queues").await, 403).await;
    assert_eq!(
        api.get_as(ADMIN_KEY, "/v1/queues").await.status().as_u16(),
        200
    );
}

#[tokio::test]
async fn a_deleted_tenants_key_is_401() {
    let (api, pool, _) = api_with_tenants().await;
    let (_, key) = tenant_with_key(&pool, "gone", "deleted").await;
    let _ = problem(
        api.get_as(&key, "/v1/jobs/01JD0000000000000000000000")
            .await,
        401,
    )
    .await;
}
