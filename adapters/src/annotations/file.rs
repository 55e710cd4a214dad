//! A local JSON-lines file as the annotation sink (the embedded default).

use std::path::PathBuf;

use super::wire::AnnotationBody;
use async_trait::async_trait;
use ports::{Annotation, AnnotationError, AnnotationSink};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Appends one JSON object per line. The client's token is not written: a file is
/// no place for credentials.
pub struct JsonLinesSink {
    path: PathBuf,
    write: Mutex<()>,
}

impl JsonLinesSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            write: Mutex::new(()),
        }
    }
}

#[async_trait]
impl AnnotationSink for JsonLinesSink {
    async fn deliver(
        &self,
        annotation: &Annotation,
        _authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        let mut line = serde_json::to_vec(&AnnotationBody::from(annotation))
            .map_err(|e| AnnotationError::Rejected(format!("cannot encode annotation: {e}")))?;
        line.push(b'\n');
        let failed = |e: std::io::Error| {
            AnnotationError::Transient(format!("cannot write {}: {e}", self.path.display()))
        };
        // One writer at a time so lines never interleave.
        let _turn = self.write.lock().await;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(failed)?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(failed)?;
        file.write_all(&line).await.map_err(failed)?;
        file.flush().await.map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_one_line_per_annotation() {
        let path = std::env::temp_dir()
            .join(format!("detections-sink-{}", std::process::id()))
            .join("a.jsonl");
        let _ = std::fs::remove_file(&path);
        let sink = JsonLinesSink::new(&path);
        let annotation = Annotation {
            media_id: domain::media::MediaId::parse("abc").unwrap(),
            video_time: Default::default(),
            detections: vec![],
            jpeg: bytes::Bytes::new(),
            key: None,
        };
        sink.deliver(&annotation, None).await.unwrap();
        sink.deliver(&annotation, Some("Bearer t".into()))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: AnnotationBody = serde_json::from_str(lines[0]).unwrap();
        let back = Annotation::try_from(back).unwrap();
        assert_eq!(back, annotation);
        assert!(!text.contains("Bearer"));
    }
}
