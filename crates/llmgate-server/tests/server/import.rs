//! `llmgate import litellm`: a database with LiteLLM's own tables (created here as LiteLLM's
//! Prisma schema defines the columns the importer reads, in a fresh PostgreSQL database), a few
//! keys, a team, an end user with a budget and an internal user; imported by the real binary
//! into a fresh SQLite store; then a gateway on that config takes the original secrets.
//!
//! The model costs 21 µUSD a request (as in `budgets.rs`).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{ask_priced, postgres_up, start, BIN, PRICED_COST as COST};
use http::StatusCode;
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::Value;
use sqlx::{Connection as _, Executor as _, PgConnection};

const MASTER: &str = "sk-master-import";
/// The server of `LLMGATE_TEST_PG_URL` (else the machine's), where the test creates a
/// database of its own.
static BASE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("LLMGATE_TEST_PG_URL")
        .ok()
        .and_then(|url| Some(url.rsplit_once('/')?.0.to_owned()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
});

/// The columns of LiteLLM's Prisma schema (schema.prisma) the importer reads, with Prisma's
/// column types: String[] is TEXT[], Json is JSONB, DateTime is TIMESTAMP(3), BigInt is BIGINT.
const SCHEMA: &str = r#"
CREATE TABLE "LiteLLM_BudgetTable" (
  "budget_id" TEXT PRIMARY KEY, "max_budget" DOUBLE PRECISION, "soft_budget" DOUBLE PRECISION,
  "max_parallel_requests" INTEGER, "tpm_limit" BIGINT, "rpm_limit" BIGINT,
  "model_max_budget" JSONB, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT NOT NULL,
  "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT NOT NULL);
CREATE TABLE "LiteLLM_TeamTable" (
  "team_id" TEXT PRIMARY KEY, "team_alias" TEXT, "organization_id" TEXT, "admins" TEXT[],
  "members" TEXT[], "members_with_roles" JSONB NOT NULL DEFAULT '{}',
  "metadata" JSONB NOT NULL DEFAULT '{}', "max_budget" DOUBLE PRECISION,
  "soft_budget" DOUBLE PRECISION, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "models" TEXT[], "max_parallel_requests" INTEGER, "tpm_limit" BIGINT, "rpm_limit" BIGINT,
  "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3), "blocked" BOOLEAN NOT NULL DEFAULT false,
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}');
CREATE TABLE "LiteLLM_UserTable" (
  "user_id" TEXT PRIMARY KEY, "user_alias" TEXT, "team_id" TEXT,
  "teams" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "user_role" TEXT, "max_budget" DOUBLE PRECISION, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "user_email" TEXT, "models" TEXT[], "metadata" JSONB NOT NULL DEFAULT '{}');
CREATE TABLE "LiteLLM_VerificationToken" (
  "token" TEXT PRIMARY KEY, "key_name" TEXT, "key_alias" TEXT,
  "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "expires" TIMESTAMP(3), "models" TEXT[],
  "aliases" JSONB NOT NULL DEFAULT '{}', "config" JSONB NOT NULL DEFAULT '{}',
  "user_id" TEXT, "team_id" TEXT, "permissions" JSONB NOT NULL DEFAULT '{}',
  "max_parallel_requests" INTEGER, "metadata" JSONB NOT NULL DEFAULT '{}', "blocked" BOOLEAN,
  "tpm_limit" BIGINT, "rpm_limit" BIGINT, "max_budget" DOUBLE PRECISION,
  "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "allowed_routes" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}',
  "budget_id" TEXT REFERENCES "LiteLLM_BudgetTable"("budget_id"), "organization_id" TEXT,
  "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT,
  "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT);
CREATE TABLE "LiteLLM_EndUserTable" (
  "user_id" TEXT PRIMARY KEY, "alias" TEXT, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "allowed_model_region" TEXT, "default_model" TEXT,
  "budget_id" TEXT REFERENCES "LiteLLM_BudgetTable"("budget_id"),
  "blocked" BOOLEAN NOT NULL DEFAULT false);
"#;

/// LiteLLM's token column: the SHA-256 hex of the secret, computed by PostgreSQL here.
fn rows() -> String {
    let token = |secret: &str| format!("encode(sha256('{secret}'::bytea), 'hex')");
    format!(
        r#"
INSERT INTO "LiteLLM_BudgetTable" (budget_id, max_budget, created_by, updated_by)
  VALUES ('b-cust', {COST}, 'admin', 'admin');
INSERT INTO "LiteLLM_BudgetTable" (budget_id, soft_budget, created_by, updated_by)
  VALUES ('b-soft', 0.0001, 'admin', 'admin');
INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, models, rpm_limit, spend, members_with_roles)
  VALUES ('t-import', 'search', ARRAY['priced'], 2, 0.5,
          '[{{"role": "admin", "user_id": "u-import", "user_email": null}}]');
INSERT INTO "LiteLLM_UserTable" (user_id, user_role, max_budget)
  VALUES ('u-import', 'internal_user', 5.0);
INSERT INTO "LiteLLM_EndUserTable" (user_id, alias, spend, budget_id)
  VALUES ('cust-1', 'Customer One', {spent_cust}, 'b-cust');
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, models, max_budget, spend,
    budget_duration, budget_reset_at, user_id, budget_id)
  VALUES ({spent}, 'sk-...pent', 'spent', ARRAY['priced'], {budget}, {spend}, '30d',
          now() + interval '10 days', 'u-import', 'b-soft');
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, models, blocked)
  VALUES ({blocked}, 'sk-...cked', 'blocked', ARRAY[]::TEXT[], true);
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, models, team_id)
  VALUES ({team}, 'sk-...team', 'in-team', ARRAY['all-team-models'], 't-import');
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, models, metadata)
  VALUES ({model}, 'sk-...odel', 'model-limits', ARRAY[]::TEXT[],
          '{{"model_rpm_limit": {{"priced": 1}}}}');
