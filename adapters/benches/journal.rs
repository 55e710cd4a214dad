//! What journaling costs per annotation (spec B, "a crash loses nothing"): one
//! annotation with a frame's JPEG (as base64, 100–300 KB) written durably — temporary
//! file, fsync, rename, fsync of the folder — and the whole life of an entry (append,
//! read back by the worker, delete once delivered).
//!
//! `cargo bench -p adapters --bench journal`. The folder is under the target directory
//! (`CARGO_TARGET_TMPDIR`), so on the project's disk; `JOURNAL_BENCH_DIR` puts it
//! elsewhere (e.g. the volume `outbox.spool_dir` will be on). A tmpfs makes fsync free
//! and the numbers meaningless.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use adapters::annotations::journal::{Entry, Journal};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ports::{Annotation, DetectionDto};

/// `len` bytes with no structure, like a JPEG (its base64 text is 4/3 as long).
fn jpeg_like(len: usize) -> bytes::Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn entry(image_len: usize) -> Entry {
    let detection = DetectionDto {
        center_x: 0.5,
        center_y: 0.5,
        width: 0.1,
        height: 0.2,
        class_num: 0,
        label: "Normal".into(),
        confidence: 0.8,
    };
    Entry {
        key: Journal::new_key().unwrap(),
        annotation: Annotation {
            media_id: domain::media::MediaId::parse("0123456789abcdef").unwrap(),
            video_time: domain::tracking::VideoTime::from_seconds(7.0),
            detections: vec![detection; 5],
            jpeg: jpeg_like(image_len * 3 / 4),
            key: None,
        },
        authorization: Some(format!("Bearer {}", "x".repeat(600))),
    }
}

fn folder() -> PathBuf {
    let root = std::env::var_os("JOURNAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let dir = root.join(format!("journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn journal(c: &mut Criterion) {
    let dir = folder();
    let journal = Journal::open(&dir).unwrap();
    let mut group = c.benchmark_group("journal");
    group.sample_size(30);
    for kib in [100, 200, 300] {
        let entry = entry(kib * 1024);
        group.throughput(Throughput::Bytes((kib * 1024) as u64));
        // `deliver`'s part: durable once it returns.
        group.bench_with_input(BenchmarkId::new("append", kib), &entry, |b, entry| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let path = journal.append(entry).unwrap();
                    spent += started.elapsed();
                    Journal::remove(&path).unwrap();
                }
                spent
            });
        });
        // The whole life of an entry: appended, read by the worker, deleted when sent.
        group.bench_with_input(BenchmarkId::new("lifecycle", kib), &entry, |b, entry| {
            b.iter(|| {
                let path = journal.append(entry).unwrap();
                let back = Journal::read(&path).unwrap();
                Journal::remove(&path).unwrap();
                back
            });
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, journal);
criterion_main!(benches);
