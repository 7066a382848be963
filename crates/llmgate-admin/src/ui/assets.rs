//! The UI's scripts, embedded in the binary and served under `/ui/assets/`. Every page loads
//! them all, in this order: `app.js` holds the helpers, the pages it has always had and the
//! shell (which starts the page named by `<body data-page>` once the document is parsed);
//! each later script adds its pages to the shell's `pages`, using `app.js`'s helpers.

/// Each script's path and text, in the order the pages load them.
const SCRIPTS: [(&str, &str); 3] = [
    ("/ui/assets/app.js", include_str!("assets/app.js")),
    ("/ui/assets/spend.js", include_str!("assets/spend.js")),
    ("/ui/assets/teams.js", include_str!("assets/teams.js")),
];

/// The script served at `path`, if any.
pub(crate) fn script(path: &str) -> Option<&'static str> {
    SCRIPTS.iter().find(|(p, _)| *p == path).map(|(_, js)| *js)
}

/// The `<script>` elements every page ends with.
pub(crate) fn script_tags() -> String {
    SCRIPTS
        .iter()
        .map(|(path, _)| format!("<script src=\"{path}\"></script>"))
        .collect()
}

/// Every script's path (for the tests).
#[cfg(test)]
pub(crate) fn paths() -> impl Iterator<Item = &'static str> {
    SCRIPTS.iter().map(|(p, _)| *p)
}
