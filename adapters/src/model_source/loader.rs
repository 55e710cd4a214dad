//! The Loader service as the model source (spec A9): `POST /load/{name}` streams the
//! file down, `POST /upload/{name}` sends a built engine back.

use crate::client_setup::ClientSetupError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use ports::{ModelArtifact, ModelSource, ModelSourceError};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub url: String,
    /// The Loader's folder for models (`models`).
    pub folder: String,
    /// Where downloads are written.
    pub download_dir: PathBuf,
    /// Per request; a model download may take a while, so this bounds connecting and
    /// each read, not the whole transfer.
    pub timeout: Duration,
    /// Extra tries after a connection error or a 5xx.
    pub retries: u32,
}

pub struct LoaderModelSource {
    config: LoaderConfig,
    client: reqwest::Client,
}

/// One try's outcome: `Retry` is worth another go, `Final` is not.
enum Attempt {
    Retry(String),
    Final(ModelSourceError),
}

impl LoaderModelSource {
    pub fn new(config: LoaderConfig) -> Result<Self, ClientSetupError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .build()
            .map_err(ClientSetupError::client("Loader"))?;
        Ok(Self { config, client })
    }

    fn url(&self, action: &str, name: &str) -> String {
        format!(
            "{}/{action}/{}",
            self.config.url.trim_end_matches('/'),
            urlencode(name)
        )
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.config.retries as usize)
    }

    async fn try_load(&self, name: &str) -> Result<ModelArtifact, Attempt> {
        let response = self
            .client
            .post(self.url("load", name))
            .json(&serde_json::json!({ "filename": name, "folder": self.config.folder }))
            .send()
            .await
            .map_err(|e| Attempt::Retry(format!("Loader unreachable: {e}")))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(Attempt::Final(ModelSourceError::NotFound {
                    name: name.to_string(),
                }));
            }
            status if status.is_server_error() => {
                return Err(Attempt::Retry(format!("Loader answered {status}")));
            }
            status => {
                return Err(Attempt::Final(ModelSourceError::Unavailable {
                    reason: format!("Loader answered {status} for {name}"),
                }));
            }
        }
        let path = self.config.download_dir.join(name);
        self.stream_to_file(response, name, &path).await?;
        Ok(ModelArtifact {
            name: name.to_string(),
            path,
        })
    }

    /// Streams the body to `<name>.partial`, checks it, then renames: a reader never
    /// sees a half-written model.
    async fn stream_to_file(
        &self,
        mut response: reqwest::Response,
        name: &str,
        path: &Path,
    ) -> Result<(), Attempt> {
        let io = |e: std::io::Error| {
            Attempt::Final(ModelSourceError::Unavailable {
                reason: format!("cannot write {}: {e}", path.display()),
            })
        };
        tokio::fs::create_dir_all(&self.config.download_dir)
            .await
            .map_err(io)?;
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
        let expected = response.content_length();
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Attempt::Retry(format!("download of {name} broke off: {e}")))?
        {
            file.write_all(&chunk).await.map_err(io)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        let invalid = |reason: String| {
            Attempt::Final(ModelSourceError::Invalid {
                name: name.to_string(),
                reason,
            })
        };
        if written == 0 {
            return Err(invalid("the Loader sent an empty file".into()));
        }
        if let Some(expected) = expected.filter(|&e| e != written) {
            return Err(Attempt::Retry(format!(
                "download of {name} truncated: {written} of {expected} bytes"
            )));
        }
        tokio::fs::rename(&partial, path).await.map_err(io)
    }

    async fn try_upload(&self, name: &str, path: &Path) -> Result<(), Attempt> {
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            Attempt::Final(ModelSourceError::Invalid {
                name: name.to_string(),
                reason: format!("cannot read {}: {e}", path.display()),
            })
        })?;
        let form = reqwest::multipart::Form::new()
            .part(
                "data",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
            )
            .text("folder", self.config.folder.clone());
        let response = self
            .client
            .post(self.url("upload", name))
            .multipart(form)
            .send()
            .await
            .map_err(|e| Attempt::Retry(format!("Loader unreachable: {e}")))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status if status.is_server_error() => {
                Err(Attempt::Retry(format!("Loader answered {status}")))
            }
            status => Err(Attempt::Final(ModelSourceError::Unavailable {
                reason: format!("Loader refused the upload of {name}: {status}"),
            })),
        }
    }
}

fn finish<T>(outcome: Result<T, Attempt>) -> Result<T, ModelSourceError> {
    outcome.map_err(|attempt| match attempt {
        Attempt::Retry(reason) => ModelSourceError::Unavailable { reason },
        Attempt::Final(error) => error,
    })
}

/// Names are plain file names; encode what a path segment cannot carry.
fn urlencode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[async_trait]
impl ModelSource for LoaderModelSource {
    async fn load(&self, name: &str) -> Result<ModelArtifact, ModelSourceError> {
        finish(
            (|| self.try_load(name))
                .retry(self.backoff())
                .when(|a| matches!(a, Attempt::Retry(_)))
                .notify(|a, after| {
                    if let Attempt::Retry(reason) = a {
                        tracing::warn!(%reason, ?after, "retrying model download");
                    }
                })
                .await,
        )
    }

    async fn upload(&self, name: &str, path: &Path) -> Result<(), ModelSourceError> {
        finish(
            (|| self.try_upload(name, path))
                .retry(self.backoff())
                .when(|a| matches!(a, Attempt::Retry(_)))
                .await,
        )
    }

    fn describe(&self) -> String {
        format!("Loader at {}", self.config.url)
    }
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
