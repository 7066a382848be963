//! The UI's HTML: one shell (navigation, the CSRF token in a `<meta>`), each page's skeleton,
//! and the sign-in form. Pages carry no data: `app.js` fills them from the JSON APIs.

use llmgate_core::{SignedIn, UserRole};

/// A page of the UI: its path, its title in the navigation, its skeleton.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    Overview,
    Models,
    Keys,
    Teams,
    EndUsers,
    Logs,
    Spend,
    Alerts,
    Config,
}

impl Page {
    pub(crate) const ALL: [Page; 9] = [
        Page::Overview,
        Page::Models,
        Page::Keys,
        Page::Teams,
        Page::EndUsers,
        Page::Logs,
        Page::Spend,
        Page::Alerts,
        Page::Config,
    ];

    /// The page at `path`, if any.
    pub(crate) fn at(path: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| {
            p.path() == path || (*p == Page::Overview && (path == "/ui" || path == "/ui/"))
        })
    }

    fn path(self) -> &'static str {
        match self {
            Page::Overview => "/ui/",
            Page::Models => "/ui/models",
            Page::Keys => "/ui/keys",
            Page::Teams => "/ui/teams",
            Page::EndUsers => "/ui/end-users",
            Page::Logs => "/ui/logs",
            Page::Spend => "/ui/spend",
            Page::Alerts => "/ui/alerts",
            Page::Config => "/ui/config",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::Models => "models",
            Page::Keys => "keys",
            Page::Teams => "teams",
            Page::EndUsers => "end-users",
            Page::Logs => "logs",
            Page::Spend => "spend",
            Page::Alerts => "alerts",
            Page::Config => "config",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Models => "Models",
            Page::Keys => "Keys",
            Page::Teams => "Teams",
            Page::EndUsers => "End users",
            Page::Logs => "Request log",
            Page::Spend => "Spend",
            Page::Alerts => "Alerts",
            Page::Config => "Config",
        }
    }

    fn skeleton(self) -> &'static str {
        match self {
            Page::Overview => OVERVIEW,
            Page::Models => MODELS,
            Page::Keys => KEYS,
            Page::Teams => TEAMS,
            Page::EndUsers => END_USERS,
            Page::Logs => LOGS,
            Page::Spend => SPEND,
            Page::Alerts => ALERTS,
            Page::Config => CONFIG,
        }
    }

    /// Whether `role` may open the page: the gateway-wide pages (overview, spend, alerts,
    /// end users, config) are for those who see everything; an internal user has their keys,
    /// their request log, the teams they are in and the models.
    pub(crate) fn open_to(self, role: UserRole) -> bool {
        role.sees_all() || matches!(self, Page::Models | Page::Keys | Page::Logs | Page::Teams)
    }

    /// The whole page for a session whose CSRF token is `csrf`, signed in as `who`.
    pub(crate) fn render(self, csrf: &str, who: &SignedIn) -> String {
        let nav: String = Page::ALL
            .iter()
            .filter(|p| p.open_to(who.role))
            .map(|p| {
                let current = if *p == self {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!("<a href=\"{}\"{current}>{}</a>", p.path(), p.title())
            })
            .collect();
        format!(
            "{head}<title>{title} · llmgate</title><meta name=\"csrf\" content=\"{csrf}\"></head>\
             <body data-page=\"{id}\" data-role=\"{role}\"><header><strong>llmgate</strong><nav>{nav}</nav>\
             <span class=\"who\">{user} · {role}</span>\
             <button id=\"logout\" type=\"button\">Sign out</button></header>\
             <main><h1>{title}</h1><p id=\"error\" class=\"error\" role=\"alert\" hidden></p>{body}</main>\
             {scripts}</body></html>",
            head = HEAD,
            title = self.title(),
            id = self.id(),
            role = who.role.as_str(),
            user = escape(&who.name),
            body = self.skeleton(),
            scripts = super::assets::script_tags(),
        )
    }
}

