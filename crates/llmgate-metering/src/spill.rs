//! The spill directory: spend records the sink could not take before a shutdown's deadline (the
//! database down), kept on local disk and replayed into the sink by the next start.
//!
//! - **Format**: one file per stop, `spend-<unix ms>-<pid>-<n>.jsonl`, one JSON object per
//!   record and line ([`Line`]: the [`SpendRecord`]'s fields, times as Unix microseconds).
//! - **Durable**: each file is written beside its final name as `.spend-….tmp`, fsynced,
//!   renamed into place, and the directory fsynced; a crash mid-write leaves no half file under
//!   a name that is replayed. Files are created readable by their owner only.
//! - **Replayed once per record**: the next writer to start reads every `spend-*.jsonl` in the
//!   directory (oldest first), writes their records through the sink like any batch, and
//!   removes each file once all of its records are written. A crash before the removal replays
//!   the file again: the sink skips request ids it already stored (the rule the SQL sink keeps,
//!   see [`crate::SpendSink`]), so nothing is charged twice. Several instances sharing the
//!   directory each write files of their own names; replaying one file twice is harmless.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmgate_core::FailureClass;
use serde::{Deserialize, Serialize};

use crate::cost::Tokens;
use crate::record::{Outcome, SpendRecord};

/// The endpoints a record names, so a replayed record needs no allocation that lives forever.
const ENDPOINTS: &[&str] = &[
    "",
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/messages",
    "/responses",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/responses",
];

/// A spill directory.
#[derive(Debug, Clone)]
pub(crate) struct Spill {
    dir: PathBuf,
}

/// One spill file found at start, with its records.
#[derive(Debug)]
pub(crate) struct SpillFile {
    pub(crate) path: PathBuf,
    pub(crate) records: Vec<SpendRecord>,
}

impl Spill {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Spill { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `records` durably to a new file in the directory (created if missing); returns
    /// its path.
    pub(crate) fn write(&self, records: &[SpendRecord]) -> io::Result<PathBuf> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(&self.dir)?;
        let name = format!(
            "spend-{:013}-{}-{}.jsonl",
            micros(SystemTime::now()) / 1000,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        let mut out = io::BufWriter::new(create_private(&tmp)?);
        for r in records {
            serde_json::to_writer(&mut out, &Line::of(r))?;
            out.write_all(b"\n")?;
        }
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(path)
    }

    /// Every spill file in the directory, oldest first, with its records. A line that does not
    /// parse is logged and skipped; a directory that does not exist holds none.
    pub(crate) fn pending(&self) -> Vec<SpillFile> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the spend spill directory");
                return Vec::new();
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_spill_file(p))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| match read(&path) {
                Ok(records) => Some(SpillFile { path, records }),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "cannot read a spend spill file; left in place");
                    None
                }
            })
            .collect()
    }

    /// Removes a replayed file (gone already is fine: another instance replayed it too).
    pub(crate) fn remove(&self, path: &Path) {
        match fs::remove_file(path) {
            Ok(()) => {
                let _ = sync_dir(&self.dir);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot remove a replayed spend spill file; the next start replays it again (its records are stored once)");
            }
        }
    }
}

fn is_spill_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("spend-") && n.ends_with(".jsonl"))
}

fn read(path: &Path) -> io::Result<Vec<SpendRecord>> {
    let mut records = Vec::new();
    for (n, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(l) => records.push(l.into_record()),
            Err(e) => tracing::error!(file = %path.display(), line = n + 1, error = %e,
                "a spend spill line does not parse; skipped"),
        }
    }
    Ok(records)
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn time_of(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// One record as a spill line. Every field of [`SpendRecord`] is here (the conversions name
/// them all, so a field added there does not compile until it is carried here too).
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    request_id: String,
    key_token: Option<String>,
    key_alias: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    #[serde(default)]
    end_user: Option<String>,
    requested_model: String,
    model_group: Option<String>,
    deployment: Option<String>,
    provider: Option<String>,
    upstream_model: Option<String>,
    endpoint: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cache_read_tokens: u64,
    cache_creation_tokens: u64,
    reasoning_tokens: u64,
    /// For people reading the file; the replay uses `cost_bits`.
    cost: Option<f64>,
    /// The cost's exact bits (`f64::to_bits`): decimal text does not always parse back to the
    /// same `f64`, and a replayed charge must equal the one that was not written.
    #[serde(default)]
    cost_bits: Option<u64>,
    status: u16,
    /// Absent in a line spilled before outcomes were recorded: judged from `status` then.
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    usage_estimated: bool,
    /// Absent in a line spilled before failures were classed.
    #[serde(default)]
    error_class: Option<FailureClass>,
    stream: bool,
    cache_hit: bool,
    attempts: u32,
    fallbacks: u32,
    start_time_us: u64,
    end_time_us: u64,
    latency_us: u64,
    ttft_us: Option<u64>,
    tags: Vec<String>,
    /// Absent in lines spilled before these were kept.
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    messages: Option<String>,
    #[serde(default)]
    response: Option<String>,
}

