//! What the stand-in remembers: the calls it received, the control rules, the media
//! records, the user settings and the token it hands out on refresh.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One request as the stand-in received it (control calls under `/_standin` excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Every header, names lower-case; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body when it parses as JSON, else null.
    pub body: Option<Value>,
    /// The body's length in bytes.
    pub body_len: usize,
}

impl Call {
    /// A header's value by its (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The `Idempotency-Key` header: the same on every attempt to deliver one
    /// annotation, so a test can count annotations apart from retries.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
    }
}

/// What a rule does to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Answer this status (with a `{"detail": …}` body) instead of the real answer.
    Fail { status: u16 },
    /// Never answer.
    Hang,
    /// Wait this long, then go on.
    Delay { millis: u64 },
}

/// A control rule: applies to requests whose path starts with `path_prefix`,
/// `times` more times (`None`: always); it disappears when the count reaches 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub path_prefix: String,
    #[serde(flatten)]
    pub action: Action,
    pub times: Option<u32>,
}

/// What the rules say about one request; at most one rule of each kind applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub delay: Option<Duration>,
    pub hang: bool,
    pub fail: Option<u16>,
}

/// `alg: none` JWT with the given claims: decodable, not verifiable, as the
/// service only decodes tokens (spec A9).
pub fn jwt(claims: &Value) -> String {
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(claims.to_string().as_bytes());
    format!("{header}.{payload}.{}", base64url(b"standin"))
}

/// The token `POST /auth/refresh` hands out unless configured otherwise: user
/// `standin-user`, expiring in 2100.
pub fn default_token() -> String {
    jwt(&serde_json::json!({"nameid": "standin-user", "exp": 4_102_444_800u64}))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[derive(Debug)]
struct Inner {
    calls: Vec<Call>,
    rules: Vec<Rule>,
    media: HashMap<String, Value>,
    settings: Value,
    token: String,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            calls: Vec::new(),
            rules: Vec::new(),
            media: HashMap::new(),
            settings: Value::Object(Default::default()),
            token: default_token(),
        }
    }
}

/// The state shared by the server's handlers and the test's handle.
#[derive(Debug)]
pub struct Shared {
    models_dir: PathBuf,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(models_dir: PathBuf) -> Self {
        Self {
            models_dir,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `/load` reads and `/upload` writes.
    pub fn models_dir(&self) -> &PathBuf {
        &self.models_dir
    }

    pub fn record(&self, call: Call) {
        self.lock().calls.push(call);
    }

    /// Every call so far whose path starts with `prefix`, in arrival order.
    pub fn calls(&self, prefix: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn add_rule(&self, rule: Rule) {
        if rule.times != Some(0) {
            self.lock().rules.push(rule);
        }
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.lock().rules.clone()
    }

    /// Applies the rules to a request for `path`: the first matching rule of each
    /// kind counts down (and goes when it reaches 0).
    pub fn verdict(&self, path: &str) -> Verdict {
        let mut inner = self.lock();
        let mut verdict = Verdict::default();
        let mut used = [false; 3];
        inner.rules.retain_mut(|rule| {
            if !path.starts_with(&rule.path_prefix) {
                return true;
            }
            let kind = match rule.action {
                Action::Delay { millis } => {
                    if used[0] {
                        return true;
                    }
                    verdict.delay = Some(Duration::from_millis(millis));
                    0
                }
                Action::Hang => {
                    if used[1] {
                        return true;
                    }
                    verdict.hang = true;
                    1
                }
                Action::Fail { status } => {
                    if used[2] {
                        return true;
                    }
                    verdict.fail = Some(status);
                    2
                }
            };
            used[kind] = true;
            match &mut rule.times {
                None => true,
                Some(n) => {
                    *n = n.saturating_sub(1);
                    *n > 0
                }
            }
        });
        verdict
    }

    /// Stores a media record; `record` must carry its id.
    pub fn put_media(&self, id: &str, record: Value) {
        self.lock().media.insert(id.to_string(), record);
    }

    pub fn media(&self, id: &str) -> Option<Value> {
        self.lock().media.get(id).cloned()
    }

    /// Sets `key` on a stored media record; false when there is no such record.
    pub fn update_media(&self, id: &str, key: &str, value: Value) -> bool {
        match self.lock().media.get_mut(id) {
            Some(Value::Object(record)) => {
                record.insert(key.to_string(), value);
                true
            }
            _ => false,
        }
    }

    pub fn settings(&self) -> Value {
        self.lock().settings.clone()
    }

    pub fn set_settings(&self, settings: Value) {
        self.lock().settings = settings;
    }

    pub fn token(&self) -> String {
        self.lock().token.clone()
    }

    pub fn set_token(&self, token: String) {
        self.lock().token = token;
    }

    /// Forgets calls, rules, media, settings and the configured token.
    pub fn reset(&self) {
        *self.lock() = Inner::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, action: Action, times: Option<u32>) -> Rule {
        Rule {
            path_prefix: prefix.into(),
            action,
            times,
        }
    }

    #[test]
    fn a_counted_rule_applies_n_times_then_disappears() {
        let shared = Shared::new(PathBuf::new());
        shared.add_rule(rule("/load", Action::Fail { status: 503 }, Some(2)));
        assert_eq!(shared.verdict("/annotations"), Verdict::default());
        assert_eq!(shared.verdict("/load/a.onnx").fail, Some(503));
        assert_eq!(shared.rules()[0].times, Some(1));
        assert_eq!(shared.verdict("/load/a.onnx").fail, Some(503));
        assert!(shared.rules().is_empty());
        assert_eq!(shared.verdict("/load/a.onnx"), Verdict::default());
    }

    #[test]
    fn an_uncounted_rule_stays_and_kinds_combine() {
        let shared = Shared::new(PathBuf::new());
        shared.add_rule(rule("/", Action::Delay { millis: 5 }, None));
        shared.add_rule(rule("/load", Action::Fail { status: 500 }, Some(1)));
        shared.add_rule(rule("/load", Action::Fail { status: 502 }, Some(1)));
        shared.add_rule(rule("/x", Action::Hang, Some(0)));
        let first = shared.verdict("/load/m");
        assert_eq!(first.delay, Some(Duration::from_millis(5)));
        assert_eq!(
            first.fail,
            Some(500),
            "the first matching rule of a kind wins"
        );
        assert!(!first.hang, "a rule with times 0 is never added");
        assert_eq!(shared.verdict("/load/m").fail, Some(502));
        assert_eq!(shared.verdict("/load/m").fail, None);
        assert_eq!(shared.rules().len(), 1, "the uncounted delay stays");
    }

    #[test]
    fn reset_forgets_everything() {
        let shared = Shared::new(PathBuf::new());
        shared.add_rule(rule("/", Action::Hang, None));
        shared.set_token("t".into());
        shared.put_media("m", serde_json::json!({"id": "m"}));
        shared.reset();
        assert!(shared.rules().is_empty());
        assert!(shared.media("m").is_none());
        assert_eq!(shared.token(), default_token());
        assert_eq!(shared.settings(), serde_json::json!({}));
    }

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        let token = default_token();
        assert_eq!(token.split('.').count(), 3);
        assert!(token.starts_with("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."));
    }
}
