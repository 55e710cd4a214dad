//! Why an outbound HTTP adapter could not be built from its configuration.

/// The message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("{setting} {value:?} is not a URL: {reason}")]
    NotAUrl {
        setting: &'static str,
        value: String,
        reason: String,
    },
    #[error("{setting} {value:?} cannot be a base URL")]
    NotABase {
        setting: &'static str,
        value: String,
    },
    /// The HTTP client itself (its TLS back end) could not start.
    #[error("cannot build the {service} client: {reason}")]
    Client {
        service: &'static str,
        reason: String,
    },
}

impl ClientSetupError {
    pub(crate) fn client(service: &'static str) -> impl FnOnce(reqwest::Error) -> Self {
        move |e| Self::Client {
            service,
            reason: e.to_string(),
        }
    }
}
