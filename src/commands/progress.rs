//! Progress bars on stderr, only when stderr is a terminal: piped or redirected
//! output stays exactly the JSON lines and the error lines.

use std::io::IsTerminal;
use std::sync::Arc;

use detections::progress::{Progress, ProgressBar, Silent};
use indicatif::{ProgressBar as Bar, ProgressState, ProgressStyle};

/// Bars when stderr is a terminal, [`Silent`] otherwise.
pub fn for_stderr() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(TerminalBars)
    } else {
        Arc::new(Silent)
    }
}

struct TerminalBars;

impl Progress for TerminalBars {
    fn start(&self, what: &str, total: Option<u64>, unit: &'static str) -> Box<dyn ProgressBar> {
        let (bar, template) = match total {
            Some(total) => (
                Bar::new(total),
                format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{rate}} left {{eta}}"),
            ),
            None => (
                Bar::new_spinner(),
                format!("{{msg}} {{spinner}} {{pos}} {unit} {{rate}} {{elapsed}}"),
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}/s", state.per_sec());
            };
            bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Box::new(TerminalBar(bar))
    }
}

struct TerminalBar(Bar);

impl ProgressBar for TerminalBar {
    fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    fn finish(&self, completed: bool) {
        if completed {
            self.0.set_length(self.0.position());
            self.0.finish();
        } else {
            self.0.abandon();
        }
    }
}
