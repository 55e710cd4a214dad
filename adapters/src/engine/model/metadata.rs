//! An ONNX model's metadata (`metadata_props`: Ultralytics' `names`, `imgsz`, …) read
//! straight from the file, for an engine whose API does not expose it (OpenVINO).
//!
//! ONNX files are protobuf `ModelProto`s; the metadata is field 14, a repeated
//! `{1: key, 2: value}`. Only the top level is walked: the graph (field 7, nearly the
//! whole file) is skipped with a seek, never read.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use domain::layout::ModelMetadata;

const METADATA_PROPS: u64 = 14;
/// A key or value longer than this is not metadata worth reading (names lists are a
/// few KiB).
const MAX_ENTRY: u64 = 1 << 20;

/// The model's metadata; a file that is not a readable ONNX model has none (the engine
/// that loads it says what is wrong with it).
pub(crate) fn read_metadata(path: &Path) -> ModelMetadata {
    let pairs = File::open(path)
        .ok()
        .and_then(|file| metadata_pairs(BufReader::new(file)).ok())
        .unwrap_or_default();
    ModelMetadata::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn metadata_pairs(mut reader: impl Read + Seek) -> std::io::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    while let Some(tag) = varint(&mut reader)? {
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                varint(&mut reader)?.ok_or_else(truncated)?;
            }
            1 => reader.seek_relative(8)?,
            5 => reader.seek_relative(4)?,
            2 => {
                let len = varint(&mut reader)?.ok_or_else(truncated)?;
                if field == METADATA_PROPS && len <= 2 * MAX_ENTRY {
                    let mut entry = vec![0; len as usize];
                    reader.read_exact(&mut entry)?;
                    if let Some(pair) = entry_pair(&entry) {
                        pairs.push(pair);
                    }
                } else {
                    let skip = i64::try_from(len).map_err(|_| truncated())?;
                    reader.seek_relative(skip)?;
                }
            }
            _ => return Err(std::io::Error::other("not a protobuf message")),
        }
    }
    Ok(pairs)
}

/// `{1: key, 2: value}` of one `StringStringEntryProto`.
fn entry_pair(mut entry: &[u8]) -> Option<(String, String)> {
    let (mut key, mut value) = (None, None);
    while !entry.is_empty() {
        let tag = varint(&mut entry).ok()??;
        if tag & 7 != 2 {
            return None;
        }
        let len = usize::try_from(varint(&mut entry).ok()??).ok()?;
        let text = String::from_utf8(entry.get(..len)?.to_vec()).ok()?;
        entry = &entry[len..];
        match tag >> 3 {
            1 => key = Some(text),
            2 => value = Some(text),
            _ => {}
        }
    }
    Some((key?, value.unwrap_or_default()))
}

/// A base-128 varint; `None` at a clean end of input.
fn varint(reader: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        if reader.read(&mut byte)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(truncated())
            };
        }
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(std::io::Error::other("varint too long"))
}

fn truncated() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::UnexpectedEof)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn the_metadata_around_a_skipped_graph_is_read() {
        let mut model = vec![0x08, 0x07]; // ir_version 7
        model.extend(field(7, &[0xAA; 100])); // the "graph", skipped
        let entry = [field(1, b"imgsz"), field(2, b"[320, 320]")].concat();
        model.extend(field(14, &entry));
        let entry = [field(1, b"names"), field(2, b"{0: 'a', 1: 'b'}")].concat();
        model.extend(field(14, &entry));
        let pairs = metadata_pairs(std::io::Cursor::new(model)).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("imgsz".into(), "[320, 320]".into()),
                ("names".into(), "{0: 'a', 1: 'b'}".into())
            ]
        );
    }

    #[test]
    fn a_file_that_is_not_a_model_has_no_metadata() {
        let metadata = read_metadata(Path::new("/nonexistent.onnx"));
        assert_eq!(metadata.names_count(), None);
        assert!(metadata_pairs(std::io::Cursor::new(vec![0x0f, 1, 2])).is_err());
    }
}
