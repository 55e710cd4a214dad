//! Media identity (spec A8): the XxHash64 of a file's size and sampled content, and the
//! media kind decided from content.

use std::fmt;

/// Files under this size are hashed whole; larger ones by three 1 KiB samples.
const WHOLE_BELOW: u64 = 3072;
const SAMPLE: u64 = 1024;

/// A media id: 16 lower-case hex digits of XxHash64 (seed 0). Also accepts, when parsed
/// from a path, any id of 1..=64 characters of `[A-Za-z0-9_-]` (ids the Annotations
/// service assigned), never one that could walk out of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("media id must be 1 to 64 characters of letters, digits, '-' or '_', got {0:?}")]
pub struct MediaIdError(pub String);

impl MediaId {
    pub fn parse(text: &str) -> Result<Self, MediaIdError> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(MediaIdError(text.chars().take(80).collect()))
        }
    }

    /// The id of a whole file held in memory.
    pub fn of_content(content: &[u8]) -> Self {
        let size = content.len() as u64;
        let samples = sample_ranges(size);
        Self::of_samples(
            size,
            samples.iter().map(|r| &content[r.0 as usize..r.1 as usize]),
        )
    }

    /// The id from the file size and the byte ranges [`sample_ranges`] names, in order
    /// (for files read piecewise from disk).
    pub fn of_samples<'a>(size: u64, samples: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
        hasher.update(&size.to_le_bytes());
        for sample in samples {
            hasher.update(sample);
        }
        Self(format!("{:016x}", hasher.digest()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `[start, end)` byte ranges hashed for a file of `size` bytes.
pub fn sample_ranges(size: u64) -> Vec<(u64, u64)> {
    if size < WHOLE_BELOW {
        return vec![(0, size)];
    }
    let middle = size / 2 - SAMPLE / 2;
    vec![
        (0, SAMPLE),
        (middle, middle + SAMPLE),
        (size - SAMPLE, size),
    ]
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// On the wire a media id is its text; reading one checks it like [`MediaId::parse`].
impl serde::Serialize for MediaId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for MediaId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        MediaId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Image or video, by magic bytes; the file name's extension only breaks ties
/// (spec A2).
pub fn sniff_kind(content: &[u8], file_name: Option<&str>) -> Option<crate::job::MediaKind> {
    use crate::job::MediaKind;
    let starts = |magic: &[u8]| content.starts_with(magic);
    if starts(b"\xFF\xD8\xFF")
        || starts(b"\x89PNG\r\n\x1a\n")
        || starts(b"BM")
        || starts(b"II*\0")
        || starts(b"MM\0*")
        || (starts(b"RIFF") && content.get(8..12) == Some(b"WEBP"))
    {
        return Some(MediaKind::Image);
    }
    if content.get(4..8) == Some(b"ftyp")
        || starts(b"\x1A\x45\xDF\xA3")
        || (starts(b"RIFF") && content.get(8..12) == Some(b"AVI "))
    {
        return Some(MediaKind::Video);
    }
    let extension = file_name?.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" | "png" | "bmp" | "webp" | "tif" | "tiff" => Some(MediaKind::Image),
        "mp4" | "mov" | "webm" | "mkv" | "avi" | "m4v" => Some(MediaKind::Video),
        _ => None,
    }
}

/// The extension a stored media file gets: the upload's own when it has a sane one,
/// else one for its kind.
pub fn stored_extension(file_name: Option<&str>, kind: crate::job::MediaKind) -> String {
    let own = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| (1..=5).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_alphanumeric()));
    own.unwrap_or_else(|| match kind {
        crate::job::MediaKind::Image => "jpg".into(),
        crate::job::MediaKind::Video => "mp4".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::MediaKind;

    #[test]
    fn on_the_wire_an_id_is_its_text_and_a_bad_one_is_refused() {
        let id = MediaId::parse("upload-00ff").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"upload-00ff\"");
        assert_eq!(
            serde_json::from_str::<MediaId>("\"upload-00ff\"").unwrap(),
            id
        );
        let error = serde_json::from_str::<MediaId>("\"../etc\"").unwrap_err();
        assert!(error.to_string().contains("media id"), "{error}");
    }

    #[test]
    fn small_files_hash_whole_with_their_size_first() {
        let content = b"hello";
        let mut manual = Vec::from(5u64.to_le_bytes());
        manual.extend_from_slice(content);
        let expected = format!("{:016x}", xxhash_rust::xxh64::xxh64(&manual, 0));
        assert_eq!(MediaId::of_content(content).as_str(), expected);
        assert_eq!(expected.len(), 16);
    }

    #[test]
    fn large_files_hash_three_samples() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut manual = Vec::from(10_000u64.to_le_bytes());
        manual.extend_from_slice(&content[..1024]);
        manual.extend_from_slice(&content[4488..5512]);
        manual.extend_from_slice(&content[8976..]);
        let expected = format!("{:016x}", xxhash_rust::xxh64::xxh64(&manual, 0));
        assert_eq!(MediaId::of_content(&content).as_str(), expected);
        // A change outside the samples keeps the id; one inside changes it.
        let mut outside = content.clone();
        outside[2000] ^= 1;
        assert_eq!(MediaId::of_content(&outside).as_str(), expected);
        let mut inside = content.clone();
        inside[5000] ^= 1;
        assert_ne!(MediaId::of_content(&inside).as_str(), expected);
    }

    #[test]
    fn the_3072_byte_boundary() {
        assert_eq!(sample_ranges(3071), vec![(0, 3071)]);
        assert_eq!(
            sample_ranges(3072),
            vec![(0, 1024), (1024, 2048), (2048, 3072)]
        );
    }

    #[test]
    fn ids_from_paths_cannot_escape_a_folder() {
        assert!(MediaId::parse("abc-123_X").is_ok());
        for bad in ["", "../etc", "a/b", "a.b", &"x".repeat(65)] {
            assert!(MediaId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kind_by_magic_then_extension() {
        assert_eq!(
            sniff_kind(b"\xFF\xD8\xFF\xE0", Some("x.mp4")),
            Some(MediaKind::Image)
        );
        assert_eq!(
            sniff_kind(b"\0\0\0\x20ftypisom", None),
            Some(MediaKind::Video)
        );
        assert_eq!(sniff_kind(b"????", Some("a.MKV")), Some(MediaKind::Video));
        assert_eq!(sniff_kind(b"????", Some("a.txt")), None);
    }

    #[test]
    fn stored_extension_is_sanitised() {
        assert_eq!(stored_extension(Some("Photo.JPG"), MediaKind::Image), "jpg");
        assert_eq!(stored_extension(Some("x./../a"), MediaKind::Image), "jpg");
        assert_eq!(stored_extension(None, MediaKind::Video), "mp4");
    }
}
