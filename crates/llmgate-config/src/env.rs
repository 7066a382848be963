//! Environment references: `os.environ/NAME` and `${NAME}`, and where their values come from.
//!
//! Lookup order, first match wins:
//! 1. the config's own `environment_variables` map (LiteLLM sets these into the environment at
//!    start-up; llmgate reads them from the map and never changes the process environment),
//! 2. the process environment,
//! 3. the `.env` file beside the config (the dotenv convention: the real environment wins).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Where environment variables are read from. [`ProcessEnv`] reads the real environment; a
/// `HashMap<String, String>` stands in for it in tests, so no test mutates the process
/// environment.
pub trait EnvLookup {
    /// The variable's value, or `None` when it is unset (or not valid UTF-8).
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment (`std::env::var`), read-only.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvLookup for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// The prefix LiteLLM uses for a whole-string reference: `os.environ/NAME`.
pub(crate) const OS_ENVIRON: &str = "os.environ/";

/// The three sources, in lookup order.
pub(crate) struct Sources<'a> {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) process: &'a dyn EnvLookup,
    pub(crate) dotenv: HashMap<String, String>,
}

impl Sources<'_> {
    /// Looks a name up in the config map, then the process, then `.env`.
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        self.config
            .get(name)
            .cloned()
            .or_else(|| self.process.get(name))
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Looks a name up in the process, then `.env` (for `environment_variables` values, which
    /// cannot refer to the map they are being read into).
    pub(crate) fn lookup_outside_config(&self, name: &str) -> Option<String> {
        self.process
            .get(name)
            .or_else(|| self.dotenv.get(name).cloned())
    }
}

/// Reads `<dir>/.env` without touching the process environment. A missing file is empty.
pub(crate) fn read_dotenv(dir: &Path) -> Result<HashMap<String, String>, String> {
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(HashMap::new());
    }
    let iter = dotenvy::from_path_iter(&path).map_err(|e| format!("cannot read: {e}"))?;
    let mut vars = HashMap::new();
    for item in iter {
        let (key, value) = item.map_err(|e| format!("cannot read: {e}"))?;
        vars.insert(key, value);
    }
    Ok(vars)
}

/// A variable name as POSIX shells accept it.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why a reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// The variable is not set in any source.
    Unset(String),
    /// `os.environ/` followed by something that is not a variable name.
    BadName(String),
}

impl Unresolved {
    pub(crate) fn message(&self) -> String {
        match self {
            Unresolved::Unset(name) => format!(
                "environment variable {name} is not set (looked in environment_variables, \
                 the process environment and .env)"
            ),
            Unresolved::BadName(name) => {
                format!("\"os.environ/{name}\" does not name an environment variable")
            }
        }
    }
}

/// Resolves `os.environ/NAME` (the whole string) and every `${NAME}` inside the string.
/// Text that only looks similar (`${not a name}`, a `$` alone) is kept as written.
pub(crate) fn resolve(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<Unresolved>> {
    if let Some(name) = text.strip_prefix(OS_ENVIRON) {
        let name = name.trim();
        if !is_var_name(name) {
            return Err(vec![Unresolved::BadName(name.to_owned())]);
        }
        return lookup(name).ok_or_else(|| vec![Unresolved::Unset(name.to_owned())]);
    }
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if is_var_name(&after[..end]) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        let unset = Unresolved::Unset(name.to_owned());
                        if !missing.contains(&unset) {
                            missing.push(unset);
                        }
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn resolves_references() {
        let vars = env(&[("A", "1"), ("HOST", "h"), ("EMPTY", "")]);
        let lookup = |n: &str| vars.get(n).cloned();
        let cases: &[(&str, Result<&str, Vec<Unresolved>>)] = &[
            ("plain", Ok("plain")),
            ("os.environ/A", Ok("1")),
            ("os.environ/EMPTY", Ok("")),
            ("http://${HOST}:${A}/v1", Ok("http://h:1/v1")),
            ("${A}${A}", Ok("11")),
            ("cost $5 ${not a name} ${", Ok("cost $5 ${not a name} ${")),
            ("x-os.environ/A", Ok("x-os.environ/A")),
            (
                "os.environ/NOPE",
                Err(vec![Unresolved::Unset("NOPE".into())]),
            ),
            (
                "${X}-${Y}-${X}",
                Err(vec![
                    Unresolved::Unset("X".into()),
                    Unresolved::Unset("Y".into()),
                ]),
            ),
            (
                "os.environ/a b",
                Err(vec![Unresolved::BadName("a b".into())]),
            ),
        ];
        for (input, want) in cases {
            let got = resolve(input, &lookup);
            let want = want.clone().map(str::to_owned);
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn sources_in_order() {
        let process = env(&[("P", "process"), ("BOTH", "process")]);
        let sources = Sources {
            config: [
                ("C".to_owned(), "config".to_owned()),
                ("BOTH".to_owned(), "config".to_owned()),
            ]
            .into_iter()
            .collect(),
            process: &process,
            dotenv: env(&[("D", "dotenv"), ("P", "dotenv")]),
        };
        assert_eq!(sources.lookup("BOTH").as_deref(), Some("config"));
        assert_eq!(sources.lookup("P").as_deref(), Some("process"));
        assert_eq!(sources.lookup("D").as_deref(), Some("dotenv"));
        assert_eq!(sources.lookup("C").as_deref(), Some("config"));
        assert_eq!(sources.lookup_outside_config("C"), None);
        assert_eq!(sources.lookup("NONE"), None);
    }
}
