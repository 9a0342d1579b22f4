//! Assigning users to session hosts, at the library level: real
//! PostgreSQL, real HTTP hosts on loopback, many jobs at once. The pick is
//! exact: concurrent connects never overfill a host and spread evenly.

use std::time::Duration;

use flotilla::connect::host_client::HostClient;
use flotilla::connect::run::{Connector, Done, RunError};
use flotilla::connect::users;
use flotilla_tests::connect::{
    Fleet, HEARTBEAT_TIMEOUT, SECRET, connect_queue, count, loads, user,
};
use flotilla_tests::{fresh_database, fresh_namespace, tenant_with_key};

fn connector(pool: &sqlx::PgPool) -> Connector {
    Connector::new(
        pool.clone(),
        HostClient::new(Duration::from_secs(5), Some(SECRET.into())),
        HEARTBEAT_TIMEOUT,
    )
}

#[tokio::test]
async fn two_hundred_concurrent_connects_onto_hosts_of_capacity_50_never_overfill_one() {
    let pool = fresh_database().await;
    let queue = connect_queue(&fresh_namespace()).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    // Four hosts of 50: room for exactly 200; 20 users more than that.
    let fleet = Fleet::start(&pool, 4, 50).await;
    for i in 0..220 {
        users::connect(&pool, &queue, &acme, &user(i))
            .await
            .unwrap();
    }
    let connector = connector(&pool);
    let runs = (0..220).map(|i| {
        let (connector, acme) = (connector.clone(), acme.clone());
        tokio::spawn(async move { connector.connect(&acme, &user(i), None).await })
    });
    let outcomes = futures::future::join_all(runs).await;
    let connected = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), Ok(Done::Connected { .. })))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), Err(RunError::NoCapacity)))
        .count();
    assert_eq!((connected, refused), (200, 20), "{outcomes:?}");
    let expected: Vec<(String, i32)> = (0..4).map(|i| (format!("host-{i}"), 50)).collect();
    assert_eq!(loads(&pool).await, expected);
    for i in 0..4 {
        assert_eq!(
            fleet.sim(i).held(),
            50,
            "host-{i} holds what the database says"
        );
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM user_connections WHERE state = 'assigning' AND host_id IS NULL"
        )
        .await,
        20,
        "the users without a place wait for one"
    );
}

#[tokio::test]
async fn users_are_spread_evenly_over_hosts_of_different_sizes() {
    let pool = fresh_database().await;
    let queue = connect_queue(&fresh_namespace()).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let _small = Fleet::start(&pool, 2, 100).await;
    // A host twice the size takes twice the users: the pick goes by the
    // share of capacity in use.
    flotilla::connect::hosts::register(
        &pool,
        &flotilla::connect::hosts::Registration {
            id: "host-big".parse().unwrap(),
            endpoint: _small.sim(0).endpoint(),
            capacity: 200,
            region: "test".parse().unwrap(),
        },
        HEARTBEAT_TIMEOUT,
    )
    .await
    .unwrap();
    let connector = connector(&pool);
    for i in 0..80 {
        users::connect(&pool, &queue, &acme, &user(i))
            .await
            .unwrap();
        connector.connect(&acme, &user(i), None).await.unwrap();
    }
    assert_eq!(
        loads(&pool).await,
        vec![
            ("host-0".into(), 20),
            ("host-1".into(), 20),
            ("host-big".into(), 40)
        ]
    );
}

#[tokio::test]
async fn connecting_a_connected_user_changes_nothing() {
    let pool = fresh_database().await;
    let queue = connect_queue(&fresh_namespace()).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 2, 10).await;
    let first = users::connect(&pool, &queue, &acme, &user(1))
        .await
        .unwrap();
    assert!(first.job.is_some());
    let connector = connector(&pool);
    let Done::Connected { host, .. } = connector.connect(&acme, &user(1), None).await.unwrap()
    else {
        panic!("the first job connects");
    };

    let again = users::connect(&pool, &queue, &acme, &user(1))
        .await
        .unwrap();
    assert_eq!(again.job, None, "no job for a connected user");
    assert_eq!(
        connector.connect(&acme, &user(1), None).await.unwrap(),
        Done::AlreadyConnected(host),
        "a repeated job does nothing"
    );
    let calls: u64 = (0..2).map(|i| fleet.sim(i).calls()).sum();
    assert_eq!(calls, 1, "the host was called once");
    assert_eq!(fleet.held(), 1);
    assert_eq!(
        count(&pool, "SELECT sum(load)::bigint FROM session_hosts").await,
        1
    );
}