/// The sign-in page, with `message` (already plain text) above the form.
pub(crate) fn login(message: Option<&str>) -> String {
    let message = message.map_or(String::new(), |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m))
    });
    format!(
        "{HEAD}<title>Sign in · llmgate</title></head><body data-page=\"login\"><main class=\"login\">\
         <h1>llmgate</h1>{message}<form method=\"post\" action=\"/ui/login\">\
         <label for=\"username\">User name or e-mail</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>\
         <form method=\"post\" action=\"/ui/login\">\
         <label for=\"key\">Or the master key</label>\
         <input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required>\
         <button type=\"submit\">Sign in with the master key</button></form></main></body></html>"
    )
}

/// `s` safe inside HTML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<link rel=\"icon\" href=\"data:,\">\
<link rel=\"stylesheet\" href=\"/ui/assets/app.css\">";

const OVERVIEW: &str = r##"<p id="ranges" class="ranges"><button type="button" data-range="hour">Last hour</button> <button type="button" data-range="day">Last day</button> <button type="button" data-range="month">Last 30 days</button></p>
<section class="cards" id="cards"></section>
<div class="charts"><div id="chart-requests" class="chart"></div><div id="chart-latency" class="chart"></div><div id="chart-spend" class="chart"></div></div>
<div class="three"><section><h2>Top models</h2><table id="top-models"><thead><tr><th>Model group</th><th>Requests</th><th>Errors</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>Top keys</h2><table id="top-keys"><thead><tr><th>Key</th><th>Requests</th><th>Errors</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>Top deployments</h2><table id="top-deployments"><thead><tr><th>Deployment</th><th>Requests</th><th>Errors</th><th>Spend</th></tr></thead><tbody></tbody></table></section></div>"##;

const MODELS: &str = r##"<p>Every deployment, by model group, as the router sees it now. <button id="refresh" type="button">Refresh</button> <button id="health" type="button">Run the health check</button> <span id="health-result"></span></p>
<div class="scroll"><table id="deployments"><thead><tr><th>Group</th><th>Deployment</th><th>Provider</th><th>Model</th><th>State</th><th>In flight</th><th>rpm used</th><th>tpm used</th><th>rpd used today</th><th>Latency</th></tr></thead><tbody></tbody></table></div>"##;

const KEYS: &str = r##"<details id="create-box"><summary id="create-title">Create a key</summary>
<form id="create">
<label>Alias <input name="key_alias"></label>
<label>Team <select name="team_id" id="key-team"><option value="">no team</option></select></label>
<label>Models (comma separated, empty: all) <input name="models"></label>
<label>Budget (USD) <input name="max_budget" type="number" step="any" min="0"></label>
<label>Budget period <input name="budget_duration" placeholder="30d"></label>
<label>Expires after <input name="duration" placeholder="90d"></label>
<label>rpm limit <input name="rpm_limit" type="number" min="0"></label>
<label>tpm limit <input name="tpm_limit" type="number" min="0"></label>
<label>Parallel requests <input name="max_parallel_requests" type="number" min="0"></label>
<label>Metadata (JSON) <input name="metadata" placeholder='{"team": "x"}'></label>
<button type="submit" id="create-submit">Create</button> <button type="button" id="create-cancel" hidden>Cancel</button></form></details>
<div id="secret" class="secret" hidden><p>The new key. It is shown this once: copy it now.</p>
<code id="secret-value"></code> <button id="copy" type="button">Copy</button></div>
<p><input id="search" type="search" placeholder="Search by alias or key"></p>
<div class="scroll"><table id="keys"><thead><tr><th>Alias</th><th>Key</th><th>Models</th><th>Spend / budget</th><th>Limits</th><th>Expires</th><th>Team</th><th>State</th><th></th></tr></thead><tbody></tbody></table></div>"##;

