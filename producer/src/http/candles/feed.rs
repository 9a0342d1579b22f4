//! `POST /v1/candles` (admin key): a market-data feed reports a closed
//! candle; it is stored (once) and every active strategy on its market gets
//! its job for the interval, under its own tenant, once however many times
//! the candle is posted. 202 with what happened; 422 for a bad candle, one
//! older than FLOTILLA_CANDLE_HORIZON, or one not closed yet.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flotilla::candles::feed::{self, Closed};
use flotilla::candles::{Candle, Resolution, Symbol};
use flotilla::kinds::JobKind;
use flotilla::kinds::candles::Candles;
use serde::Deserialize;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::read_json;

/// A close time as feeds send it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CloseTime {
    /// Milliseconds since the epoch.
    Millis(i64),
    /// RFC 3339.
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandleBody {
    symbol: Symbol,
    resolution: Resolution,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    close_time: CloseTime,
}

const EXAMPLE: &str = r#"{"symbol": "BTCUSDT", "resolution": "5m", "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 10, "close_time": "2026-11-22T10:05:00Z"}"#;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `POST /v1/candles`.
pub async fn post(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let body: CandleBody = read_json(&headers, body, EXAMPLE)?;
    let close_ms = match &body.close_time {
        CloseTime::Millis(ms) => *ms,
        CloseTime::Text(text) => sqlx::types::chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|_| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("close_time {text:?} is not a time: give RFC 3339 (2026-11-22T10:05:00Z) or milliseconds since the epoch"),
                )
            })?,
    };
    let candle = Candle {
        close_ms,
        open: body.open,
        high: body.high,
        low: body.low,
        close: body.close,
        volume: body.volume,
    };
    candle
        .check()
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let closed = Closed::new(body.symbol, body.resolution, close_ms, candle);
    let queue = state
        .queues
        .get(Candles::QUEUE)
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match feed::ingest(
        &state.db,
        queue,
        &closed,
        state.candles.candle_horizon,
        now_ms(),
    )
    .await
    {
        Ok(done) => {
            metrics::counter!(flotilla::telemetry::names::JOBS_ENQUEUED, "queue" => Candles::QUEUE)
                .increment(done.jobs.enqueued as u64);
            Ok((StatusCode::ACCEPTED, Json(done)).into_response())
        }
        Err(e) if e.is_input() => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
        Err(e) => Err(Problem::unavailable(e)),
    }
}
