//! The CPU engines' figures inside docs/performance.md: `bench-engines` writes them
//! between two markers, and `bench`, which rewrites the rest of the file, keeps them.
//! Each bench owns its own run; neither has to repeat the other's 15 minutes.

const BEGIN: &str = "<!-- bench-engines: begin -->";
const END: &str = "<!-- bench-engines: end -->";

/// The section docs/performance.md shows for a docs/engines.md: its body under one
/// heading, its own headings one level down.
pub fn from_engines_doc(engines: &str) -> String {
    let mut body = String::new();
    for line in engines.lines().skip_while(|l| l.starts_with("# ")) {
        if line.starts_with("## ") {
            body.push('#');
        }
        body.push_str(line);
        body.push('\n');
    }
    format!(
        "{BEGIN}\n## The CPU engines: ONNX Runtime and OpenVINO (f32, bf16)\n\n\
         Copied from docs/engines.md by `cargo xtask bench-engines`, its own run (what \
         bounds the targets it misses: docs/profile.md).\n\n{}\n{END}\n",
        body.trim()
    )
}

/// The marked section of `doc`, if it has one.
pub fn find(doc: &str) -> Option<&str> {
    let start = doc.find(BEGIN)?;
    let end = doc[start..].find(END)? + start + END.len();
    Some(&doc[start..end])
}

/// `doc` with its marked section replaced by `section` (or `section` appended).
pub fn splice(doc: &str, section: &str) -> String {
    let section = section.trim_end();
    match find(doc) {
        Some(old) => doc.replacen(old, section, 1),
        None => format!("{}\n\n{section}\n", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINES: &str = "# The CPU engines side by side\n\nWritten by x.\n\n| a |\n\n\
                           ## `POST /detect`\n\n| b |\n";

    #[test]
    fn the_section_carries_the_engines_doc_one_level_down() {
        let section = from_engines_doc(ENGINES);
        assert!(section.starts_with(BEGIN));
        assert!(section.trim_end().ends_with(END));
        assert!(section.contains("Written by x."));
        assert!(section.contains("\n### `POST /detect`\n"));
        assert!(!section.contains("# The CPU engines side by side"));
    }

    #[test]
    fn splicing_appends_once_then_replaces() {
        let first = splice("# Performance\n\ntext\n", &from_engines_doc(ENGINES));
        assert!(first.starts_with("# Performance\n\ntext\n\n"));
        let newer = from_engines_doc(&ENGINES.replace("| b |", "| c |"));
        let second = splice(&first, &newer);
        assert_eq!(second.matches(BEGIN).count(), 1);
        assert!(second.contains("| c |") && !second.contains("| b |"));
        assert!(second.starts_with("# Performance\n\ntext\n\n"));
        // What bench rewrites keeps the section it found.
        let kept = splice("# Performance\n\nnew run\n", find(&second).unwrap());
        assert!(kept.contains("new run") && kept.contains("| c |"));
    }
}
