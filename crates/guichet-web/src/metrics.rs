//! Prometheus metrics, in the text exposition format: requests by method
//! and status class, their total duration, requests in flight.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::AppState;

const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "PUT", "DELETE"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; 5]; 5],
    duration_micros: AtomicU64,
    in_flight: AtomicU64,
}

pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let m = &state.metrics;
    let method = METHODS.iter().position(|x| *x == req.method().as_str());
    let start = std::time::Instant::now();
    m.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    m.in_flight.fetch_sub(1, Ordering::Relaxed);
    m.duration_micros.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    let class = (resp.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    if let Some(i) = method {
        m.requests[i][class].fetch_add(1, Ordering::Relaxed);
    }
    resp
}

impl Metrics {
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP guichet_http_requests_total HTTP requests answered.");
        let _ = writeln!(s, "# TYPE guichet_http_requests_total counter");
        let mut total = 0;
        for (i, m) in METHODS.iter().enumerate() {
            for (j, c) in CLASSES.iter().enumerate() {
                let n = self.requests[i][j].load(Ordering::Relaxed);
                total += n;
                if n > 0 {
                    let _ = writeln!(s, "guichet_http_requests_total{{method=\"{m}\",status=\"{c}\"}} {n}");
                }
            }
        }
        let _ = writeln!(s, "# HELP guichet_http_request_duration_seconds Time spent answering requests.");
        let _ = writeln!(s, "# TYPE guichet_http_request_duration_seconds summary");
        let secs = self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "guichet_http_request_duration_seconds_sum {secs}");
        let _ = writeln!(s, "guichet_http_request_duration_seconds_count {total}");
        let _ = writeln!(s, "# HELP guichet_http_requests_in_flight Requests being answered.");
        let _ = writeln!(s, "# TYPE guichet_http_requests_in_flight gauge");
        let _ = writeln!(s, "guichet_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        s
    }
}