#[tokio::test]
async fn a_disconnect_frees_the_place_and_a_stale_connect_job_then_does_nothing() {
    let pool = fresh_database().await;
    let queue = connect_queue(&fresh_namespace()).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 1, 10).await;
    users::connect(&pool, &queue, &acme, &user(1))
        .await
        .unwrap();
    let connector = connector(&pool);
    connector.connect(&acme, &user(1), None).await.unwrap();
    assert!(fleet.sim(0).holds(acme.as_str(), "u-1"));

    let asked = users::disconnect(&pool, &queue, &acme, &user(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asked.connection.state.as_str(), "disconnecting");
    assert!(asked.job.is_some());
    // The connect job, late, sees the user asked otherwise since.
    assert!(matches!(
        connector.connect(&acme, &user(1), None).await.unwrap(),
        Done::Stale(_)
    ));
    assert_eq!(
        connector.disconnect(&acme, &user(1)).await.unwrap(),
        Done::Disconnected
    );
    assert!(!fleet.sim(0).holds(acme.as_str(), "u-1"));
    assert_eq!(loads(&pool).await, vec![("host-0".into(), 0)]);
    let shown = users::find(&pool, &acme, &user(1)).await.unwrap().unwrap();
    assert_eq!((shown.state.as_str(), shown.host), ("disconnected", None));
}

#[tokio::test]
async fn calls_to_hosts_are_signed_with_the_shared_secret() {
    let pool = fresh_database().await;
    let queue = connect_queue(&fresh_namespace()).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let fleet = Fleet::start(&pool, 1, 10).await;
    users::connect(&pool, &queue, &acme, &user(1))
        .await
        .unwrap();
    // A worker with another secret is refused (401, a 4xx: final).
    let wrong = Connector::new(
        pool.clone(),
        HostClient::new(Duration::from_secs(5), Some("not-the-secret".into())),
        HEARTBEAT_TIMEOUT,
    );
    let err = wrong.connect(&acme, &user(1), None).await.unwrap_err();
    assert!(
        matches!(err, RunError::Refused { status: 401, .. }),
        "{err}"
    );
    assert_eq!(fleet.sim(0).bad_signatures(), 1);
    assert_eq!(fleet.held(), 0);
}

#[tokio::test]
async fn a_user_on_a_draining_host_stays_there_until_another_host_has_room() {
    let pool = fresh_database().await;
    let queue = connect_queue(&fresh_namespace()).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let first = Fleet::start(&pool, 1, 1).await;
    users::connect(&pool, &queue, &acme, &user(0))
        .await
        .unwrap();
    let connector = connector(&pool);
    connector.connect(&acme, &user(0), None).await.unwrap();
    let host0: flotilla::ids::HostId = "host-0".parse().unwrap();
    flotilla::connect::hosts::drain(&pool, &host0, HEARTBEAT_TIMEOUT)
        .await
        .unwrap();

    let err = connector
        .connect(&acme, &user(0), Some(&host0))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::NoCapacity), "{err}");
    let shown = users::find(&pool, &acme, &user(0)).await.unwrap().unwrap();
    assert_eq!(
        (shown.state.as_str(), shown.host.as_deref()),
        ("connected", Some("host-0")),
        "still held by the draining host"
    );
    assert!(first.sim(0).holds(acme.as_str(), "u-0"));

    let second = Fleet::start_named(&pool, "new", 1, 1).await;
    let moved = connector
        .connect(&acme, &user(0), Some(&host0))
        .await
        .unwrap();
    assert_eq!(
        moved,
        Done::Connected {
            host: "new-0".parse().unwrap(),
            left: Some(host0)
        }
    );
    assert!(second.sim(0).holds(acme.as_str(), "u-0"));
    assert!(
        !first.sim(0).holds(acme.as_str(), "u-0"),
        "the draining host let go after the new one took the user"
    );
}
