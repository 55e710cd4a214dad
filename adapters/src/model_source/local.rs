//! A folder on local disk as the model source (the embedded default).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ports::{ModelArtifact, ModelSource, ModelSourceError};

pub struct LocalModelSource {
    dir: PathBuf,
}

impl LocalModelSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Only plain names: a name with a separator or `..` could escape the folder.
    fn path_of(&self, name: &str) -> Result<PathBuf, ModelSourceError> {
        let plain = !name.is_empty()
            && Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name)
            && name != ".."
            && name != ".";
        if plain {
            Ok(self.dir.join(name))
        } else {
            Err(ModelSourceError::Invalid {
                name: name.to_string(),
                reason: "artifact names are plain file names".into(),
            })
        }
    }
}

#[async_trait]
impl ModelSource for LocalModelSource {
    async fn load(&self, name: &str) -> Result<ModelArtifact, ModelSourceError> {
        let path = self.path_of(name)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() && meta.len() > 0 => Ok(ModelArtifact {
                name: name.to_string(),
                path,
            }),
            Ok(meta) if meta.is_file() => Err(ModelSourceError::Invalid {
                name: name.to_string(),
                reason: format!("{} is empty", path.display()),
            }),
            Ok(_) => Err(ModelSourceError::Invalid {
                name: name.to_string(),
                reason: format!("{} is not a file", path.display()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ModelSourceError::NotFound {
                name: format!("{name} (looked in {})", self.dir.display()),
            }),
            Err(e) => Err(ModelSourceError::Unavailable {
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }

    async fn upload(&self, name: &str, path: &Path) -> Result<(), ModelSourceError> {
        let target = self.path_of(name)?;
        let unavailable = |e: std::io::Error| ModelSourceError::Unavailable {
            reason: format!("cannot store {}: {e}", target.display()),
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(unavailable)?;
        // Copy then rename, so a reader never sees half a file.
        let partial = target.with_extension("partial");
        tokio::fs::copy(path, &partial).await.map_err(unavailable)?;
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(unavailable)
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("detections-local-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn loads_a_present_model() {
        let dir = temp_dir("present");
        std::fs::write(dir.join("m.onnx"), b"model").unwrap();
        let artifact = LocalModelSource::new(&dir).load("m.onnx").await.unwrap();
        assert_eq!(artifact.path, dir.join("m.onnx"));
    }

    #[tokio::test]
    async fn absent_model_is_not_found() {
        let dir = temp_dir("absent");
        let error = LocalModelSource::new(&dir)
            .load("x.onnx")
            .await
            .unwrap_err();
        assert!(
            matches!(error, ModelSourceError::NotFound { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn empty_model_is_invalid() {
        let dir = temp_dir("empty");
        std::fs::write(dir.join("e.onnx"), b"").unwrap();
        let error = LocalModelSource::new(&dir)
            .load("e.onnx")
            .await
            .unwrap_err();
        assert!(matches!(error, ModelSourceError::Invalid { .. }), "{error}");
    }

    #[tokio::test]
    async fn names_cannot_escape_the_folder() {
        let dir = temp_dir("escape");
        let error = LocalModelSource::new(&dir)
            .load("../etc/passwd")
            .await
            .unwrap_err();
        assert!(matches!(error, ModelSourceError::Invalid { .. }), "{error}");
    }

    #[tokio::test]
    async fn upload_then_load_round_trips() {
        let dir = temp_dir("upload");
        let source_file = dir.join("built.bin");
        std::fs::write(&source_file, b"engine").unwrap();
        let store = LocalModelSource::new(dir.join("store"));
        store.upload("a.engine", &source_file).await.unwrap();
        let artifact = store.load("a.engine").await.unwrap();
        assert_eq!(std::fs::read(artifact.path).unwrap(), b"engine");
    }
}
