//! Tenant provisioning end to end: `serve` takes the request, a real
//! `flotilla-worker` on the provisioning queue runs the job, PostgreSQL and
//! Redis are real. Each test has its own database and namespace.

use std::time::Duration;

use flotilla::ids::{Namespace, TenantId};
use flotilla::queue::FairQueue;
use flotilla_tests::processes::{WorkerProcess, WorkerSpec, wait_for};
use flotilla_tests::producer::{ADMIN_KEY, Api, problem};
use flotilla_tests::{fresh_database_with_url, fresh_namespace, redis_url};
use serde_json::{Value, json};
use sqlx::PgPool;

const SCHEMAS_NAMED: &str = "SELECT count(*) FROM pg_namespace WHERE nspname = $1";
const KEYS_OF: &str = "SELECT count(*) FROM api_keys WHERE tenant_id = $1";
const PURGED_EVENTS: &str =
    "SELECT count(*) FROM tenant_events WHERE tenant_id = $1 AND kind = 'purged'";
const API_KEY_STEPS: &str =
    "SELECT count(*) FROM tenant_events WHERE tenant_id = $1 AND kind = 'step:api_key'";
const SHARED_PORTFOLIOS_OF: &str = "SELECT count(*) FROM portfolios WHERE tenant_id = $1";

/// An API and one provisioning worker on a fresh database and namespace.
struct Fleet {
    api: Api,
    pool: PgPool,
    db_url: String,
    ns: Namespace,
    worker: WorkerProcess,
}

fn provisioning_worker(ns: &Namespace, db_url: &str, name: &str) -> WorkerSpec {
    WorkerSpec::new(&redis_url(), ns, name)
        .env("QUEUES", "provisioning")
        .env("DATABASE_URL", db_url)
}

