//! The spend log's multi-row insert: its SQL, written once per batch without `fmt`, and the
//! values of one record bound in column order.

/// Records per `INSERT` statement on PostgreSQL: 35 parameters each, under its 65,535 bound
/// parameters per statement. The rows are built into one message on the writer's thread and
/// inserted by the database's own process.
pub(crate) const PG_INSERT_CHUNK: usize = 500;

/// Records per `INSERT` statement on SQLite: few, because SQLite inserts them on a thread of
/// this process, about 22,000 instructions a row (`bench/callgrind`), and a thread that runs
/// one long statement keeps the gateway's own thread waiting for a shared core until the
/// scheduler preempts it. With 500 rows a statement (several ms), a request in a hundred at
/// one connection waited 1 ms or more: added p99 1.5 to 2.2 ms, against 0.5 to 0.6 ms with 8
/// rows, as without the log (`docs/benchmarks.md`, "The spend log and the p99"). Eight rows
/// cost no more instructions a request than 500 did. The system time they seemed to add (6 µs
/// a request at saturation, on a slow day) was mostly the batch's savepoint journal written to
/// a temporary file, which [`insert_new_by_rollback`] does without.
pub(crate) const SQLITE_INSERT_CHUNK: usize = 8;

/// The log's columns, in the order [`bind_record`] binds them.
pub(crate) const INSERT_LOGS: &str = "INSERT INTO llmgate_spend_logs (request_id, key_token, \
    key_alias, team_id, user_id, requested_model, model_group, deployment, provider, \
    upstream_model, endpoint, prompt_tokens, completion_tokens, total_tokens, cached_tokens, \
    cache_creation_tokens, reasoning_tokens, cost, status, stream, cache_hit, attempts, \
    fallbacks, start_time, end_time, latency_ms, ttft_ms, tags, outcome, usage_estimated, \
    error_class, error_message, messages, response, end_user) ";

/// The end of the insert: a request id already stored is skipped.
pub(crate) const INSERT_LOGS_TAIL: &str = " ON CONFLICT (request_id) DO NOTHING";

/// Added to [`INSERT_LOGS_TAIL`] when the insert must say which rows went in.
pub(crate) const RETURNING: &str = " RETURNING request_id";

/// The log's column count: the values [`bind_record`] adds per record.
pub(crate) const LOG_COLUMNS: usize = 35;

/// [`INSERT_LOGS`] with `rows` rows of placeholders and [`INSERT_LOGS_TAIL`] (and
/// [`RETURNING`] when `returning`): `?` (SQLite) or `$1`, `$2`, ... (PostgreSQL, `numbered`).
/// Written with `push_str`: sqlx's `QueryBuilder` formats every placeholder and separator
/// through `fmt`, 70 calls a record, about 5,000 instructions a request (`bench/callgrind`).
pub(crate) fn insert_logs_sql(rows: usize, numbered: bool, returning: bool) -> String {
    let mut sql = String::with_capacity(
        INSERT_LOGS.len()
            + INSERT_LOGS_TAIL.len()
            + RETURNING.len()
            + 8
            + rows * (LOG_COLUMNS * 7 + 4),
    );
    sql.push_str(INSERT_LOGS);
    sql.push_str("VALUES ");
    let mut digits = itoa::Buffer::new();
    let mut n = 0usize;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        if !numbered {
            // One copy a row, not seventy pushes.
            sql.push_str(sqlite_row());
            continue;
        }
        sql.push('(');
        for col in 0..LOG_COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if numbered {
                sql.push('$');
                sql.push_str(digits.format(n));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(INSERT_LOGS_TAIL);
    if returning {
        sql.push_str(RETURNING);
    }
    sql
}

/// One row of SQLite placeholders: `(?, ?, ..., ?)`, [`LOG_COLUMNS`] of them.
fn sqlite_row() -> &'static str {
    static ROW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROW.get_or_init(|| format!("({})", vec!["?"; LOG_COLUMNS].join(", ")))
}

/// `$chunk`'s records bound for [`insert_logs_sql`], or the store's error.
macro_rules! chunk_args {
    ($db:ty, $chunk:expr) => {{
        use sqlx::Arguments as _;
        let mut args = <$db as sqlx::Database>::Arguments::default();
        args.reserve($chunk.len() * $crate::spend::LOG_COLUMNS, 0);
        let mut bound = Ok(());
        for r in $chunk {
            bound = $crate::spend::bind_record!(args, r);
            if bound.is_err() {
                break;
            }
        }
        bound
            .map(|()| args)
            .map_err(|e| $crate::sql::unavailable(sqlx::Error::Encode(e)))
    }};
}
pub(crate) use chunk_args;

