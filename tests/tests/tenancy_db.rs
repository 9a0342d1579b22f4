//! The database foundations of tenant isolation, against a real PostgreSQL:
//! migrations apply (twice), row-level security keeps tenants apart and its
//! scope ends with the transaction, and enterprise schemas come from the
//! template under names that cannot carry user text.

use flotilla::db::{self, tenant_transaction};
use flotilla_tests::fresh_database;
use sqlx::PgPool;

async fn tenant(pool: &PgPool, slug: &str, tier: &str) -> String {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    sqlx::query("INSERT INTO tenants (id, slug, name, tier) VALUES ($1, $2, $3, $4::tenant_tier)")
        .bind(&id)
        .bind(slug)
        .bind(slug.to_uppercase())
        .bind(tier)
        .execute(pool)
        .await
        .unwrap();
    id
}

async fn add_portfolio(pool: &PgPool, tenant_id: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut tx = tenant_transaction(pool, tenant_id).await.unwrap();
    sqlx::query("INSERT INTO portfolios (tenant_id, user_id, name) VALUES ($1, 'u1', $2)")
        .bind(tenant_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn visible_portfolios(pool: &PgPool, tenant_id: &str) -> Vec<String> {
    let mut tx = tenant_transaction(pool, tenant_id).await.unwrap();
    sqlx::query_scalar("SELECT name FROM portfolios ORDER BY name")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_apply_twice_without_change() {
    let pool = fresh_database().await;
    db::migrate(&pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, db::MIGRATOR.iter().count() as i64);
}

#[tokio::test]
async fn a_tenant_transaction_sees_and_writes_only_its_own_rows() {
    let pool = fresh_database().await;
    let a = tenant(&pool, "alpha", "starter").await;
    let b = tenant(&pool, "beta", "pro").await;
    add_portfolio(&pool, &a, "a-growth").await.unwrap();
    add_portfolio(&pool, &b, "b-income").await.unwrap();

    assert_eq!(visible_portfolios(&pool, &a).await, ["a-growth"]);
    assert_eq!(visible_portfolios(&pool, &b).await, ["b-income"]);

    // Writing a row for B from A's scope is refused by the policy.
    let mut tx = tenant_transaction(&pool, &a).await.unwrap();
    let cross =
        sqlx::query("INSERT INTO portfolios (tenant_id, user_id, name) VALUES ($1, 'u', 'x')")
            .bind(&b)
            .execute(&mut *tx)
            .await;
    assert!(cross.is_err(), "a row for another tenant must be refused");
    drop(tx);

    // Updates and deletes from A's scope do not reach B's rows.
    let mut tx = tenant_transaction(&pool, &a).await.unwrap();
    let touched = sqlx::query("UPDATE portfolios SET name = 'pwned'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    let deleted = sqlx::query("DELETE FROM portfolios WHERE name = 'b-income'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    tx.rollback().await.unwrap();
    assert_eq!(
        (touched, deleted),
        (1, 0),
        "A's update reaches A's row only, A's delete none of B's"
    );
}

#[tokio::test]
async fn the_tenant_scope_ends_with_the_transaction_on_a_pooled_connection() {
    let pool = fresh_database().await;
    let a = tenant(&pool, "alpha", "starter").await;
    add_portfolio(&pool, &a, "a-growth").await.unwrap();
    // One connection: the next transaction reuses the one that was scoped.
    let single = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let mut tx = tenant_transaction(&single, &a).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM portfolios")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();

    let mut tx = single.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE flotilla_tenant")
        .execute(&mut *tx)
        .await
        .unwrap();
    let leaked: Option<String> = sqlx::query_scalar("SELECT app_tenant_id()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM portfolios")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!((leaked, n), (None, 0), "no tenant in scope, no rows");
}

#[tokio::test]
async fn hostile_tenant_ids_never_reach_the_database() {
    let pool = fresh_database().await;
    for bad in [
        "x'; DROP SCHEMA public; --",
        "",
        &"a".repeat(300),
        "01JD\u{0}",
        "01ЈD5X9V5G7KQ2M3N4P5R6S7T8",
    ] {
        assert!(tenant_transaction(&pool, bad).await.is_err(), "{bad:?}");
    }
    let slug = sqlx::query(
        "INSERT INTO tenants (id, slug, name, tier) VALUES ($1, 'Bad Slug', 'n', 'pro')",
    )
    .bind(ulid::Ulid::new().to_string().to_lowercase())
    .execute(&pool)
    .await;
    assert!(slug.is_err(), "slugs are checked by the table too");
}

#[tokio::test]
async fn an_enterprise_schema_is_built_from_the_template_and_only_under_a_safe_name() {
    let pool = fresh_database().await;
    let id = tenant(&pool, "gamma", "enterprise").await;
    let schema = format!("t_{id}");
    for _ in 0..2 {
        sqlx::query("SELECT create_tenant_schema($1)")
            .bind(&schema)
            .execute(&pool)
            .await
            .unwrap();
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(&schema)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(tables, ["market_data", "portfolios", "positions", "trades"]);
    let indexes: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = $1")
        .bind(&schema)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        indexes >= 7,
        "primary keys and the template's indexes: {indexes}"
    );

    for hostile in [
        "public",
        "t_x\"; DROP SCHEMA public; --",
        "T_01JD5X9V5G7KQ2M3N4P5R6S7T8",
    ] {
        let err = sqlx::query("SELECT create_tenant_schema($1)")
            .bind(hostile)
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid tenant schema name"),
            "{hostile}: {err}"
        );
    }
    let public_tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(public_tables > 0, "public is intact");
}

/// Provisions an enterprise tenant's schema and role as the job does.
async fn enterprise_schema(pool: &PgPool, slug: &str) -> flotilla::tenancy::SchemaName {
    let id = tenant(pool, slug, "enterprise").await;
    let schema =
        flotilla::tenancy::SchemaName::for_tenant(&flotilla::ids::TenantId::parse(&id).unwrap())
            .unwrap();
    sqlx::query("SELECT provision_tenant_schema($1)")
        .bind(schema.as_str())
        .execute(pool)
        .await
        .unwrap();
    schema
}

#[tokio::test]
async fn an_enterprise_schema_is_reachable_only_through_its_own_role() {
    let pool = fresh_database().await;
    let a = enterprise_schema(&pool, "ent-a").await;
    let b = enterprise_schema(&pool, "ent-b").await;
    let mut tx = db::schema_transaction(&pool, &a).await.unwrap();
    sqlx::query("INSERT INTO portfolios (user_id, name) VALUES ('u1', 'a-secret')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let read_a = format!("SELECT count(*) FROM {}.portfolios", a.as_str());
    let write_a = format!(
        "INSERT INTO {}.portfolios (user_id, name) VALUES ('x', 'x')",
        a.as_str()
    );
    let mut as_b = db::schema_transaction(&pool, &b).await.unwrap();
    let denied = sqlx::query_scalar::<_, i64>(&read_a)
        .fetch_one(&mut *as_b)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    drop(as_b);
    let mut as_b = db::schema_transaction(&pool, &b).await.unwrap();
    assert!(sqlx::query(&write_a).execute(&mut *as_b).await.is_err());
    drop(as_b);

    let shared_tenant = tenant(&pool, "shared", "pro").await;
    let mut as_shared = tenant_transaction(&pool, &shared_tenant).await.unwrap();
    let denied = sqlx::query_scalar::<_, i64>(&read_a)
        .fetch_one(&mut *as_shared)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    drop(as_shared);

    let mut as_a = db::schema_transaction(&pool, &a).await.unwrap();
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM portfolios")
        .fetch_one(&mut *as_a)
        .await
        .unwrap();
    assert_eq!(own, 1, "its own schema is on its search path");
}

#[tokio::test]
async fn provisioning_a_schema_twice_changes_nothing() {
    let pool = fresh_database().await;
    let a = enterprise_schema(&pool, "twice").await;
    sqlx::query("SELECT provision_tenant_schema($1)")
        .bind(a.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(a.as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 4);
}