async fn fleet_with(
    api_env: &[(&str, &str)],
    worker: impl FnOnce(WorkerSpec) -> WorkerSpec,
) -> Fleet {
    let (pool, db_url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let api = Api::start_with_env(&ns, &db_url, api_env).await;
    let mut worker = worker(provisioning_worker(&ns, &db_url, "prov-1")).spawn();
    worker.wait_ready(Duration::from_secs(15)).await;
    Fleet {
        api,
        pool,
        db_url,
        ns,
        worker,
    }
}

async fn fleet() -> Fleet {
    fleet_with(&[], |w| w).await
}

impl Fleet {
    /// `POST /v1/tenants` with the admin key.
    async fn create(&self, body: Value) -> reqwest::Response {
        self.api
            .http
            .post(self.api.url("/v1/tenants"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .expect("the API answers")
    }

    /// Creates a tenant and returns its id.
    async fn created(&self, slug: &str, tier: &str) -> String {
        let response = self.create(json!({"slug": slug, "tier": tier})).await;
        assert_eq!(response.status().as_u16(), 202);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `PATCH /v1/tenants/{id}` with the admin key.
    async fn patch(&self, id: &str, body: Value) -> reqwest::Response {
        self.api
            .http
            .patch(self.api.url(&format!("/v1/tenants/{id}")))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .expect("the API answers")
    }

    /// Waits until the tenant's status is `status`.
    async fn wait_status(&self, id: &str, status: &str) {
        let log = self.worker.log_fn();
        wait_for(
            Duration::from_secs(60),
            &format!("tenant {id} to be {status}"),
            log,
            || async {
                let now: Option<String> =
                    sqlx::query_scalar("SELECT status::text FROM tenants WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .unwrap();
                (now.as_deref() == Some(status)).then_some(())
            },
        )
        .await;
    }

    /// Provisions a tenant to active and returns its id and API key.
    async fn active(&self, slug: &str, tier: &str) -> (String, String) {
        let id = self.created(slug, tier).await;
        self.wait_status(&id, "active").await;
        let shown: Value = self
            .api
            .get(&format!("/v1/tenants/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let key = shown["api_key"].as_str().expect("the key is shown once");
        (id, key.to_owned())
    }

    /// Waits until `sql` (a count with one text parameter) gives `expected`.
    async fn wait_count(&self, what: &str, sql: &str, arg: &str, expected: i64) {
        wait_for(
            Duration::from_secs(60),
            what,
            self.worker.log_fn(),
            || async { (self.count(sql, arg).await == expected).then_some(()) },
        )
        .await;
    }

    async fn count(&self, sql: &str, id: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn queue(&self, name: &str) -> FairQueue {
        flotilla_tests::queue_in(&self.ns, name).await
    }
}

#[tokio::test]
async fn a_starter_tenant_is_provisioned_to_active_with_its_rows_and_one_key_shown_once() {
    let fleet = fleet().await;
    let response = fleet
        .create(json!({"slug": "acme", "name": "Acme Capital", "tier": "starter"}))
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/tenants/{id}"));
    assert_eq!(body["status_url"], location);
    assert_eq!(body["status"], "pending");
    fleet.wait_status(&id, "active").await;

    let first: Value = fleet.api.get(&location).await.json().await.unwrap();
    let key = first["api_key"]
        .as_str()
        .expect("the first read shows the key");
    assert!(key.starts_with("flt_"), "{key}");
    assert_eq!(first["config"]["daily_enqueue_limit"], 10_000);
    let second: Value = fleet.api.get(&location).await.json().await.unwrap();
    assert!(
        second.get("api_key").is_none(),
        "the key is shown only once: {second}"
    );

    assert_eq!(fleet.count(KEYS_OF, &id).await, 1);
    assert_eq!(
        fleet.count(SHARED_PORTFOLIOS_OF, &id).await,
        1,
        "the tenant's default portfolio in the shared tables"
    );
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM tenant_events WHERE tenant_id = $1 AND kind LIKE 'step:%' ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&fleet.pool)
    .await
    .unwrap();
    let expected: Vec<String> = flotilla::tenancy::provision::STEPS[..6]
        .iter()
        .map(|s| format!("step:{s}"))
        .collect();
    assert_eq!(steps, expected);
    let own: Value = fleet.api.get_as(key, &location).await.json().await.unwrap();
    assert_eq!(
        own["id"],
        id.as_str(),
        "a tenant's key reads its own tenant"
    );
}

#[tokio::test]
async fn an_enterprise_tenant_gets_a_schema_and_role_named_after_its_id() {
    let fleet = fleet().await;
    let (id, _) = fleet.active("bigco", "enterprise").await;
    let schema = format!("t_{id}");
    let stored: Option<String> =
        sqlx::query_scalar("SELECT schema_name FROM tenants WHERE id = $1")
            .bind(&id)
            .fetch_one(&fleet.pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(schema.as_str()));
    assert_eq!(fleet.count(SCHEMAS_NAMED, &schema).await, 1);
    assert_eq!(
        fleet
            .count("SELECT count(*) FROM pg_roles WHERE rolname = $1", &schema)
            .await,
        1
    );
    let tables: i64 = fleet
        .count(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &schema,
        )
        .await;
    assert_eq!(tables, 4, "portfolios, positions, trades, market_data");
    assert_eq!(fleet.count(SHARED_PORTFOLIOS_OF, &id).await, 0);
    let in_schema: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.portfolios"))
        .fetch_one(&fleet.pool)
        .await
        .unwrap();
    assert_eq!(in_schema, 1, "its default portfolio lives in its schema");
}

#[tokio::test]
async fn repeating_a_create_returns_the_same_tenant_and_makes_nothing_new() {
    let fleet = fleet().await;
    let body = json!({"slug": "again", "tier": "pro", "config": {"max_in_flight": 3}});
    let first: Value = fleet.create(body.clone()).await.json().await.unwrap();
    let repeat = fleet.create(body).await;
    assert_eq!(repeat.status().as_u16(), 202);
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(repeat["id"], first["id"]);
    assert_eq!(repeat["job"], first["job"], "the same provisioning job");
    let id = first["id"].as_str().unwrap();
    fleet.wait_status(id, "active").await;
    assert_eq!(
        fleet
            .count("SELECT count(*) FROM tenants WHERE slug = $1", "again")
            .await,
        1
    );
    assert_eq!(fleet.count(KEYS_OF, id).await, 1);
}

#[tokio::test]
async fn a_slug_taken_with_other_settings_is_409() {
    let fleet = fleet().await;
    fleet.created("taken", "starter").await;
    let p = problem(
        fleet.create(json!({"slug": "taken", "tier": "pro"})).await,
        409,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("choose another slug"),
        "{p}"
    );
}

#[tokio::test]
async fn hostile_slugs_are_refused_with_422_and_hostile_names_stored_verbatim() {
    let fleet = fleet().await;
    for slug in [
        "a'b",
        "x; DROP SCHEMA public CASCADE",
        &"a".repeat(300),
        "tab\there",
        "аcme", // Cyrillic а: a lookalike of "acme"
        "",
        "UPPER",
    ] {
        let p = problem(
            fleet.create(json!({"slug": slug, "tier": "starter"})).await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["pointer"], "/slug", "{slug:?}: {p}");
    }
    for name in ["line\nbreak", "nul\u{0}", &"n".repeat(201)] {
        let p = problem(
            fleet
                .create(json!({"slug": "named", "name": name, "tier": "starter"}))
                .await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["pointer"], "/name", "{p}");
    }
    let hostile = "Robert'); DROP TABLE tenants;-- Ünïcødé 🚀";
    let body: Value = fleet
        .create(json!({"slug": "bobby", "name": hostile, "tier": "enterprise"}))
        .await
        .json()
        .await
        .unwrap();
    let id = body["id"].as_str().unwrap();
    fleet.wait_status(id, "active").await;
    let stored: String = sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_one(&fleet.pool)
        .await
        .unwrap();
    assert_eq!(stored, hostile);
    let bad_fields = problem(
        fleet
            .create(json!({"slug": "ok", "tier": "platinum", "color": "red", "config": {"x": 1}}))
            .await,
        422,
    )
    .await;
    let pointers: Vec<&str> = bad_fields["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/tier") && pointers.contains(&"/color"),
        "{bad_fields}"
    );
}

#[tokio::test]
async fn managing_tenants_needs_the_admin_key() {
    let fleet = fleet().await;
    let (a, key_a) = fleet.active("alpha", "starter").await;
    let b = fleet.created("beta", "starter").await;
    let create = fleet
        .api
        .http
        .post(fleet.api.url("/v1/tenants"))
        .bearer_auth(&key_a)
        .json(&json!({"slug": "sneaky", "tier": "enterprise"}))
        .send()
        .await
        .unwrap();
    let _ = problem(create, 403).await;
    let _ = problem(
        fleet.api.get_as(&key_a, &format!("/v1/tenants/{b}")).await,
        404,
    )
    .await;
    let _ = problem(fleet.api.get_as(&key_a, "/v1/tenants/beta").await, 404).await;
    let _ = problem(fleet.api.get_as(&key_a, "/v1/tenants").await, 403).await;
    assert_eq!(
        fleet
            .api
            .get_as(&key_a, &format!("/v1/tenants/{a}"))
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn an_upgrade_moves_the_tenant_to_its_schema_and_raises_its_weight_without_a_restart() {
    let fleet = fleet().await;
    let (id, key) = fleet.active("grower", "starter").await;
    let tenant = TenantId::parse(&id).unwrap();
    let bench = fleet.queue("bench").await;
    let before = bench.tenant_state(&tenant).await.unwrap().policy;
    assert_eq!((before.weight, before.cap), (1.0, 4));

    let response = fleet.patch(&id, json!({"tier": "enterprise"})).await;
    assert_eq!(response.status().as_u16(), 202);
    let log = fleet.worker.log_fn();
    wait_for(
        Duration::from_secs(30),
        "the upgrade to apply",
        log,
        || async {
            let policy = bench.tenant_state(&tenant).await.unwrap().policy;
            (policy.weight == 4.0 && policy.cap == 64).then_some(())
        },
    )
    .await;
    let schema = format!("t_{id}");
    let moved: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.portfolios"))
        .fetch_one(&fleet.pool)
        .await
        .unwrap();
    assert_eq!(moved, 1, "its rows moved into its schema");
    assert_eq!(fleet.count(SHARED_PORTFOLIOS_OF, &id).await, 0);
    let enqueued = fleet.api.post_as(&key, "bench", "{}", None).await;
    assert_eq!(enqueued.status().as_u16(), 202, "its key still works");

    let down = fleet.patch(&id, json!({"tier": "pro"})).await;
    assert_eq!(down.status().as_u16(), 202);
    let log = fleet.worker.log_fn();
    wait_for(
        Duration::from_secs(30),
        "the downgrade to apply",
        log,
        || async {
            let policy = bench.tenant_state(&tenant).await.unwrap().policy;
            (policy.weight == 2.0).then_some(())
        },
    )
    .await;
    fleet
        .wait_count("its schema to go", SCHEMAS_NAMED, &schema, 0)
        .await;
    assert_eq!(fleet.count(SHARED_PORTFOLIOS_OF, &id).await, 1);
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_enqueues_until_reactivated_and_reads_meanwhile() {
    let fleet = fleet().await;
    let (id, key) = fleet.active("napper", "pro").await;
    assert_eq!(
        fleet
            .patch(&id, json!({"status": "suspended"}))
            .await
            .status()
            .as_u16(),
        202
    );
    let p = problem(fleet.api.post_as(&key, "bench", "{}", None).await, 403).await;
    assert!(p["detail"].as_str().unwrap().contains("suspended"), "{p}");
    assert_eq!(
        fleet
            .api
            .get_as(&key, &format!("/v1/tenants/{id}"))
            .await
            .status()
            .as_u16(),
        200
    );
    let again = fleet.patch(&id, json!({"status": "suspended"})).await;
    assert_eq!(
        again.headers()["idempotent-replayed"],
        "true",
        "suspending twice changes nothing"
    );
    let by_admin = fleet
        .api
        .post("bench", format!(r#"{{"tenant": "{id}"}}"#), None)
        .await;
    let _ = problem(by_admin, 403).await;
    assert_eq!(
        fleet
            .patch(&id, json!({"status": "active"}))
            .await
            .status()
            .as_u16(),
        202
    );
    assert_eq!(
        fleet
            .api
            .post_as(&key, "bench", "{}", None)
            .await
            .status()
            .as_u16(),
        202
    );
}

#[tokio::test]
async fn enqueues_beyond_the_daily_limit_get_429_with_retry_after() {
    let fleet = fleet().await;
    let body: Value = fleet
        .create(json!({"slug": "thrifty", "tier": "starter", "config": {"daily_enqueue_limit": 2}}))
        .await
        .json()
        .await
        .unwrap();
    let id = body["id"].as_str().unwrap();
    fleet.wait_status(id, "active").await;
    let shown: Value = fleet
        .api
        .get(&format!("/v1/tenants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let key = shown["api_key"].as_str().unwrap();
    for n in 0..2 {
        let r = fleet
            .api
            .post_as(key, "bench", "{}", Some(&format!("k{n}")))
            .await;
        assert_eq!(r.status().as_u16(), 202);
    }
    let replay = fleet.api.post_as(key, "bench", "{}", Some("k0")).await;
    assert_eq!(
        replay.status().as_u16(),
        202,
        "a replay is not a new enqueue"
    );
    let over = fleet.api.post_as(key, "bench", "{}", None).await;
    let retry_after: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let p = problem(over, 429).await;
    assert!(p["detail"].as_str().unwrap().contains("2 enqueues"), "{p}");
    let admin = fleet
        .api
        .post("bench", format!(r#"{{"tenant": "{id}"}}"#), None)
        .await;
    assert_eq!(admin.status().as_u16(), 202, "the admin key is not limited");
}

#[tokio::test]
async fn a_deleted_tenants_key_stops_at_once_and_its_schema_is_purged_after_the_retention() {
    let fleet = fleet_with(&[("FLOTILLA_TENANT_RETENTION", "1s")], |w| w).await;
    let (id, key) = fleet.active("leaver", "enterprise").await;
    let response = fleet
        .api
        .http
        .delete(fleet.api.url(&format!("/v1/tenants/{id}")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let _ = problem(fleet.api.post_as(&key, "bench", "{}", None).await, 401).await;
    let schema = format!("t_{id}");
    fleet.wait_count("the purge", PURGED_EVENTS, &id, 1).await;
    assert_eq!(fleet.count(SCHEMAS_NAMED, &schema).await, 0);
    assert_eq!(fleet.count(KEYS_OF, &id).await, 0);
    let row: Value = fleet
        .api
        .get(&format!("/v1/tenants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        row["status"], "deleted",
        "the row stays, soft-deleted: {row}"
    );
}

#[tokio::test]
async fn a_tenant_whose_job_was_lost_with_redis_is_provisioned_by_the_reconciler() {
    // The API enqueues into a namespace no worker reads: the job is as good
    // as lost. A second API on the workers' namespace reconciles.
    let (pool, db_url) = fresh_database_with_url().await;
    let lost = fresh_namespace();
    let live = fresh_namespace();
    let orphaning = Api::start_with_database(&lost, &db_url).await;
    let body: Value = orphaning
        .http
        .post(orphaning.url("/v1/tenants"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"slug": "orphan", "tier": "pro"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let mut worker = provisioning_worker(&live, &db_url, "prov-r").spawn();
    worker.wait_ready(Duration::from_secs(15)).await;
    let _reconciling = Api::start_with_env(
        &live,
        &db_url,
        &[
            ("FLOTILLA_RECONCILE_EVERY", "200ms"),
            ("FLOTILLA_RECONCILE_AFTER", "0s"),
        ],
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "the reconciler to provision it",
        worker.log_fn(),
        || async {
            let status: String =
                sqlx::query_scalar("SELECT status::text FROM tenants WHERE id = $1")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (status == "active").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn provisioning_that_keeps_failing_marks_the_tenant_failed_and_a_replay_finishes_it() {
    let fleet = fleet().await;
    // Sabotage: enterprise provisioning cannot build a schema.
    sqlx::query(
        "ALTER FUNCTION provision_tenant_schema(text) RENAME TO provision_tenant_schema_away",
    )
    .execute(&fleet.pool)
    .await
    .unwrap();
    let id = fleet.created("doomed", "enterprise").await;
    fleet.wait_status(&id, "failed").await;
    let reason: String = sqlx::query_scalar("SELECT failure_reason FROM tenants WHERE id = $1")
        .bind(&id)
        .fetch_one(&fleet.pool)
        .await
        .unwrap();
    assert!(
        reason.contains("storage"),
        "the reason names the step: {reason}"
    );
    let provisioning = fleet.queue("provisioning").await;
    let dead = provisioning
        .dead_jobs(Some(&TenantId::parse(&id).unwrap()), 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "the job sits in the dead letter");

    sqlx::query(
        "ALTER FUNCTION provision_tenant_schema_away(text) RENAME TO provision_tenant_schema",
    )
    .execute(&fleet.pool)
    .await
    .unwrap();
    let replayed = provisioning.replay(&[dead[0].id]).await.unwrap();
    assert_eq!(replayed, vec![true]);
    fleet.wait_status(&id, "active").await;
    assert_eq!(fleet.count(KEYS_OF, &id).await, 1);
}

#[tokio::test]
async fn killing_the_worker_mid_provisioning_leaves_exactly_one_tenant_schema_and_key() {
    let fleet = fleet_with(&[], |w| {
        w.env("FLOTILLA_PROVISION_STEP_PAUSE", "400ms")
            .env("FLOTILLA_LEASE", "2s")
    })
    .await;
    let id = fleet.created("phoenix", "enterprise").await;
    fleet
        .wait_count("the api_key step", API_KEY_STEPS, &id, 1)
        .await;
    let pool = fleet.pool.clone();
    let mut crashed = fleet.worker;
    crashed.signal("KILL");
    crashed.wait_exit(Duration::from_secs(10)).await;

    let mut successor = provisioning_worker(&fleet.ns, &fleet.db_url, "prov-2")
        .env("FLOTILLA_LEASE", "2s")
        .spawn();
    successor.wait_ready(Duration::from_secs(15)).await;
    wait_for(
        Duration::from_secs(60),
        "the retry to finish the tenant",
        successor.log_fn(),
        || async {
            let status: String =
                sqlx::query_scalar("SELECT status::text FROM tenants WHERE id = $1")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (status == "active").then_some(())
        },
    )
    .await;
    let schema = format!("t_{id}");
    let count = |sql: &'static str, arg: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(arg)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count(
            "SELECT count(*) FROM tenants WHERE slug = $1",
            "phoenix".into()
        )
        .await,
        1
    );
    assert_eq!(count(SCHEMAS_NAMED, schema.clone()).await, 1);
    assert_eq!(count(KEYS_OF, id.clone()).await, 1);
    let portfolios: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.portfolios"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        portfolios, 1,
        "the default portfolio once, not once per attempt"
    );
}

#[tokio::test]
async fn queue_depth_is_reported_per_tier_without_tenant_labels() {
    let fleet = fleet().await;
    let (_, key) = fleet.active("deep", "pro").await;
    let mut bench = WorkerSpec::new(&redis_url(), &fleet.ns, "bench-1")
        .env("WORKER_CONCURRENCY", "1")
        .env("WORKER_PREFETCH", "0")
        .spawn();
    bench.wait_ready(Duration::from_secs(15)).await;
    for _ in 0..4 {
        let r = fleet
            .api
            .post_as(&key, "bench", r#"{"payload": {"sleep_ms": 20000}}"#, None)
            .await;
        assert_eq!(r.status().as_u16(), 202);
    }
    let port = bench.port;
    let text = wait_for(
        Duration::from_secs(20),
        "the per-tier gauge",
        bench.log_fn(),
        || async move {
            let (_, text) = flotilla_tests::processes::http_get(port, "/metrics")
                .await
                .ok()?;
            text.contains(r#"flotilla_queue_pending_by_tier{queue="bench",tier="pro"} 3"#)
                .then_some(text)
        },
    )
    .await;
    assert!(
        text.contains(r#"flotilla_queue_pending_by_tier{queue="bench",tier="starter"} 0"#),
        "every tier has a series"
    );
    assert!(!text.contains("tenant="), "no tenant labels");
}