"#,
        spent_cust = 2.0 * COST,
        spent = token("sk-import-spent"),
        budget = 10.0 * COST,
        spend = 8.0 * COST,
        blocked = token("sk-import-blocked"),
        team = token("sk-import-team"),
        model = token("sk-import-model"),
    )
}

/// A fresh, empty database named for this process and `tag`; its URL.
async fn fresh_database(tag: &str) -> String {
    let name = format!("import_{tag}_{}", std::process::id());
    let mut admin = PgConnection::connect(&format!("{}/postgres", *BASE))
        .await
        .unwrap();
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    format!("{}/{name}", *BASE)
}

async fn drop_database(url: &str) {
    let mut admin = PgConnection::connect(&format!("{}/postgres", *BASE))
        .await
        .unwrap();
    let name = url.rsplit('/').next().unwrap();
    let _ = admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await;
}

/// A fresh database with LiteLLM's tables and rows; its URL.
async fn litellm_database(tag: &str) -> String {
    let url = fresh_database(&format!("litellm_{tag}")).await;
    let mut db = PgConnection::connect(&url).await.unwrap();
    db.execute(SCHEMA).await.unwrap();
    db.execute(rows().as_str()).await.unwrap();
    url
}

/// Whether llmgate wrote its store: the SQLite file beside the config, or its key table in
/// the PostgreSQL database `target`.
async fn store_written(dir: &Path, target: Option<&str>) -> bool {
    match target {
        None => dir.join("llmgate.db").exists(),
        Some(url) => {
            let mut db = PgConnection::connect(url).await.unwrap();
            let row = sqlx::query("SELECT to_regclass('llmgate_keys') IS NOT NULL")
                .fetch_one(&mut db)
                .await
                .unwrap();
            sqlx::Row::get::<bool, _>(&row, 0)
        }
    }
}

fn import(url: &str, config: &Path, dry_run: bool) -> (bool, String) {
    let mut command = Command::new(BIN);
    command.args(["import", "litellm", "--database-url", url, "--config"]);
    command.arg(config).env_remove("DATABASE_URL");
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}{stderr}"))
}

fn config_in(dir: &Path, upstream: &MockProvider, target: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/gpt-x\n      \
             api_base: {}\n      api_key: sk-test\n    model_info:\n      \
             input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
             general_settings:\n  master_key: {MASTER}\n{}",
            upstream.v1_url(),
            target.map_or(String::new(), |url| format!("  database_url: {url}\n")),
        ),
    )
    .unwrap();
    path
}

/// Into SQLite (`llmgate.db` beside the config, the default).
#[tokio::test]
async fn litellm_keys_work_unchanged_after_the_import_into_sqlite() {
    if postgres_up().await {
        import_and_use("sqlite", false).await;
    }
}

/// Into PostgreSQL (the config's `database_url`).
#[tokio::test]
async fn litellm_keys_work_unchanged_after_the_import_into_postgres() {
    if postgres_up().await {
        import_and_use("postgres", true).await;
    }
}

