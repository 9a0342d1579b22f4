//! A session host simulator: a real HTTP server on loopback that takes
//! `/connect` and `/disconnect` as a session host would, verifies the
//! fleet's signature, and counts what it holds. The benchmark's peer and
//! the tests'; it can be told to answer with errors first, or to die.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio_util::sync::CancellationToken;

use super::{Endpoint, signature};

#[derive(Debug, Default)]
struct Book {
    /// Users held now, by `tenant/user`.
    held: HashSet<String>,
    /// Connects accepted per user, ever.
    accepted: HashMap<String, u32>,
    /// Answers to give to the next calls before the normal 200.
    script: VecDeque<(u16, String)>,
    calls: u64,
    bad_signatures: u64,
}

#[derive(Debug)]
struct Shared {
    secret: Option<String>,
    book: Mutex<Book>,
}

/// A running simulated host.
#[derive(Debug)]
pub struct SimHost {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

#[derive(serde::Deserialize)]
struct CallBody {
    tenant: String,
    user: String,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks the call and the script; the answer to give, or the user's key.
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<String, (StatusCode, String)> {
    let mut book = shared.book.lock().expect("the book is never poisoned");
    book.calls += 1;
    if let Some(secret) = &shared.secret {
        let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
        if let Err(e) = signature::verify(secret, header, body, now_secs()) {
            book.bad_signatures += 1;
            return Err((StatusCode::UNAUTHORIZED, e.to_string()));
        }
    }
    if let Some((status, message)) = book.script.pop_front() {
        return Err((
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ));
    }
    let call: CallBody = serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad body: {e}")))?;
    Ok(format!("{}/{}", call.tenant, call.user))
}

async fn connect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    match admit(&shared, &headers, &body) {
        Ok(key) => {
            let mut book = shared.book.lock().expect("the book is never poisoned");
            // Holding a user twice is still holding them once.
            if book.held.insert(key.clone()) {
                *book.accepted.entry(key).or_default() += 1;
            }
            (StatusCode::OK, "connected".into())
        }
        Err(answer) => answer,
    }
}

async fn disconnect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    match admit(&shared, &headers, &body) {
        Ok(key) => {
            let mut book = shared.book.lock().expect("the book is never poisoned");
            if book.held.remove(&key) {
                (StatusCode::OK, "disconnected".into())
            } else {
                (StatusCode::NOT_FOUND, "not held here".into())
            }
        }
        Err(answer) => answer,
    }
}

impl SimHost {
    /// Starts a host on a free loopback port; it verifies signatures made
    /// with `secret` when given.
    pub async fn start(secret: Option<String>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            secret,
            book: Mutex::new(Book::default()),
        });
        let app = Router::new()
            .route("/connect", post(connect))
            .route("/disconnect", post(disconnect))
            .with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// Where the fleet calls it.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("http://{}", self.addr)).expect("a loopback URL is an endpoint")
    }

    /// The next calls get these answers (status, message), in order,
    /// before the host answers normally again.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = (u16, String)>) {
        self.book().script.extend(answers);
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.shared.book.lock().expect("the book is never poisoned")
    }

    /// Users held now.
    pub fn held(&self) -> usize {
        self.book().held.len()
    }

    /// Whether it holds `user` of `tenant`.
    pub fn holds(&self, tenant: &str, user: &str) -> bool {
        self.book().held.contains(&format!("{tenant}/{user}"))
    }

    /// How many times it accepted `user` of `tenant` while not holding them.
    pub fn accepted(&self, tenant: &str, user: &str) -> u32 {
        self.book()
            .accepted
            .get(&format!("{tenant}/{user}"))
            .copied()
            .unwrap_or(0)
    }

    /// Calls received, answered or not.
    pub fn calls(&self) -> u64 {
        self.book().calls
    }

    /// Calls refused for a bad or missing signature.
    pub fn bad_signatures(&self) -> u64 {
        self.book().bad_signatures
    }

    /// Dies: stops listening and closes its connections, so calls are
    /// refused from now on.
    pub async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!(addr = %self.addr, "a simulated host took over 5 s to stop");
        }
    }
}