/// Inserts `$batch`'s logs `$chunk` rows a statement on `$conn` (a transaction or savepoint):
/// the count of rows that went in. `$numbered`: PostgreSQL's placeholders.
macro_rules! insert_chunks {
    ($db:ty, $conn:ident, $batch:ident, $chunk:expr, $numbered:expr) => {{
        let mut inserted = 0u64;
        for chunk in $batch.chunks($chunk) {
            let sql = $crate::spend::insert_logs_sql(chunk.len(), $numbered, false);
            let args = $crate::spend::chunk_args!($db, chunk)?;
            let done = sqlx::query_with::<$db, _>(&sql, args)
                .execute(&mut *$conn)
                .await
                .map_err($crate::sql::unavailable)?;
            inserted += done.rows_affected();
        }
        inserted
    }};
}

/// [`insert_chunks`] with `RETURNING request_id`: the records of `$batch` that went in, pushed
/// onto `$new` (once an id named twice).
macro_rules! insert_chunks_returning {
    ($db:ty, $conn:ident, $batch:ident, $chunk:expr, $numbered:expr, $new:ident) => {{
        use sqlx::Row as _;
        let mut returned = std::collections::HashSet::new();
        for chunk in $batch.chunks($chunk) {
            let sql = $crate::spend::insert_logs_sql(chunk.len(), $numbered, true);
            let args = $crate::spend::chunk_args!($db, chunk)?;
            let rows = sqlx::query_with::<$db, _>(&sql, args)
                .fetch_all(&mut *$conn)
                .await
                .map_err($crate::sql::unavailable)?;
            for row in rows {
                returned.insert(
                    row.try_get::<String, _>("request_id")
                        .map_err($crate::sql::unavailable)?,
                );
            }
        }
        let mut inserted = $crate::spend::inserted_filter(returned);
        $new.extend($batch.iter().filter(|r| inserted(r)));
    }};
}

/// PostgreSQL: inserts the logs of `$batch` (records), [`PG_INSERT_CHUNK`] rows a statement, in
/// the transaction `$tx` and pushes onto `$new` the records that went in: not those whose
/// request id was already stored (a replayed or retried batch), and once an id named twice.
///
/// Almost always every record is new, so the inserts are first made without `RETURNING` in one
/// savepoint, and kept when they inserted as many rows as there are records: no row comes back
/// from the database and no set of ids is built. Otherwise the savepoint is undone and the
/// inserts made again with `RETURNING request_id`, which names the rows that went in. Tested by
/// the store's `a_retried_batch_charges_once` and `a_retried_large_batch_charges_once` on
/// PostgreSQL. SQLite has [`insert_new_by_rollback`]. (`$pool` is not used.)
macro_rules! insert_new_by_savepoint {
    ($pool:expr, $tx:ident, $batch:ident, $new:ident) => {{
        use sqlx::Acquire as _;
        use $crate::spend::PG_INSERT_CHUNK;
        use $crate::sql::unavailable;
        let mut savepoint = (&mut $tx).begin().await.map_err(unavailable)?;
        let inserted =
            $crate::spend::insert_chunks!(sqlx::Postgres, savepoint, $batch, PG_INSERT_CHUNK, true);
        if inserted == $batch.len() as u64 {
            savepoint.commit().await.map_err(unavailable)?;
            $new.extend($batch.iter());
        } else {
            savepoint.rollback().await.map_err(unavailable)?;
            $crate::spend::insert_chunks_returning!(
                sqlx::Postgres,
                $tx,
                $batch,
                PG_INSERT_CHUNK,
                true,
                $new
            );
        }
    }};
}

/// SQLite's [`insert_new_by_savepoint`]: the same records pushed onto `$new`,
/// [`SQLITE_INSERT_CHUNK`] rows a statement, without a savepoint. For a savepoint SQLite keeps
/// the original of every page the batch changes in a statement journal, which past 64 KiB goes
/// to a temporary file: about 1,000 `pwrite`s for a batch of 512 records, 2 a request, and a
/// file made and unlinked for each batch (`strace -f` under load; docs/benchmarks.md, "The
/// savepoint's journal").
///
/// The inserts are the first statements of the transaction `$tx` (begun on `$pool`), so the
/// transaction itself can be undone instead: when they inserted fewer rows than there are
/// records, it is rolled back and begun again, and the inserts made again with `RETURNING
/// request_id`, which names the rows that went in. Tested by the store's
/// `a_retried_batch_charges_once`, `a_retried_large_batch_charges_once` and
/// `a_retried_batch_ending_in_stored_ids_charges_once`.
macro_rules! insert_new_by_rollback {
    ($pool:expr, $tx:ident, $batch:ident, $new:ident) => {{
        use $crate::spend::SQLITE_INSERT_CHUNK;
        use $crate::sql::unavailable;
        let inserted =
            $crate::spend::insert_chunks!(sqlx::Sqlite, $tx, $batch, SQLITE_INSERT_CHUNK, false);
        if inserted == $batch.len() as u64 {
            $new.extend($batch.iter());
        } else {
            $tx.rollback().await.map_err(unavailable)?;
            $tx = $pool.begin().await.map_err(unavailable)?;
            $crate::spend::insert_chunks_returning!(
                sqlx::Sqlite,
                $tx,
                $batch,
                SQLITE_INSERT_CHUNK,
                false,
                $new
            );
        }
    }};
}
pub(crate) use {
    insert_chunks, insert_chunks_returning, insert_new_by_rollback, insert_new_by_savepoint,
};

