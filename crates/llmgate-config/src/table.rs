//! A section as a table of key to handler: adding a key is one row, and what the table does not
//! list goes to one `rest` handler per section (an unknown-key warning, a pass-through, a
//! prefix rule), so "is this key known" is answered by the table alone.
//!
//! ```text
//! const ROUTER: &Table<RouterSettings> = &[
//!     ("num_retries", Read(|w, out, v, p| out.num_retries = w.u32(v, p))),
//!     ("max_fallbacks", NotYetActive(FALLBACKS)),
//!     ("provider_budget_config", Unenforced("provider budgets are")),
//!     ...
//! ];
//! ```

use crate::node::Node;
use crate::problems::key_path;
use crate::settings::{not_yet_active, unenforced, unsupported};
use crate::walk::Walk;

/// Reads one key's value (`&Node`, at its path `&str`) into the section `T` being built, with
/// the walk's typed readers, which record any problem at that path.
pub(crate) type Handler<T> = fn(&mut Walk<'_>, &mut T, &Node, &str);

/// What a row does with its key's value.
pub(crate) enum Handle<T> {
    /// Reads it into the section.
    Read(Handler<T>),
    /// Accepted and checked, and reported as not active yet in this release when it turns
    /// something on ([`not_yet_active`]); names the feature.
    NotYetActive(&'static str),
    /// A security or spending control llmgate does not enforce yet: an error when it turns
    /// something on ([`unenforced`]); ends in a verb ("IP allow-lists are").
    Unenforced(&'static str),
    /// A LiteLLM setting llmgate does not support: a warning ([`unsupported`]).
    Unsupported,
}

/// A section's keys, each with what to do with its value. A key spelt two ways (`api_base`,
/// `base_url`) is two rows; a key is listed once (a test checks it).
pub(crate) type Table<T> = [(&'static str, Handle<T>)];

/// What a section does with a key its table does not list; it is given the key as well.
pub(crate) type Rest<T> = fn(&mut Walk<'_>, &mut T, &str, &Node, &str);

/// Walks the mapping at `path` in document order: each entry to its row's handler, or to
/// `rest` when no row names it. A repeated key is warned about once and read once (its last
/// value), by [`Walk::entries`].
pub(crate) fn walk_table<T>(
    w: &mut Walk<'_>,
    out: &mut T,
    node: &Node,
    path: &str,
    table: &Table<T>,
    rest: Rest<T>,
) {
    for (key, value) in w.entries(node, path) {
        dispatch(w, out, key, value, &key_path(path, key), table, rest);
    }
}

/// One entry, at `path`: to the handler of `key`'s row, else to `rest`.
pub(crate) fn dispatch<T>(
    w: &mut Walk<'_>,
    out: &mut T,
    key: &str,
    value: &Node,
    path: &str,
    table: &Table<T>,
    rest: Rest<T>,
) {
    match table.iter().find(|(k, _)| *k == key) {
        Some((_, Handle::Read(read))) => read(w, out, value, path),
        Some((_, Handle::NotYetActive(feature))) => not_yet_active(w, value, path, feature),
        Some((_, Handle::Unenforced(what))) => unenforced(w, value, path, what),
        Some((_, Handle::Unsupported)) => unsupported(w, path),
        None => {
            let outer =
                std::mem::replace(&mut w.known_keys, table.iter().map(|(k, _)| *k).collect());
            rest(w, out, key, value, path);
            w.known_keys = outer;
        }
    }
}

/// The `rest` of a section that lists every key it knows: a warning, "unknown key, ignored",
/// with the nearest key the table does list.
pub(crate) fn unknown<T>(w: &mut Walk<'_>, _: &mut T, key: &str, _: &Node, path: &str) {
    let known = std::mem::take(&mut w.known_keys);
    w.report.unknown_key(path, key, known.iter().copied());
    w.known_keys = known;
}

/// The keys of `table`, in order (for tests and messages).
#[cfg(test)]
pub(crate) fn keys<T>(table: &Table<T>) -> Vec<&'static str> {
    table.iter().map(|(k, _)| *k).collect()
}

#[cfg(test)]
pub(crate) fn assert_each_key_once<T>(name: &str, table: &Table<T>) {
    let keys = keys(table);
    for (i, key) in keys.iter().enumerate() {
        assert!(
            !keys[..i].contains(key),
            "{name}: key {key:?} is listed twice; only its first row would ever run"
        );
    }
}
