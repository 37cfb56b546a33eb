//! Located, compiler-style configuration diagnostics.
//!
//! Every problem found while reading a configuration becomes a [`Diagnostic`] rather than an
//! early return, so one run can report all of them (Flume reports none of the typos; flumen
//! reports them all, see the reference §8). A diagnostic renders itself on one line like a
//! compiler message:
//!
//! ```text
//! flume.conf:17: error: a1.sources.r1.port: invalid number `80x` (source r1)
//!   hint: ...
//! ```

use std::fmt;
use std::sync::Arc;

/// How bad a [`Diagnostic`] is. Ordered so that `max()` over a list gives the worst one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The configuration is usable, but something looks wrong (unknown key, unused channel).
    Warning,
    /// The configuration is refused.
    Error,
}

/// One problem in a configuration, with as much location as is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file the key came from; filled by the caller that knows it (see [`Diagnostic::with_file`]).
    pub file: Option<Arc<str>>,
    /// 1-based line of the key in the file.
    pub line: Option<u32>,
    /// The full key as written, e.g. `a1.sources.r1.port`.
    pub key: Option<String>,
    /// The component concerned, e.g. `source r1` or `interceptor i1 of source r1`.
    pub component: Option<String>,
    /// What is wrong, without location (the location is in the other fields).
    pub message: String,
    /// A suggestion for the fix, e.g. "did you mean `transactionCapacity`?".
    pub hint: Option<String>,
}

impl Diagnostic {
    fn new(severity: Severity, message: String) -> Self {
        Diagnostic {
            severity,
            file: None,
            line: None,
            key: None,
            component: None,
            message,
            hint: None,
        }
    }

    /// An error with no location yet.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message.into())
    }

    /// A warning with no location yet.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message.into())
    }

    /// Sets the 1-based line.
    #[must_use]
    pub fn at_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the full key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the component label.
    #[must_use]
    pub fn with_component(mut self, c: impl Into<String>) -> Self {
        self.component = Some(c.into());
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    /// Sets the file name; shared because every diagnostic of one file carries the same name.
    #[must_use]
    pub fn with_file(mut self, f: Arc<str>) -> Self {
        self.file = Some(f);
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sets the line only when one is known; saves callers an `if let` for optional lines.
    #[must_use]
    pub(crate) fn at_opt_line(mut self, line: Option<u32>) -> Self {
        if line.is_some() {
            self.line = line;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        match self.severity {
            Severity::Error => f.write_str("error: ")?,
            Severity::Warning => f.write_str("warning: ")?,
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(c) = &self.component {
            write!(f, " ({c})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Suggests the candidate closest to `given`, as "did you mean `x`?".
///
/// Case is ignored when comparing, because Flume users often get only the case wrong
/// (`transactioncapacity`). A candidate qualifies with a Jaro-Winkler similarity of at least 0.8
/// or a Levenshtein distance of at most 2; the best Jaro-Winkler score wins. Returns `None` when
/// nothing is close or when `given` equals a candidate exactly.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let g = given.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == given {
            return None;
        }
        let lc = c.to_lowercase();
        let jw = strsim::jaro_winkler(&g, &lc);
        let lev = strsim::levenshtein(&g, &lc);
        if jw >= 0.8 || lev <= 2 {
            // A Levenshtein-only match still needs a rank; jw is a fine tie-breaker.
            if best.is_none_or(|(s, _)| jw > s) {
                best = Some((jw, c));
            }
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_full() {
        let d = Diagnostic::error("invalid number `80x`")
            .with_file(Arc::from("flume.conf"))
            .at_line(17)
            .with_key("a1.sources.r1.port")
            .with_component("source r1")
            .with_hint("write digits only");
        assert_eq!(
            d.to_string(),
            "flume.conf:17: error: a1.sources.r1.port: invalid number `80x` (source r1)\n  hint: write digits only"
        );
        assert!(d.is_error());
    }

    #[test]
    fn display_minimal_warning() {
        let d = Diagnostic::warning("something odd");
        assert_eq!(d.to_string(), "warning: something odd");
        assert!(!d.is_error());
        let d = Diagnostic::warning("x").with_file(Arc::from("f"));
        assert_eq!(d.to_string(), "f: warning: x");
    }

    #[test]
    fn severity_order() {
        assert!(Severity::Error > Severity::Warning);
    }

    #[test]
    fn did_you_mean_finds_close() {
        let c = ["capacity", "transactionCapacity", "keep-alive"];
        assert_eq!(
            did_you_mean("transactionCapacty", c).as_deref(),
            Some("did you mean `transactionCapacity`?")
        );
        assert_eq!(
            did_you_mean("transactioncapacity", c).as_deref(),
            Some("did you mean `transactionCapacity`?")
        );
        assert_eq!(did_you_mean("zzzzzzzz", c), None);
        assert_eq!(did_you_mean("capacity", c), None);
        assert_eq!(
            did_you_mean("ab", ["xy"]),
            Some("did you mean `xy`?".into())
        );
    }
}