/// Dry run, import, import again, then the original secrets through a gateway.
async fn import_and_use(tag: &str, on_postgres: bool) {
    let url = litellm_database(tag).await;
    let target = match on_postgres {
        true => Some(fresh_database(&format!("target_{tag}")).await),
        false => None,
    };
    let upstream = MockProvider::start().await;
    upstream.set_default(Behaviour::reply(
        "one two three four five six seven eight nine ten",
    ));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("import-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = config_in(&dir, &upstream, target.as_deref());

    let (ok, shown) = import(&url, &config, true);
    assert!(ok, "{shown}");
    assert!(shown.contains("dry run, nothing written"), "{shown}");
    assert!(
        shown.contains("to import: 4 keys, 1 team, 1 user, 1 end user, 2 budgets"),
        "{shown}"
    );
    assert!(shown.contains("key spent: 0.000042 of "), "{shown}");
    assert!(
        shown.contains("user u-import (internal_user): spend 0 USD"),
        "{shown}"
    );
    assert!(!shown.contains("LiteLLM_UserTable"), "{shown}");
    assert!(
        !store_written(&dir, target.as_deref()).await,
        "the dry run wrote the store"
    );

    let (ok, shown) = import(&url, &config, false);
    assert!(ok, "{shown}");
    assert!(shown.contains("imported 9, skipped 0"), "{shown}");
    let (ok, shown) = import(&url, &config, false);
    assert!(ok, "{shown}");
    assert!(shown.contains("imported 0, skipped 9"), "{shown}");

    let (gateway, addr) = start(&config).await;
    the_admin_api_shows_them(addr).await;
    the_keys_keep_their_rules(addr).await;
    drop(gateway);
    drop_database(&url).await;
    if let Some(target) = target {
        drop_database(&target).await;
    }
}

/// GETs `path` with the master key: the status and the answer as JSON.
async fn get_json(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    use http_body_util::BodyExt as _;
    let request = http::Request::get(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {MASTER}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = crate::support::connect(addr)
        .await
        .send_request(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// What the admin API shows of the imported key and team.
async fn the_admin_api_shows_them(addr: SocketAddr) {
    let (status, body) = get_json(addr, "/user/info?user_id=u-import").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_info"]["user_role"], "internal_user", "{body}");
    assert_eq!(body["user_info"]["max_budget"], 5.0, "{body}");
    assert_eq!(body["keys"].as_array().map(Vec::len), Some(1), "{body}");
    let (status, body) = get_json(addr, "/key/info?key=sk-import-spent").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info = &body["info"];
    assert_eq!(info["key_alias"], "spent", "{body}");
    assert_eq!(info["user_id"], "u-import", "{body}");
    // Linked to its budget row, imported as a budget object holding the soft budget.
    assert_eq!(info["budget_id"], "b-soft", "{body}");
    let (status, budgets) = get_json(addr, "/budget/list").await;
    assert_eq!(status, StatusCode::OK, "{budgets}");
    let soft = budgets
        .as_array()
        .and_then(|all| all.iter().find(|b| b["budget_id"] == "b-soft"))
        .unwrap_or_else(|| panic!("no b-soft: {budgets}"));
    assert_eq!(soft["soft_budget"], 0.0001, "{budgets}");
    assert_eq!(soft["created_by"], "admin", "{budgets}");
    // 30d, as llmgate shows a period
    assert_eq!(info["budget_duration"], "2592000s", "{body}");
    assert_eq!(info["spend"], 8.0 * COST, "{body}");

    let (status, body) = get_json(addr, "/team/info?team_id=t-import").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let team = &body["team_info"];
    assert_eq!(team["team_alias"], "search", "{body}");
    assert_eq!(team["spend"], 0.5, "{body}");
    assert_eq!(
        team["members_with_roles"][0]["user_id"], "u-import",
        "{body}"
    );
}

async fn the_keys_keep_their_rules(addr: SocketAddr) {
    // Blocked in LiteLLM, refused here.
    let (status, body) = ask_priced(addr, "sk-import-blocked", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.to_string().contains("blocked"), "{body}");

    // Two requests' worth of budget left (of ten): two or three answered (a request is admitted
    // while anything is left), then refused.
    let mut answered = 0;
    let refusal = loop {
        let (status, body) = ask_priced(addr, "sk-import-spent", None).await;
        if status != StatusCode::OK {
            break (status, body);
        }
        answered += 1;
        assert!(
            answered <= 3,
            "the spent key's remaining budget was not kept"
        );
    };
    assert!(answered >= 2, "answered {answered}: {refusal:?}");
    assert_eq!(refusal.0, StatusCode::BAD_REQUEST, "{refusal:?}");
    assert!(
        refusal.1.to_string().contains("Budget has been exceeded"),
        "{refusal:?}"
    );

    // The team's rpm_limit (2) holds its key.
    for _ in 0..2 {
        let (status, body) = ask_priced(addr, "sk-import-team", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = ask_priced(addr, "sk-import-team", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // The key's model_rpm_limit (1 for priced) from LiteLLM's metadata.
    let (status, body) = ask_priced(addr, "sk-import-model", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = ask_priced(addr, "sk-import-model", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // The end user's budget (from its budget row) is spent already.
    let (status, body) = ask_priced(addr, MASTER, Some("cust-1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("cust-1"), "{body}");
}
