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
    /// Where in the file, when the path is found there (the main file: not an `include`d one).
    pub position: Option<Position>,
}

/// A line and column in the config file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The line.
    pub line: u64,
    /// The column (in characters).
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

impl Problem {
    /// A problem with the given severity.
    pub fn new(severity: Severity, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
            severity,
            position: None,
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
        match (self.path.is_empty(), self.position) {
            (true, _) => f.write_str(&self.message),
            (false, None) => write!(f, "{}: {}", self.path, self.message),
            (false, Some(at)) => write!(f, "{}: {} ({at})", self.path, self.message),
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

    /// A key llmgate does not know at all; `known` are the keys that could stand here, for a
    /// "did you mean".
    pub(crate) fn unknown_key<'k>(
        &mut self,
        path: &str,
        key: &str,
        known: impl IntoIterator<Item = &'k str>,
    ) {
        let message =
            if let Some((_, instead)) = NOT_LITELLM.iter().find(|(p, _)| path.ends_with(p)) {
                format!("not a LiteLLM key, ignored: {instead}")
            } else if let Some(near) = did_you_mean(key, known) {
                format!("unknown key, ignored (did you mean `{near}`?)")
            } else {
                "unknown key, ignored".to_owned()
            };
        self.warning(path, message);
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

/// Keys people write that LiteLLM has under another name or shape, by the end of their path,
/// with the key that does the job.
const NOT_LITELLM: &[(&str, &str)] = &[
    (
        "router_settings.retry_policy.max_retries",
        "retries per request are `router_settings.num_retries`; `retry_policy` takes one count per error class (`RateLimitErrorRetries`, `TimeoutErrorRetries`, ...)",
    ),
    (
        "router_settings.retry_policy.delay",
        "the least wait before a retry is `router_settings.retry_after` (seconds)",
    ),
    (
        "router_settings.rate_limit",
        "a provider's limits are `rpm`/`tpm` in each deployment's `litellm_params`; callers' limits are a virtual key's `rpm_limit`/`tpm_limit` (docs/rate-limits.md)",
    ),
];

/// The candidate closest to `word` when it is close enough to be a slip of the keyboard (an
/// edit or two, fewer for short words), else `None`. Ties go to the first candidate.
pub(crate) fn did_you_mean<'k>(
    word: &str,
    candidates: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    let len = word.chars().count();
    let allowed = match len {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
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

    #[test]
    fn suggests_only_near_misses() {
        let known = ["api_base", "api_key", "api_version", "model"];
        assert_eq!(did_you_mean("api_bse", known), Some("api_base"));
        assert_eq!(did_you_mean("api_kye", known), Some("api_key"));
        assert_eq!(did_you_mean("modle", known), Some("model"));
        assert_eq!(did_you_mean("temperature", known), None);
        assert_eq!(
            did_you_mean("api_base", known),
            None,
            "a known key is no miss"
        );
        assert_eq!(did_you_mean("xy", ["ab"]), None);
    }
}
