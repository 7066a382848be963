//! What loading found wrong or worth saying: [`Problem`], [`Problems`], [`Severity`].

use std::fmt;

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The config cannot be served as written; loading fails.
    Error,
    /// Probably a mistake (an unknown key, a repeated key, a master key without `sk-`), but the
    /// config loads.
    Warning,
    /// A LiteLLM setting llmgate reads and checks but does not act on in this release.
    NotYetActive,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::NotYetActive => "not yet active",
        })
    }
}

/// One finding, located by its path in the config
/// (`model_list[2].litellm_params.model: unknown provider "foo"`).
///
/// `path` is empty for findings about the whole file (a YAML syntax error, which names its
/// line and column in the message instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `model_list[2].litellm_params.model`, `router_settings.fallbacks[0]["gpt-4o"]`.
    pub path: String,
    /// What, in a sentence fragment a user can act on. Never contains a secret's value.
    pub message: String,
    /// How serious.
    pub severity: Severity,
}

impl Problem {
    /// A problem with the given severity.
    pub fn new(severity: Severity, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
            severity,
        }
    }

    /// An [`Severity::Error`].
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem::new(Severity::Error, path, message)
    }

    /// A [`Severity::Warning`].
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem::new(Severity::Warning, path, message)
    }

    /// A [`Severity::NotYetActive`] notice.
    pub fn not_yet_active(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem::new(Severity::NotYetActive, path, message)
    }

    /// Whether this problem stops the config from loading.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config did not load: every problem found, errors first, then warnings and notices
/// (each group in document order), so one run shows everything there is to fix.
///
/// `Display` prints one problem per line, each prefixed by its severity
/// (`error: model_list[0].litellm_params.model: unknown provider "foo"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The problems that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|p| p.is_error())
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {problem}", problem.severity)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Collects problems during a load.
#[derive(Debug, Default)]
pub(crate) struct Report {
    problems: Vec<Problem>,
}

impl Report {
    pub(crate) fn push(&mut self, problem: Problem) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Problem::error(path, message));
    }

    pub(crate) fn warning(&mut self, path: &str, message: impl Into<String>) {
        self.push(Problem::warning(path, message));
    }

    pub(crate) fn not_yet_active(&mut self, path: &str, message: impl Into<String>) {
        self.push(Problem::not_yet_active(path, message));
    }

    /// A key llmgate does not know at all.
    pub(crate) fn unknown_key(&mut self, path: &str) {
        self.warning(path, "unknown key, ignored");
    }

    pub(crate) fn error_count(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    /// All problems, errors first, then warnings, then notices; document order within each.
    pub(crate) fn into_sorted(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| p.severity);
        self.problems
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain identifier (a model group name
/// such as `gpt-4.1` in `fallbacks`).
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", serde_json::Value::from(key)),
    }
}

/// `parent[index]`.
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_path_then_message() {
        let p = Problem::error(
            "model_list[2].litellm_params.model",
            "unknown provider \"foo\"",
        );
        assert_eq!(
            p.to_string(),
            "model_list[2].litellm_params.model: unknown provider \"foo\""
        );
        assert_eq!(Problem::error("", "bad").to_string(), "bad");
    }

    #[test]
    fn problems_print_one_per_line_errors_first() {
        let mut r = Report::default();
        r.not_yet_active("a", "n");
        r.warning("b", "w");
        r.error("c", "e");
        r.error("c", "e");
        let all = Problems(r.into_sorted());
        assert_eq!(
            all.to_string(),
            "error: c: e\nwarning: b: w\nnot yet active: a: n"
        );
        assert_eq!(all.errors().count(), 1);
    }

    #[test]
    fn key_paths_quote_unusual_keys() {
        assert_eq!(key_path("", "model_list"), "model_list");
        assert_eq!(key_path("a", "b_c-d"), "a.b_c-d");
        assert_eq!(key_path("f[0]", "gpt-4.1"), "f[0][\"gpt-4.1\"]");
        assert_eq!(index_path("model_list", 3), "model_list[3]");
    }
}
