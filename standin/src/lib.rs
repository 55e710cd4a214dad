//! A stand-in for the Loader and the Annotations services (spec A9), for tests.
//!
//! One HTTP server answers both services' routes, records every call, and obeys
//! control rules (fail, hang, delay) set over HTTP under `/_standin` or through
//! [`StandIn`]'s methods. See `standin/README.md` for the routes.
//!
//! ```no_run
//! use standin::{StandIn, StandInConfig};
//! let loader = StandIn::start(StandInConfig {
//!     models_dir: "assets/fixtures".into(),
//!     bind: "127.0.0.1:0".parse().unwrap(),
//! })
//! .unwrap();
//! loader.fail("/load", 503, Some(1));
//! println!("LOADER_URL={}", loader.url());
//! ```

mod routes;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use routes::router;
use serde_json::Value;
pub use state::{Action, Call, Rule, Shared, Verdict, default_token, jwt};

/// Where the stand-in serves models from and where it listens.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// `/load/{name}` reads `<models_dir>/<name>`; `/upload/{name}` writes there.
    pub models_dir: PathBuf,
    /// `127.0.0.1:0` picks a free port; see [`StandIn::url`].
    pub bind: SocketAddr,
}

/// A running stand-in. It owns its own tokio runtime, so it works the same from a
/// plain `#[test]` and from inside an async test; dropping it stops it.
pub struct StandIn {
    address: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl StandIn {
    /// Binds, then serves on a runtime of its own until [`StandIn::stop`] or drop.
    pub fn start(config: StandInConfig) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(config.bind)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("standin")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::new(config.models_dir));
        let app = router(Arc::clone(&shared));
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("standin: server stopped: {e}");
            }
        });
        Ok(Self {
            address,
            shared,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The shared state, for anything the helpers below do not cover.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls("")
    }

    /// The calls whose path starts with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> Vec<Call> {
        self.shared.calls(prefix)
    }

    /// Answer `status` to requests under `prefix`, `times` times (`None`: always).
    pub fn fail(&self, prefix: &str, status: u16, times: Option<u32>) {
        self.rule(prefix, Action::Fail { status }, times);
    }

    /// Never answer requests under `prefix`, `times` times (`None`: always).
    pub fn hang(&self, prefix: &str, times: Option<u32>) {
        self.rule(prefix, Action::Hang, times);
    }

    /// Wait `delay` before answering requests under `prefix`, `times` times.
    pub fn delay(&self, prefix: &str, delay: Duration, times: Option<u32>) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.rule(prefix, Action::Delay { millis }, times);
    }

    fn rule(&self, prefix: &str, action: Action, times: Option<u32>) {
        self.shared.add_rule(Rule {
            path_prefix: prefix.to_string(),
            action,
            times,
        });
    }

    /// Presets a media record that `GET /api/media/{id}` returns.
    pub fn set_media(&self, id: &str, path: &str) {
        self.shared
            .put_media(id, serde_json::json!({ "id": id, "path": path }));
    }

    /// The stored media record, as created by the service or preset.
    pub fn media(&self, id: &str) -> Option<Value> {
        self.shared.media(id)
    }

    /// What `GET /api/users/{id}/ai-settings` answers.
    pub fn set_settings(&self, settings: Value) {
        self.shared.set_settings(settings);
    }

    /// What `POST /auth/refresh` hands out.
    pub fn set_token(&self, token: &str) {
        self.shared.set_token(token.to_string());
    }

    /// Forgets calls, rules, media, settings and the configured token.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops serving: the listener and every open connection go away, so later
    /// connections are refused. Idempotent.
    pub fn stop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        // Usable from async code too (a plain drop of a runtime would panic there).
        runtime.shutdown_background();
        // The workers drop the listener as they wind down; wait until it is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && std::net::TcpStream::connect_timeout(&self.address, Duration::from_millis(100))
                .is_ok()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests;
