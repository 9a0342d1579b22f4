//! User connect end to end: a real `flotilla-worker` on the `connect`
//! queue, real Redis and PostgreSQL, session hosts that are real HTTP
//! servers on loopback. Hosts fail, die and drain; users end up connected
//! once, somewhere live, or failed with the host's reason.

use std::time::{Duration, Instant};

use flotilla::connect::{hosts, sweep};
use flotilla::job::JobState;
use flotilla_tests::connect::*;
use flotilla_tests::processes::{http_get, wait_for, wait_state};
use flotilla_tests::{fresh_database_with_url, fresh_namespace, tenant_with_key};

#[tokio::test]
async fn a_host_that_dies_has_all_its_users_moved_within_a_heartbeat_timeout_and_a_job_run() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = connect_queue(&ns).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let mut fleet = Fleet::start(&pool, 3, 40).await;
    let worker = connect_worker(&ns, &url, "w1").spawn();
    request_connects(&pool, &queue, &acme, 30).await;
    wait_connected(&pool, 30, Duration::from_secs(30), worker.log_fn()).await;
    assert_eq!(
        connected_by_host(&pool).await,
        vec![
            ("host-0".into(), 10),
            ("host-1".into(), 10),
            ("host-2".into(), 10)
        ]
    );

    let died = Instant::now();
    fleet.kill(1).await;
    // The bound the issue sets: one heartbeat timeout, then one sweep and
    // one job run each (8 s is a loaded machine's allowance for those).
    wait_for(
        HEARTBEAT_TIMEOUT + Duration::from_secs(8),
        "host-1's users on other hosts",
        worker.log_fn(),
        || async {
            (connected_by_host(&pool).await
                == vec![("host-0".to_owned(), 15), ("host-2".to_owned(), 15)])
            .then_some(())
        },
    )
    .await;
    let took = died.elapsed();
    eprintln!(
        "host-1's 10 users moved {took:?} after it died (heartbeat timeout {HEARTBEAT_TIMEOUT:?})"
    );
    assert_eq!(
        fleet.sim(0).held() + fleet.sim(2).held(),
        30,
        "the live hosts hold everyone"
    );
    assert_eq!(loads(&pool).await[1], ("host-1".to_owned(), 0));
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM session_hosts WHERE id = 'host-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "offline");
    let (_, metrics) = http_get(worker.port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("flotilla_connect_moves_total 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flotilla_session_hosts{status=\"offline\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_host_answering_500_then_200_gets_the_user_once() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = connect_queue(&ns).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 1, 10).await;
    fleet
        .sim(0)
        .answer_next([(500, "session store warming up".to_owned())]);
    let worker = connect_worker(&ns, &url, "w1").spawn();
    let job = request_connects(&pool, &queue, &acme, 1).await[0];

    let done = wait_state(
        &queue,
        job,
        JobState::Done,
        Duration::from_secs(30),
        worker.log_fn(),
    )
    .await;
    assert_eq!(done.attempts, 2, "one retry after the 500");
    assert_eq!(fleet.sim(0).calls(), 2);
    assert_eq!(
        fleet.sim(0).accepted(acme.as_str(), "u-0"),
        1,
        "the host got the user once"
    );
    let shown = flotilla::connect::users::find(&pool, &acme, &user(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (shown.state.as_str(), shown.host.as_deref()),
        ("connected", Some("host-0"))
    );
}

#[tokio::test]
async fn a_host_answering_400_sends_the_job_to_the_dead_letter_with_its_message() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = connect_queue(&ns).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 1, 10).await;
    fleet
        .sim(0)
        .answer_next([(400, "user u-0 has no broker credentials".to_owned())]);
    let worker = connect_worker(&ns, &url, "w1").spawn();
    let job = request_connects(&pool, &queue, &acme, 1).await[0];

    let dead = wait_state(
        &queue,
        job,
        JobState::Dead,
        Duration::from_secs(30),
        worker.log_fn(),
    )
    .await;
    assert_eq!(dead.attempts, 1, "a 4xx is not retried");
    let error = dead.last_error.unwrap();
    assert!(
        error.contains("400") && error.contains("has no broker credentials"),
        "{error}"
    );
    let shown = flotilla::connect::users::find(&pool, &acme, &user(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.state.as_str(), "failed");
    assert!(shown.reason.unwrap().contains("has no broker credentials"));
    assert_eq!(
        loads(&pool).await,
        vec![("host-0".into(), 0)],
        "a failed user holds no place"
    );
}

#[tokio::test]
async fn a_draining_host_gets_no_new_users_and_its_users_move_off() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = connect_queue(&ns).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 2, 20).await;
    let worker = connect_worker(&ns, &url, "w1").spawn();
    request_connects(&pool, &queue, &acme, 10).await;
    wait_connected(&pool, 10, Duration::from_secs(30), worker.log_fn()).await;

    let host0 = "host-0".parse().unwrap();
    hosts::drain(&pool, &host0, HEARTBEAT_TIMEOUT)
        .await
        .unwrap()
        .unwrap();
    let moves = sweep::enqueue_moves(&pool, &queue, Some(&host0))
        .await
        .unwrap();
    assert_eq!(moves, 5);
    wait_for(
        Duration::from_secs(30),
        "host-0 emptied",
        worker.log_fn(),
        || async {
            (connected_by_host(&pool).await == vec![("host-1".to_owned(), 10)]).then_some(())
        },
    )
    .await;
    // Make before break: the draining host was told to let them go.
    assert_eq!(fleet.sim(0).held(), 0);
    assert_eq!(fleet.sim(1).held(), 10);
    // New users go elsewhere too.
    for i in 10..13 {
        flotilla::connect::users::connect(&pool, &queue, &acme, &user(i))
            .await
            .unwrap();
    }
    wait_for(
        Duration::from_secs(30),
        "3 more users connected",
        worker.log_fn(),
        || async {
            (connected_by_host(&pool).await == vec![("host-1".to_owned(), 13)]).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn without_free_capacity_a_connect_waits_is_counted_and_lands_when_a_host_joins() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = connect_queue(&ns).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let _one = Fleet::start(&pool, 1, 1).await;
    let worker = connect_worker(&ns, &url, "w1").spawn();
    request_connects(&pool, &queue, &acme, 2).await;
    wait_for(
        Duration::from_secs(30),
        "a no-capacity retry counted",
        worker.log_fn(),
        || async {
            let (_, metrics) = http_get(worker.port, "/metrics").await.ok()?;
            let line = metrics
                .lines()
                .find(|l| l.starts_with("flotilla_connect_no_capacity_total "))?;
            (line != "flotilla_connect_no_capacity_total 0").then_some(())
        },
    )
    .await;
    let waiting = flotilla::connect::users::find(&pool, &acme, &user(1))
        .await
        .unwrap()
        .unwrap();
    let waiting = if waiting.state.as_str() == "connected" {
        flotilla::connect::users::find(&pool, &acme, &user(0))
            .await
            .unwrap()
            .unwrap()
    } else {
        waiting
    };
    assert_eq!(waiting.state.as_str(), "assigning");
    assert!(
        waiting
            .reason
            .unwrap()
            .contains("no live session host has free capacity")
    );

    // Another host registers: the retry lands there.
    let _more = Fleet::start_named(&pool, "extra", 1, 5).await;
    wait_connected(&pool, 2, Duration::from_secs(60), worker.log_fn()).await;
}

#[tokio::test]
async fn a_user_whose_job_was_lost_is_re_enqueued_by_the_sweep() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 1, 10).await;
    // A request stored, its job lost with Redis: only the row remains.
    sqlx::query(
        "INSERT INTO user_connections (tenant_id, user_id, want, state, updated_at) \
         VALUES ($1, 'u-0', 'connected', 'assigning', now() - interval '1 hour')",
    )
    .bind(acme.as_str())
    .execute(&pool)
    .await
    .unwrap();
    let worker = connect_worker(&ns, &url, "w1")
        .env("FLOTILLA_CONNECT_STUCK_AFTER", "1s")
        .spawn();
    wait_connected(&pool, 1, Duration::from_secs(30), worker.log_fn()).await;
    assert!(fleet.sim(0).holds(acme.as_str(), "u-0"));
}