const TEAMS: &str = r##"<details id="team-box"><summary id="team-form-title">Create a team</summary>
<form id="team-form" class="grid">
<label>Alias <input name="team_alias"></label>
<label>Models (comma separated, empty: all) <input name="models"></label>
<label>Budget (USD) <input name="max_budget" type="number" step="any" min="0"></label>
<label>Budget period <input name="budget_duration" placeholder="30d"></label>
<label>rpm limit <input name="rpm_limit" type="number" min="0"></label>
<label>tpm limit <input name="tpm_limit" type="number" min="0"></label>
<label>Parallel requests <input name="max_parallel_requests" type="number" min="0"></label>
<label>Metadata (JSON) <input name="metadata" placeholder='{"cost_center": "x"}'></label>
<button type="submit" id="team-submit">Create</button> <button type="button" id="team-cancel" hidden>Cancel</button></form></details>
<div class="scroll"><table id="teams"><thead><tr><th>Alias</th><th>Team id</th><th>Models</th><th>Spend / budget</th><th>Limits</th><th>Members</th><th>State</th><th></th></tr></thead><tbody></tbody></table></div>
<section id="team-detail" hidden><h2 id="team-title"></h2>
<div class="two"><section><h3>Members</h3>
<div class="scroll"><table id="members"><thead><tr><th>User id</th><th>Email</th><th>Role</th><th></th></tr></thead><tbody></tbody></table></div>
<form id="member-form" class="grid">
<label>User id <input name="user_id"></label>
<label>Email <input name="user_email" type="email"></label>
<label>Role <select name="role"><option>user</option><option>admin</option></select></label>
<button type="submit">Add member</button></form></section>
<section><h3>Keys</h3>
<div class="scroll"><table id="team-keys"><thead><tr><th>Alias</th><th>Key</th><th>Spend / budget</th><th>State</th></tr></thead><tbody></tbody></table></div>
<p><a id="team-new-key" class="button" href="/ui/keys">Create a key in this team</a></p></section></div></section>"##;

const END_USERS: &str = r##"<p class="note">End users (LiteLLM's customers) are who requests are made for: the <code>user</code> field, or an end-user header. One that spends appears here by itself.</p>
<details id="customer-box"><summary id="customer-form-title">Add an end user</summary>
<form id="customer-form" class="grid">
<label>End user id <input name="user_id" required></label>
<label>Alias <input name="alias"></label>
<label>Budget (USD) <input name="max_budget" type="number" step="any" min="0"></label>
<label>Budget period <input name="budget_duration" placeholder="30d"></label>
<button type="submit" id="customer-submit">Add</button> <button type="button" id="customer-cancel" hidden>Cancel</button></form></details>
<p><input id="customer-search" type="search" placeholder="Search by id or alias"></p>
<div class="scroll"><table id="customers"><thead><tr><th>End user</th><th>Alias</th><th>Spend / budget</th><th>Budget resets</th><th>State</th><th></th></tr></thead><tbody></tbody></table></div>"##;

const LOGS: &str = r##"<form id="filters" class="filters">
<label>Key alias <input name="key_alias"></label>
<label>Model group <input name="model"></label>
<label>Request id <input name="request_id"></label>
<label>Status <select name="status"><option value="">any</option><option>success</option><option>failure</option></select></label>
<label>From <input name="start_date" type="date"></label>
<label>To <input name="end_date" type="date"></label>
<button type="submit">Search</button></form>
<div class="scroll"><table id="logs"><thead><tr><th>Time</th><th>Request id</th><th>Key</th><th>Model group</th><th>Deployment</th><th>Status</th><th>Latency</th><th>First token</th><th>Tokens</th><th>Cost</th><th>Attempts</th><th>Error</th></tr></thead><tbody></tbody></table></div>
<p><button id="more" type="button" hidden>Older requests</button></p>"##;