/// Adds one record's values to the arguments `$a`, in [`INSERT_LOGS`]'s column order, returning
/// the first encoding error (none of these types can fail to encode).
macro_rules! bind_record {
    ($a:ident, $r:ident) => {{
        use sqlx::Arguments as _;
        use $crate::spend::{count, duration_ms, millis, tags_json};
        let t = &$r.tokens;
        (|| -> Result<(), sqlx::error::BoxDynError> {
            $a.add($r.request_id.as_ref())?;
            $a.add($r.key_token.as_deref())?;
            $a.add($r.key_alias.as_deref())?;
            $a.add($r.team_id.as_deref())?;
            $a.add($r.user_id.as_deref())?;
            $a.add($r.requested_model.as_str())?;
            $a.add($r.model_group.as_deref())?;
            $a.add($r.deployment.as_deref())?;
            $a.add($r.provider.as_deref())?;
            $a.add($r.upstream_model.as_deref())?;
            $a.add($r.endpoint)?;
            $a.add(count(t.prompt))?;
            $a.add(count(t.completion))?;
            $a.add(count(t.prompt.saturating_add(t.completion)))?;
            $a.add(count(t.cache_read))?;
            $a.add(count(t.cache_creation))?;
            $a.add(count(t.reasoning))?;
            $a.add($r.cost)?;
            $a.add(i32::from($r.status))?;
            $a.add($r.stream)?;
            $a.add($r.cache_hit)?;
            $a.add(i32::try_from($r.attempts).unwrap_or(i32::MAX))?;
            $a.add(i32::try_from($r.fallbacks).unwrap_or(i32::MAX))?;
            $a.add(millis($r.start_time))?;
            $a.add(millis($r.end_time))?;
            $a.add(duration_ms($r.latency))?;
            $a.add($r.time_to_first_token.map(duration_ms))?;
            $a.add(tags_json(&$r.tags))?;
            $a.add($r.outcome.as_str())?;
            $a.add($r.usage_estimated)?;
            $a.add($r.error_class.map(llmgate_core::FailureClass::as_str))?;
            $a.add($r.error_message.as_deref())?;
            $a.add($r.messages.as_deref())?;
            $a.add($r.response.as_deref())?;
            $a.add($r.end_user.as_deref())?;
            Ok(())
        })()
    }};
}
pub(crate) use bind_record;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_count_is_the_column_lists() {
        let list = &INSERT_LOGS[INSERT_LOGS.find('(').unwrap()..];
        assert_eq!(list.matches(',').count() + 1, LOG_COLUMNS);
    }

    #[test]
    fn sqlite_rows_are_the_numbered_rows_without_numbers() {
        for rows in [1, 2, 500] {
            let numbered = insert_logs_sql(rows, true, false);
            let mut digits_gone = String::new();
            let mut in_number = false;
            for c in numbered.chars() {
                match c {
                    '$' => in_number = true,
                    '0'..='9' if in_number => {}
                    _ => {
                        if in_number {
                            digits_gone.push('?');
                            in_number = false;
                        }
                        digits_gone.push(c);
                    }
                }
            }
            assert_eq!(
                insert_logs_sql(rows, false, false),
                digits_gone,
                "{rows} rows"
            );
        }
    }

    #[test]
    fn placeholders_are_positional_or_numbered() {
        let sqlite = insert_logs_sql(2, false, false);
        assert_eq!(sqlite.matches('?').count(), 2 * LOG_COLUMNS);
        assert!(sqlite.ends_with(&format!("?){INSERT_LOGS_TAIL}")));
        let returning = insert_logs_sql(2, false, true);
        assert!(returning.ends_with(&format!("?){INSERT_LOGS_TAIL}{RETURNING}")));
        let pg = insert_logs_sql(2, true, false);
        assert!(pg.contains("VALUES ($1, $2, "));
        assert!(pg.contains(&format!("${}), ($36, ", LOG_COLUMNS)));
        assert!(pg.contains(&format!("${})", 2 * LOG_COLUMNS)));
        assert!(!pg.contains(&format!("${}", 2 * LOG_COLUMNS + 1)));
    }
}