impl Line {
    fn of(r: &SpendRecord) -> Line {
        let SpendRecord {
            request_id,
            key_token,
            key_alias,
            team_id,
            user_id,
            end_user,
            requested_model,
            model_group,
            deployment,
            provider,
            upstream_model,
            endpoint,
            tokens,
            cost,
            status,
            outcome,
            error_class,
            usage_estimated,
            stream,
            cache_hit,
            attempts,
            fallbacks,
            start_time,
            end_time,
            latency,
            time_to_first_token,
            tags,
            error_message,
            messages,
            response,
        } = r;
        let text = |s: &Option<Arc<str>>| s.as_deref().map(str::to_owned);
        Line {
            request_id: request_id.to_string(),
            key_token: key_token.clone(),
            key_alias: key_alias.clone(),
            team_id: team_id.clone(),
            user_id: user_id.clone(),
            end_user: end_user.clone(),
            requested_model: requested_model.clone(),
            model_group: text(model_group),
            deployment: text(deployment),
            provider: provider.clone(),
            upstream_model: text(upstream_model),
            endpoint: (*endpoint).to_owned(),
            prompt_tokens: tokens.prompt,
            completion_tokens: tokens.completion,
            cache_read_tokens: tokens.cache_read,
            cache_creation_tokens: tokens.cache_creation,
            reasoning_tokens: tokens.reasoning,
            cost: *cost,
            cost_bits: cost.map(f64::to_bits),
            status: *status,
            outcome: Some(*outcome),
            usage_estimated: *usage_estimated,
            error_class: *error_class,
            stream: *stream,
            cache_hit: *cache_hit,
            attempts: *attempts,
            fallbacks: *fallbacks,
            start_time_us: micros(*start_time),
            end_time_us: micros(*end_time),
            latency_us: duration_micros(*latency),
            ttft_us: time_to_first_token.map(duration_micros),
            tags: tags.clone(),
            error_message: error_message.clone(),
            messages: messages.clone(),
            response: response.clone(),
        }
    }

    fn into_record(self) -> SpendRecord {
        SpendRecord {
            request_id: Arc::from(self.request_id),
            key_token: self.key_token,
            key_alias: self.key_alias,
            team_id: self.team_id,
            user_id: self.user_id,
            end_user: self.end_user,
            requested_model: self.requested_model,
            model_group: self.model_group.map(Arc::from),
            deployment: self.deployment.map(Arc::from),
            provider: self.provider,
            upstream_model: self.upstream_model.map(Arc::from),
            endpoint: endpoint(self.endpoint),
            tokens: Tokens {
                prompt: self.prompt_tokens,
                completion: self.completion_tokens,
                cache_read: self.cache_read_tokens,
                cache_creation: self.cache_creation_tokens,
                reasoning: self.reasoning_tokens,
            },
            cost: self.cost_bits.map(f64::from_bits).or(self.cost),
            status: self.status,
            outcome: self
                .outcome
                .unwrap_or(if (200..400).contains(&self.status) {
                    Outcome::Success
                } else {
                    Outcome::Error
                }),
            usage_estimated: self.usage_estimated,
            error_class: self.error_class,
            stream: self.stream,
            cache_hit: self.cache_hit,
            attempts: self.attempts,
            fallbacks: self.fallbacks,
            start_time: time_of(self.start_time_us),
            end_time: time_of(self.end_time_us),
            latency: Duration::from_micros(self.latency_us),
            time_to_first_token: self.ttft_us.map(Duration::from_micros),
            tags: self.tags,
            error_message: self.error_message,
            messages: self.messages,
            response: self.response,
        }
    }
}

/// The record's `&'static str` endpoint: a known one, else the text kept for the process's
/// life (an endpoint this build does not know; one per distinct name in a spill file).
fn endpoint(text: String) -> &'static str {
    match ENDPOINTS.iter().find(|e| **e == text) {
        Some(e) => e,
        None => Box::leak(text.into_boxed_str()),
    }
}

#[cfg(test)]
#[path = "spill_tests.rs"]
mod tests;