const SPEND: &str = r##"<form id="range" class="filters">
<label>From <input name="start_date" type="date"></label>
<label>To <input name="end_date" type="date"></label>
<button type="submit">Show</button> <a id="csv" href="#" download="spend.csv">Export the log as CSV</a></form>
<section class="cards" id="total"></section>
<div class="two"><section><h2>By model</h2><table id="by-model"><thead><tr><th>Model</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>By key</h2><table id="by-key"><thead><tr><th>Key</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>By provider</h2><table id="by-provider"><thead><tr><th>Provider</th><th>Requests</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>By day</h2><table id="by-day"><thead><tr><th>Day (UTC)</th><th>Requests</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>By team</h2><table id="by-team"><thead><tr><th>Team</th><th>Requests</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>By end user</h2><table id="by-end-user"><thead><tr><th>End user</th><th>Requests</th><th>Spend</th></tr></thead><tbody></tbody></table></section>
<section><h2>By internal user</h2><table id="by-user"><thead><tr><th>User (the key's user_id)</th><th>Requests</th><th>Spend</th></tr></thead><tbody></tbody></table></section></div>
<section><h2>Report</h2><form id="report-form" class="filters">
<label>Group by <select name="group_by"><option value="team">team</option><option value="customer">end user</option><option value="api_key">key</option></select></label>
<button type="submit">Show the report</button></form>
<div class="scroll"><table id="report"><thead><tr><th>Day (UTC)</th><th id="report-group">Team</th><th>Requests</th><th>Spend</th><th>By model</th></tr></thead><tbody></tbody></table></div></section>
<p class="note">Every figure is summed by the database over the requests in the range (From and To, UTC, both included).</p>"##;

const ALERTS: &str = r##"<p><span id="alerting-state"></span> <button id="alerts-refresh" type="button">Refresh</button></p>
<section class="cards" id="alert-counts"></section>
<div class="scroll"><table id="alerts"><thead><tr><th>Time</th><th>Type</th><th>Event</th><th>Level</th><th>Message</th><th>Delivery</th></tr></thead><tbody></tbody></table></div>
<section><h2>Counts since start</h2><table id="alert-count-table"><thead><tr><th>Type</th><th>Channel</th><th>Result</th><th>Alerts</th></tr></thead><tbody></tbody></table></section>"##;

const CONFIG: &str = r##"<p><button id="reload" type="button">Reload the config file</button> <span id="reload-result"></span></p>
<section><h2>Notices</h2><ul id="notices"></ul></section>
<section><h2 id="config-path">Config file</h2><pre id="yaml"></pre></section>"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_found_by_its_path_and_carries_the_csrf_token() {
        for page in Page::ALL {
            assert_eq!(Page::at(page.path()), Some(page));
            let admin = SignedIn {
                user_id: None,
                role: UserRole::ProxyAdmin,
                name: "admin".into(),
            };
            let html = page.render("tok123", &admin);
            assert!(html.contains("<meta name=\"csrf\" content=\"tok123\">"));
            assert!(html.contains("aria-current=\"page\""));
        }
        // An internal user's navigation leaves out the config; the name is escaped.
        let user = SignedIn {
            user_id: Some("<ana>".into()),
            role: UserRole::InternalUser,
            name: "<ana>".into(),
        };
        let html = Page::Keys.render("t", &user);
        assert!(!html.contains("/ui/config") && html.contains("&lt;ana&gt; · internal_user"));
        assert!(!Page::Config.open_to(UserRole::InternalUserViewer));
        assert!(!Page::Overview.open_to(UserRole::InternalUser));
        assert!(Page::Logs.open_to(UserRole::InternalUser));
        assert!(Page::Config.open_to(UserRole::ProxyAdminViewer));
        assert!(!html.contains("/ui/end-users") && html.contains("/ui/teams"));
        assert!(!Page::EndUsers.open_to(UserRole::InternalUser));
        assert!(Page::EndUsers.open_to(UserRole::ProxyAdminViewer));
        assert_eq!(Page::at("/ui"), Some(Page::Overview));
        assert_eq!(Page::at("/ui/nowhere"), None);
    }

    #[test]
    fn the_login_message_is_escaped() {
        assert!(login(Some("<b>")).contains("&lt;b&gt;"));
    }
}
