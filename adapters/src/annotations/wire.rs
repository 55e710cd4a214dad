//! An annotation as spec A9 puts it on the wire, and as the journal keeps it:
//! `{"mediaId","source":0,"videoTime":"HH:MM:SS","detections":[…],"image":"<base64 JPEG>"}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::media::MediaId;
use domain::tracking::VideoTime;
use ports::{Annotation, DetectionDto};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnotationBody {
    pub media_id: MediaId,
    /// Always 0 (this service is the source).
    pub source: u8,
    pub video_time: String,
    pub detections: Vec<DetectionDto>,
    /// Base64 JPEG of the frame.
    pub image: String,
}

impl From<&Annotation> for AnnotationBody {
    fn from(annotation: &Annotation) -> Self {
        Self {
            media_id: annotation.media_id.clone(),
            source: 0,
            video_time: annotation.video_time.to_string(),
            detections: annotation.detections.clone(),
            image: STANDARD.encode(&annotation.jpeg),
        }
    }
}

/// A body that is no annotation of ours (a journal entry written by hand, say).
#[derive(Debug, thiserror::Error)]
#[error("not an annotation: {0}")]
pub struct NotAnAnnotation(String);

impl TryFrom<AnnotationBody> for Annotation {
    type Error = NotAnAnnotation;

    fn try_from(body: AnnotationBody) -> Result<Self, Self::Error> {
        Ok(Annotation {
            media_id: body.media_id,
            video_time: VideoTime::parse(&body.video_time)
                .map_err(|e| NotAnAnnotation(e.to_string()))?,
            detections: body.detections,
            jpeg: STANDARD
                .decode(&body.image)
                .map_err(|e| NotAnAnnotation(format!("image: {e}")))?
                .into(),
            // The key travels beside the body (the journal's and the broker's entry).
            key: None,
        })
    }
}

/// `#[serde(with = "wire")]` for an [`Annotation`] field: written and read as its body.
pub fn serialize<S: serde::Serializer>(
    annotation: &Annotation,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    AnnotationBody::from(annotation).serialize(serializer)
}

pub fn deserialize<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Annotation, D::Error> {
    let body = AnnotationBody::deserialize(deserializer)?;
    Annotation::try_from(body).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_is_spec_a9_and_reads_back() {
        let annotation = Annotation {
            media_id: MediaId::parse("m1").unwrap(),
            video_time: VideoTime::from_seconds(62.5),
            detections: vec![],
            jpeg: bytes::Bytes::from_static(b"hello"),
            key: None,
        };
        let json = serde_json::to_value(AnnotationBody::from(&annotation)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"mediaId": "m1", "source": 0, "videoTime": "00:01:02",
                "detections": [], "image": "aGVsbG8="})
        );
        let back: AnnotationBody = serde_json::from_value(json).unwrap();
        assert_eq!(Annotation::try_from(back).unwrap(), annotation);
        let mut torn = AnnotationBody::from(&annotation);
        torn.image = "not base64!".into();
        assert!(Annotation::try_from(torn).is_err());
    }
}
