use std::path::PathBuf;

use ports::Annotation;

use super::{Entry, Journal, REJECTED_DIR, ReadError};

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("detections-journal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn entry(media_id: &str) -> Entry {
    Entry {
        key: Journal::new_key().unwrap(),
        annotation: Annotation {
            media_id: domain::media::MediaId::parse(media_id).unwrap(),
            video_time: domain::tracking::VideoTime::parse("00:00:01").unwrap(),
            detections: vec![],
            jpeg: bytes::Bytes::from_static(b"hello"),
            key: None,
        },
        authorization: Some(format!("Bearer {media_id}")),
    }
}

fn media_ids(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| Journal::read(p).unwrap().annotation.media_id.to_string())
        .collect()
}

#[test]
fn entries_list_in_the_order_they_were_appended_and_read_back_whole() {
    let dir = dir("order");
    let journal = Journal::open(&dir).unwrap();
    let written: Vec<Entry> = (0..12).map(|i| entry(&format!("m{i}"))).collect();
    for e in &written {
        journal.append(e).unwrap();
    }
    let listed = journal.list().unwrap();
    assert_eq!(listed.len(), 12);
    let read: Vec<Entry> = listed.iter().map(|p| Journal::read(p).unwrap()).collect();
    assert_eq!(read, written, "same entries, same order, keys kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&listed[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the journal holds tokens: owner only");
    }
}

#[test]
fn a_reopened_journal_continues_the_order_and_drops_unfinished_writes() {
    let dir = dir("reopen");
    let first = Journal::open(&dir).unwrap();
    let kept = entry("before");
    first.append(&kept).unwrap();
    drop(first);
    // A crash mid-write leaves a hidden temporary file: never acknowledged.
    std::fs::write(dir.join(".j00000000000000000001-x.json.tmp"), b"{\"key\":").unwrap();

    let second = Journal::open(&dir).unwrap();
    second.append(&entry("after")).unwrap();
    let listed = second.list().unwrap();
    assert_eq!(media_ids(&listed), ["before", "after"]);
    assert_eq!(
        Journal::read(&listed[0]).unwrap().key,
        kept.key,
        "the key is the one stored: the same across restarts"
    );
    let hidden = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(hidden, 0, "the unfinished write is gone");
}

#[test]
fn a_torn_last_entry_reads_as_torn_and_leaves_the_others_readable() {
    let dir = dir("torn");
    let journal = Journal::open(&dir).unwrap();
    journal.append(&entry("m1")).unwrap();
    journal.append(&entry("m2")).unwrap();
    let last = journal.append(&entry("m3")).unwrap();
    // A file system that lost the end of the last write.
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();

    let listed = journal.list().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(media_ids(&listed[..2]), ["m1", "m2"]);
    assert!(matches!(
        Journal::read(&listed[2]),
        Err(ReadError::Torn { .. })
    ));
    journal.set_aside(&listed[2]).unwrap();
    assert_eq!(journal.list().unwrap().len(), 2);
    assert_eq!(
        std::fs::read_dir(dir.join(REJECTED_DIR)).unwrap().count(),
        1
    );
    // An empty file (torn before any byte) too.
    let empty = dir.join("j99999999999999999999-empty.json");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(Journal::read(&empty), Err(ReadError::Torn { .. })));
}

#[test]
fn files_of_the_older_spool_format_come_first_with_a_stable_key() {
    let dir = dir("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("00001746000000000000-000000000007-4242.json");
    let content = serde_json::json!({
        "annotation": super::super::wire::AnnotationBody::from(&entry("old").annotation),
        "authorization": "Bearer old",
    });
    std::fs::write(&old, content.to_string()).unwrap();
    let journal = Journal::open(&dir).unwrap();
    journal.append(&entry("new")).unwrap();
    let listed = journal.list().unwrap();
    assert_eq!(media_ids(&listed), ["old", "new"]);
    let first = Journal::read(&listed[0]).unwrap();
    assert_eq!(first.authorization.as_deref(), Some("Bearer old"));
    assert_eq!(first.key, "spool-00001746000000000000-000000000007-4242");
    assert_eq!(Journal::read(&listed[0]).unwrap().key, first.key);
}

#[test]
fn keys_are_distinct_version_4_uuids() {
    let keys: std::collections::HashSet<String> =
        (0..1000).map(|_| Journal::new_key().unwrap()).collect();
    assert_eq!(keys.len(), 1000);
    for key in keys.iter().take(5) {
        let parts: Vec<&str> = key.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{key}");
    }
}

#[test]
fn an_unwritable_folder_fails_to_open() {
    let file = dir("not-a-dir");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"").unwrap();
    assert!(Journal::open(&file).is_err());
    std::fs::remove_file(&file).unwrap();
}
