//! `POST /detect/video` when our side fails: the client is told it is ours (500), not
//! that its upload was wrong.

use async_trait::async_trait;
use bytes::Bytes;
use domain::settings::SettingsPatch;
use ports::frame::MockFrameCodec;
use ports::{
    ByteStream, DetectError, DetectionService, MediaStoreError, StagedUpload, StagingFile,
    UploadBrokeOff, VideoUpload,
};

use super::tests::{ONE_BY_ONE, application};

/// A staged file on a full disk.
pub(super) struct FullDisk;

#[async_trait]
impl StagingFile for FullDisk {
    async fn write(&mut self, _: &[u8]) -> Result<(), MediaStoreError> {
        Err(MediaStoreError::Io("No space left on device".into()))
    }
    async fn finish(self: Box<Self>) -> Result<StagedUpload, MediaStoreError> {
        Err(MediaStoreError::Io("No space left on device".into()))
    }
}

struct OneChunk(Option<Bytes>);

#[async_trait]
impl ByteStream for OneChunk {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, UploadBrokeOff>> {
        self.0.take().map(Ok)
    }
}

fn upload(body: OneChunk) -> VideoUpload {
    VideoUpload {
        body: Box::new(body),
        file_name: "clip.mp4".into(),
        settings: SettingsPatch::default(),
        credentials: None,
    }
}

#[tokio::test]
async fn a_staged_file_that_cannot_be_written_is_our_error_not_the_client_s() {
    let (app, _) = application(MockFrameCodec::new(), ONE_BY_ONE);
    let chunk = OneChunk(Some(Bytes::from_static(b"\x00\x00\x00\x18ftypmp42")));
    let error = app.start_video_upload(upload(chunk)).await.unwrap_err();
    assert!(
        matches!(&error, DetectError::Internal(reason) if reason.contains("No space left")),
        "{error:?}"
    );
}
