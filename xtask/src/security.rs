//! Stage `security`: `cargo audit` against the offline RustSec database, and the
//! licence of every dependency against the allow-list `licences.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The advisory database: `$ADVISORY_DB`, else `shared/advisory-db` beside the
/// repository or beside any folder above it (a clone elsewhere still finds the
/// workplace's copy), else `/work/shared/advisory-db`. Fails loudly when none exists
/// (no silent fetch from GitHub).
pub fn advisory_db(root: &Path) -> Result<PathBuf> {
    if let Some(db) = std::env::var_os("ADVISORY_DB") {
        let db = PathBuf::from(db);
        if db.join("crates").is_dir() {
            return Ok(db);
        }
        bail!(
            "ADVISORY_DB={} is not a RustSec advisory database (no crates/ folder)",
            db.display()
        );
    }
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let candidates: Vec<PathBuf> = root
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/advisory-db"))
        .chain([PathBuf::from("/work/shared/advisory-db")])
        .collect();
    if let Some(db) = candidates.iter().find(|db| db.join("crates").is_dir()) {
        return Ok(db.clone());
    }
    bail!(
        "no RustSec advisory database: set ADVISORY_DB, or put a copy at {} \
         (git clone https://github.com/rustsec/advisory-db)",
        candidates[0].display()
    )
}

pub fn audit(root: &Path) -> Result<()> {
    let db = advisory_db(root)?;
    let probe = Command::new("cargo").args(["audit", "--version"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bail!("cargo-audit is missing: cargo install cargo-audit --locked (.ci/run does)");
    }
    // Ignored advisories, each with its reason, live in .cargo/audit.toml.
    let status = crate::cargo()
        .current_dir(root)
        .args(["audit", "--no-fetch", "--db"])
        .arg(&db)
        .status()
        .context("could not run cargo audit")?;
    if !status.success() {
        bail!(
            "cargo audit found vulnerabilities in Cargo.lock (ignores, each with a reason: .cargo/audit.toml)"
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct AllowList {
    /// SPDX identifiers (with `WITH` exceptions spelled out) that are accepted.
    allow: Vec<String>,
    /// Crates accepted whatever their licence says, each with a reason.
    #[serde(default)]
    exceptions: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    license: Option<String>,
    source: Option<String>,
}

pub fn licences(root: &Path) -> Result<()> {
    let text = std::fs::read_to_string(root.join("licences.toml"))
        .context("reading licences.toml (the licence allow-list)")?;
    let list: AllowList = toml::from_str(&text).context("parsing licences.toml")?;
    let allowed: BTreeSet<&str> = list.allow.iter().map(String::as_str).collect();

    let out = crate::cargo()
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: Metadata = serde_json::from_slice(&out.stdout).context("cargo metadata JSON")?;

    let mut bad = Vec::new();
    let mut checked = 0;
    for p in &metadata.packages {
        if p.source.is_none() {
            continue; // this workspace's own crates
        }
        checked += 1;
        if list.exceptions.contains_key(&p.name) {
            continue;
        }
        match p.license.as_deref() {
            None => bad.push(format!("{} {}: no licence expression", p.name, p.version)),
            Some(expr) => match satisfied(expr, &allowed) {
                Ok(true) => {}
                Ok(false) => bad.push(format!("{} {}: {expr}", p.name, p.version)),
                Err(e) => bad.push(format!("{} {}: `{expr}`: {e}", p.name, p.version)),
            },
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} of {checked} dependencies have a licence outside licences.toml:\n  {}",
            bad.len(),
            bad.join("\n  ")
        );
    }
    println!(
        "licences: {checked} dependencies, all within the allow-list ({} exceptions)",
        list.exceptions.len()
    );
    Ok(())
}

/// Whether an SPDX expression can be satisfied with the allowed licences: `OR`
/// needs one side, `AND` both; `A WITH B` must be allowed as a whole. The old
/// `MIT/Apache-2.0` spelling counts as `OR`.
fn satisfied(expr: &str, allowed: &BTreeSet<&str>) -> Result<bool> {
    let spaced = expr
        .replace('/', " OR ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        allowed,
    };
    let value = parser.or()?;
    if parser.at != tokens.len() {
        bail!("unexpected `{}`", tokens[parser.at]);
    }
    Ok(value)
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    at: usize,
    allowed: &'a BTreeSet<&'a str>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }
    fn next(&mut self) -> Result<&'a str> {
        let t = self.peek().context("expression ends too early")?;
        self.at += 1;
        Ok(t)
    }
    fn or(&mut self) -> Result<bool> {
        let mut value = self.and()?;
        while self.peek() == Some("OR") {
            self.at += 1;
            value |= self.and()?;
        }
        Ok(value)
    }
    fn and(&mut self) -> Result<bool> {
        let mut value = self.atom()?;
        while self.peek() == Some("AND") {
            self.at += 1;
            value &= self.atom()?;
        }
        Ok(value)
    }
    fn atom(&mut self) -> Result<bool> {
        let token = self.next()?;
        if token == "(" {
            let value = self.or()?;
            if self.next()? != ")" {
                bail!("`)` expected");
            }
            return Ok(value);
        }
        if matches!(token, ")" | "AND" | "OR" | "WITH") {
            bail!("licence expected, found `{token}`");
        }
        let mut id = token.to_string();
        if self.peek() == Some("WITH") {
            self.at += 1;
            id = format!("{id} WITH {}", self.next()?);
        }
        Ok(self.allowed.contains(id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(expr: &str) -> bool {
        let allowed: BTreeSet<&str> = ["MIT", "Apache-2.0", "Unicode-3.0"].into();
        satisfied(expr, &allowed).unwrap()
    }

    #[test]
    fn expressions() {
        assert!(ok("MIT OR Apache-2.0"));
        assert!(ok("MIT/Apache-2.0"));
        assert!(ok("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"));
        assert!(ok("(MIT OR Apache-2.0) AND Unicode-3.0"));
        assert!(!ok("MIT AND BSD-3-Clause"));
        assert!(!ok("GPL-3.0-only"));
        assert!(!ok("Apache-2.0 WITH LLVM-exception"));
        assert!(ok("GPL-3.0-only OR MIT"));
    }

    #[test]
    fn malformed() {
        let allowed = BTreeSet::new();
        assert!(satisfied("MIT OR", &allowed).is_err());
        assert!(satisfied("(MIT", &allowed).is_err());
        assert!(satisfied("MIT MIT", &allowed).is_err());
    }
}
