//! The outbox's journal: one file per annotation in a folder, written and synced before
//! `deliver` returns, deleted once delivered (spec Part B: a crash loses nothing).
//!
//! - An entry is `{"key":…,"annotation":…,"authorization":…}` in a file named
//!   `j<sequence, 20 digits>-<key>.json`: names sort in acceptance order, and the key
//!   (a random UUID, the `Idempotency-Key` of every attempt) keeps names unique, also
//!   in `rejected/` across restarts.
//! - [`Journal::append`] writes a hidden temporary file, syncs it, renames it into place
//!   and syncs the folder: once it returns the entry survives a crash or power loss.
//!   A crash before the rename leaves only the temporary file, removed at the next open;
//!   an entry that is still unreadable (a file system that lost data) fails
//!   [`Journal::read`] with [`ReadError::Torn`] and is set aside, never blocking the rest.
//! - Files of the older spool format (`<µs>-<sequence>-<pid>.json`, no key) are entries
//!   too: their names sort before every `j…` name, and their key is derived from the
//!   name, so it stays the same across restarts.
//! - Blocking: call it from a blocking thread (`spawn_blocking`), never on the runtime.
//!
//! **The journal holds credentials**: the client's `Authorization` header, needed to
//! re-send after a restart. Files are created mode 0600 on Unix; keep the folder private.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ports::Annotation;
use serde::{Deserialize, Serialize};

/// The sub-folder for entries the sink refused, or that cannot be read.
pub const REJECTED_DIR: &str = "rejected";

/// The first character of an entry's file name in this format.
const PREFIX: char = 'j';

/// One annotation as journaled: with the header it must be sent with and its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The `Idempotency-Key` of every attempt to deliver this annotation.
    pub key: String,
    #[serde(with = "super::wire")]
    pub annotation: Annotation,
    pub authorization: Option<String>,
}

/// What an entry file holds; `key` is absent in files of the older spool format.
#[derive(Deserialize)]
struct Stored {
    key: Option<String>,
    #[serde(with = "super::wire")]
    annotation: Annotation,
    authorization: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read now (worth trying again later).
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: io::Error },
    /// The file is there but is not a whole entry: it will never be readable.
    #[error("{path} is not a whole journal entry: {reason}")]
    Torn { path: String, reason: String },
}

pub struct Journal {
    dir: PathBuf,
    next: AtomicU64,
}

impl Journal {
    /// Opens (creating) the folder and its `rejected/`, checks that it is writable, and
    /// removes temporary files a crash left behind. One process per folder: a second
    /// one opening it would remove the first one's writes in progress.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Journal> {
        let dir = dir.into();
        fs::create_dir_all(dir.join(REJECTED_DIR))?;
        // Not named like a leftover temporary file (`.*.tmp`): another process opening
        // the folder at the same moment must not remove it under us.
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        fs::write(&probe, b"")?;
        fs::remove_file(&probe)?;
        let mut last = None;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // Never renamed, so never acknowledged: nobody was told it was kept.
                let _ = fs::remove_file(entry.path());
            } else if let Some(sequence) = sequence_of(&name) {
                last = last.max(Some(sequence));
            }
        }
        Ok(Journal {
            dir,
            next: AtomicU64::new(last.map_or(0, |s| s + 1)),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new idempotency key: a random (version 4) UUID.
    pub fn new_key() -> io::Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(io::Error::other)?;
        Ok(domain::job::uuid_text(bytes, 4))
    }

    /// The key `annotation` is sent under: its own (a job's run and frame), else a new one.
    pub fn key_for(annotation: &ports::Annotation) -> io::Result<String> {
        match &annotation.key {
            Some(key) => Ok(key.clone()),
            None => Self::new_key(),
        }
    }

    /// Writes `entry` durably (file and folder synced) and returns its path.
    pub fn append(&self, entry: &Entry) -> io::Result<PathBuf> {
        let bytes = serde_json::to_vec(entry).map_err(io::Error::other)?;
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{sequence:020}-{}.json", entry.key);
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(&name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = (|| {
            let mut file = options.open(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temporary, &path)?;
            // The rename is durable only once the folder is synced.
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary);
            return Err(e);
        }
        Ok(path)
    }

    /// Every entry, oldest first (files of the older format before all others).
    pub fn list(&self) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with('.') && name.ends_with(".json") && entry.file_type()?.is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Reads one entry.
    pub fn read(path: &Path) -> Result<Entry, ReadError> {
        let shown = || path.display().to_string();
        let bytes = fs::read(path).map_err(|error| ReadError::Io {
            path: shown(),
            error,
        })?;
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| ReadError::Torn {
            path: shown(),
            reason: e.to_string(),
        })?;
        let key = stored.key.unwrap_or_else(|| legacy_key(path));
        Ok(Entry {
            key,
            annotation: stored.annotation,
            authorization: stored.authorization,
        })
    }

    /// Deletes a delivered entry. Not synced: if a crash undoes it, the entry is sent
    /// again with the same key, which the receiver drops.
    pub fn remove(path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    /// Moves an entry to `rejected/`, out of the journal, for a person to look at.
    pub fn set_aside(&self, path: &Path) -> io::Result<()> {
        let name = path.file_name().unwrap_or_default();
        fs::rename(path, self.dir.join(REJECTED_DIR).join(name))
    }
}

/// The sequence of a `j<20 digits>-<key>.json` name.
fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.get(..20)?;
    digits.parse().ok()
}

/// The key of an older spool file: its name is unique (time, sequence, process id).
fn legacy_key(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    format!("spool-{stem}")
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
