//! Engine availability as reported by `/health` (spec A4), with the legal
//! transitions between states made explicit.

use std::fmt;

/// Why the engine is in `Warning` or `Error`; always a non-empty single line
/// so it can go straight into `/health` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// Empty (or blank) reasons become "unknown error"; line breaks become
    /// spaces so the reason stays one line.
    pub fn new(reason: impl Into<String>) -> Reason {
        let text = reason.into().replace(['\r', '\n'], " ");
        if text.trim().is_empty() {
            Reason("unknown error".to_owned())
        } else {
            Reason(text)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The engine's availability (spec A1/A4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Availability {
    #[default]
    None,
    Downloading,
    Converting,
    Uploading,
    Enabled,
    Warning(Reason),
    Error(Reason),
}

/// A transition that the start-up state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal availability transition from {from} to {to}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub to: &'static str,
}

impl Availability {
    /// Numeric code used where a number is needed (metrics).
    pub fn code(&self) -> u16 {
        match self {
            Availability::None => 0,
            Availability::Downloading => 10,
            Availability::Converting => 20,
            Availability::Uploading => 30,
            Availability::Enabled => 200,
            Availability::Warning(_) => 300,
            Availability::Error(_) => 500,
        }
    }

    /// The exact wire name for `aiAvailability`.
    pub fn name(&self) -> &'static str {
        match self {
            Availability::None => "None",
            Availability::Downloading => "Downloading",
            Availability::Converting => "Converting",
            Availability::Uploading => "Uploading",
            Availability::Enabled => "Enabled",
            Availability::Warning(_) => "Warning",
            Availability::Error(_) => "Error",
        }
    }

    /// Back from [`Availability::name`] and [`Availability::reason`] (a state another
    /// process published); `None` for a name that is not one.
    pub fn from_name(name: &str, reason: Option<&str>) -> Option<Availability> {
        let reason = || Reason::new(reason.unwrap_or_default());
        Some(match name {
            "None" => Availability::None,
            "Downloading" => Availability::Downloading,
            "Converting" => Availability::Converting,
            "Uploading" => Availability::Uploading,
            "Enabled" => Availability::Enabled,
            "Warning" => Availability::Warning(reason()),
            "Error" => Availability::Error(reason()),
            _ => return None,
        })
    }

    /// The `errorMessage` of `/health`: only `Warning` and `Error` carry one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Availability::Warning(r) | Availability::Error(r) => Some(r.as_str()),
            _ => None,
        }
    }

    /// Whether a working engine exists (a `Warning` still serves requests).
    pub fn is_usable(&self) -> bool {
        matches!(self, Availability::Enabled | Availability::Warning(_))
    }

    /// Moves to `to` when the start-up state machine allows it.
    pub fn transition(&self, to: Availability) -> Result<Availability, IllegalTransition> {
        use Availability as A;
        let legal = matches!(
            (self, &to),
            (A::None, A::Downloading)
                | (A::Error(_), A::Downloading)
                | (A::Downloading, A::Converting)
                | (A::Downloading, A::Enabled)
                | (A::Downloading, A::Error(_))
                | (A::Converting, A::Enabled)
                | (A::Converting, A::Uploading)
                | (A::Converting, A::Warning(_))
                | (A::Converting, A::Error(_))
                | (A::Uploading, A::Enabled)
                | (A::Uploading, A::Warning(_))
                | (A::Uploading, A::Error(_))
                | (A::Enabled, A::Warning(_))
                | (A::Warning(_), A::Warning(_))
                | (A::Warning(_), A::Converting)
                | (A::Warning(_), A::Enabled)
        );
        if legal {
            Ok(to)
        } else {
            Err(IllegalTransition {
                from: self.name(),
                to: to.name(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_from_its_name_and_reason() {
        for state in [
            Availability::None,
            Availability::Downloading,
            Availability::Enabled,
            Availability::Warning(Reason::new("cpu fallback")),
            Availability::Error(Reason::new("no model")),
        ] {
            assert_eq!(
                Availability::from_name(state.name(), state.reason()),
                Some(state.clone())
            );
        }
        assert_eq!(Availability::from_name("Sleeping", None), None);
    }

    fn all() -> Vec<Availability> {
        vec![
            Availability::None,
            Availability::Downloading,
            Availability::Converting,
            Availability::Uploading,
            Availability::Enabled,
            Availability::Warning(Reason::new("w")),
            Availability::Error(Reason::new("e")),
        ]
    }

    #[test]
    fn every_pair_matches_the_table() {
        let legal: &[(&str, &str)] = &[
            ("None", "Downloading"),
            ("Error", "Downloading"),
            ("Downloading", "Converting"),
            ("Downloading", "Enabled"),
            ("Downloading", "Error"),
            ("Converting", "Enabled"),
            ("Converting", "Uploading"),
            ("Converting", "Warning"),
            ("Converting", "Error"),
            ("Uploading", "Enabled"),
            ("Uploading", "Warning"),
            ("Uploading", "Error"),
            ("Enabled", "Warning"),
            ("Warning", "Warning"),
            ("Warning", "Converting"),
            ("Warning", "Enabled"),
        ];
        let mut checked = 0;
        for from in all() {
            for to in all() {
                let expected = legal.contains(&(from.name(), to.name()));
                let got = from.transition(to.clone());
                match got {
                    Ok(next) => {
                        assert!(
                            expected,
                            "{} -> {} should be illegal",
                            from.name(),
                            to.name()
                        );
                        assert_eq!(next, to);
                    }
                    Err(e) => {
                        assert!(
                            !expected,
                            "{} -> {} should be legal",
                            from.name(),
                            to.name()
                        );
                        assert_eq!(e.from, from.name());
                        assert_eq!(e.to, to.name());
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 49);
    }

    #[test]
    fn codes_names_and_reasons() {
        let codes: Vec<u16> = all().iter().map(Availability::code).collect();
        assert_eq!(codes, [0, 10, 20, 30, 200, 300, 500]);
        assert_eq!(
            Availability::Error(Reason::new("boom")).reason(),
            Some("boom")
        );
        assert_eq!(Availability::Enabled.reason(), None);
        assert!(Availability::Warning(Reason::new("x")).is_usable());
        assert!(!Availability::Error(Reason::new("x")).is_usable());
    }

    #[test]
    fn reason_is_one_non_empty_line() {
        assert_eq!(Reason::new("").as_str(), "unknown error");
        assert_eq!(Reason::new(" \n").as_str(), "unknown error");
        assert_eq!(Reason::new("a\nb\r\nc").as_str(), "a b  c");
    }

    #[test]
    fn error_message() {
        let e = Availability::None
            .transition(Availability::Enabled)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "illegal availability transition from None to Enabled"
        );
    }
}
