//! Reading a LiteLLM proxy database (PostgreSQL, LiteLLM's Prisma schema): each row as a JSON
//! object of its columns (`to_jsonb`), so a column an older or newer LiteLLM lacks or adds is
//! simply absent or ignored, with its times as Unix seconds.

use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row as _};

use super::ImportError;

/// Keys (their `budget_id` links them to their budget row, imported as a budget object).
const KEYS: &str = r#"SELECT (to_jsonb(k) || jsonb_build_object(
    'expires', EXTRACT(EPOCH FROM k.expires),
    'budget_reset_at', EXTRACT(EPOCH FROM k.budget_reset_at),
    'created_at', EXTRACT(EPOCH FROM k.created_at),
    'updated_at', EXTRACT(EPOCH FROM k.updated_at)))::text
  FROM "LiteLLM_VerificationToken" k
  ORDER BY k.created_at NULLS FIRST, k.token"#;

/// Budget rows, imported as budget objects.
const BUDGETS: &str = r#"SELECT (to_jsonb(b) || jsonb_build_object(
    'budget_reset_at', EXTRACT(EPOCH FROM b.budget_reset_at),
    'created_at', EXTRACT(EPOCH FROM b.created_at),
    'updated_at', EXTRACT(EPOCH FROM b.updated_at)))::text
  FROM "LiteLLM_BudgetTable" b ORDER BY b.created_at, b.budget_id"#;

const TEAMS: &str = r#"SELECT (to_jsonb(t) || jsonb_build_object(
    'budget_reset_at', EXTRACT(EPOCH FROM t.budget_reset_at),
    'created_at', EXTRACT(EPOCH FROM t.created_at),
    'updated_at', EXTRACT(EPOCH FROM t.updated_at)))::text
  FROM "LiteLLM_TeamTable" t ORDER BY t.created_at, t.team_id"#;

/// Teams with their model aliases (`LiteLLM_ModelTable.aliases`, through `model_id`).
const TEAMS_WITH_ALIASES: &str = r#"SELECT (to_jsonb(t) || jsonb_build_object(
    'budget_reset_at', EXTRACT(EPOCH FROM t.budget_reset_at),
    'created_at', EXTRACT(EPOCH FROM t.created_at),
    'updated_at', EXTRACT(EPOCH FROM t.updated_at),
    'model_aliases', m.aliases))::text
  FROM "LiteLLM_TeamTable" t LEFT JOIN "LiteLLM_ModelTable" m ON m.id = t.model_id
  ORDER BY t.created_at, t.team_id"#;

/// End users, with their budget row's next reset (LiteLLM keeps an end user's period there).
const END_USERS: &str = r#"SELECT (to_jsonb(u) || jsonb_build_object(
    'budget_reset_at', EXTRACT(EPOCH FROM b.budget_reset_at)))::text
  FROM "LiteLLM_EndUserTable" u
  LEFT JOIN "LiteLLM_BudgetTable" b ON b.budget_id = u.budget_id
  ORDER BY u.user_id"#;

/// Internal users. Their times are read through the row's JSON, so an older LiteLLM whose
/// table lacks one of them imports as well.
const USERS: &str = r#"SELECT (j || jsonb_build_object(
    'budget_reset_at', EXTRACT(EPOCH FROM (j->>'budget_reset_at')::timestamp),
    'created_at', EXTRACT(EPOCH FROM (j->>'created_at')::timestamp),
    'updated_at', EXTRACT(EPOCH FROM (j->>'updated_at')::timestamp)))::text
  FROM (SELECT to_jsonb(u) AS j FROM "LiteLLM_UserTable" u) t
  ORDER BY j->>'created_at' NULLS FIRST, j->>'user_id'"#;

/// What was read, row by row.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) keys: Vec<Map<String, Value>>,
    pub(crate) teams: Vec<Map<String, Value>>,
    pub(crate) end_users: Vec<Map<String, Value>>,
    /// `LiteLLM_UserTable` rows.
    pub(crate) users: Vec<Map<String, Value>>,
    /// `LiteLLM_OrganizationTable` rows.
    pub(crate) organizations: u64,
    /// `LiteLLM_BudgetTable` rows.
    pub(crate) budgets: Vec<Map<String, Value>>,
    /// `LiteLLM_TeamMembership` rows (a user's spend and budget within a team).
    pub(crate) memberships: u64,
}

/// Connects to the LiteLLM database at `url` and reads it (read-only: `SELECT`s only).
pub(crate) async fn read(url: &str) -> Result<Rows, ImportError> {
    let target = crate::redact(url);
    let connect = |e: sqlx::Error| ImportError::Connect {
        target: target.clone(),
        reason: e.to_string(),
    };
    let options: PgConnectOptions = url.parse().map_err(connect)?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(crate::DEFAULT_CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(connect)?;
    let rows = read_tables(&pool).await;
    pool.close().await;
    rows
}

async fn read_tables(pool: &PgPool) -> Result<Rows, ImportError> {
    if !exists(pool, "LiteLLM_VerificationToken").await? {
        return Err(ImportError::NotLiteLlm);
    }
    let mut rows = Rows {
        keys: objects(pool, KEYS).await?,
        ..Rows::default()
    };
    if exists(pool, "LiteLLM_TeamTable").await? {
        let with_aliases = exists(pool, "LiteLLM_ModelTable").await?;
        let query = if with_aliases {
            TEAMS_WITH_ALIASES
        } else {
            TEAMS
        };
        rows.teams = objects(pool, query).await?;
    }
    if exists(pool, "LiteLLM_EndUserTable").await? {
        rows.end_users = objects(pool, END_USERS).await?;
    }
    if exists(pool, "LiteLLM_UserTable").await? {
        rows.users = objects(pool, USERS).await?;
    }
    rows.organizations = count(pool, "LiteLLM_OrganizationTable").await?;
    if exists(pool, "LiteLLM_BudgetTable").await? {
        rows.budgets = objects(pool, BUDGETS).await?;
    }
    rows.memberships = count(pool, "LiteLLM_TeamMembership").await?;
    Ok(rows)
}

fn read_error(e: sqlx::Error) -> ImportError {
    ImportError::Read(e.to_string())
}

async fn exists(pool: &PgPool, table: &str) -> Result<bool, ImportError> {
    let row = sqlx::query("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("\"{table}\""))
        .fetch_one(pool)
        .await
        .map_err(read_error)?;
    row.try_get::<bool, _>(0).map_err(read_error)
}

/// Rows of `table`; 0 when the table does not exist.
async fn count(pool: &PgPool, table: &str) -> Result<u64, ImportError> {
    if !exists(pool, table).await? {
        return Ok(0);
    }
    // `table` is one of our constants, never input.
    let row = sqlx::query(&format!("SELECT count(*) FROM \"{table}\""))
        .fetch_one(pool)
        .await
        .map_err(read_error)?;
    let n: i64 = row.try_get(0).map_err(read_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn objects(pool: &PgPool, query: &str) -> Result<Vec<Map<String, Value>>, ImportError> {
    let rows = sqlx::query(query)
        .fetch_all(pool)
        .await
        .map_err(read_error)?;
    rows.iter()
        .map(|row| {
            let text: String = row.try_get(0).map_err(read_error)?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) | Err(_) => Err(ImportError::Read(format!(
                    "a row is not a JSON object: {text:.80}"
                ))),
            }
        })
        .collect()
}
