//! [`Record`]: what one request's attempts left behind, and what the client sees of it: the
//! `x-llmgate-attempts` / `x-llmgate-fallbacks` (/ `-skipped`) headers on an answer, or the
//! error when nothing answered.

use std::fmt::Write as _;
use std::sync::Arc;

use http::{HeaderValue, Response};
use llmgate_core::{
    headers, ApiError, Attempts, Attribution, ErrorContract, FailedAttempt, FailedAttempts,
    FailureClass,
};

/// What one failed attempt was, for the final error message.
#[derive(Debug)]
struct Failed {
    what: String,
    error: ApiError,
}

/// The attempts so far: counts, failures in order, fallback groups skipped because the caller
/// may not reach them.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) attempts: Attempts,
    failures: Vec<Failed>,
    skipped: Vec<Arc<str>>,
}

impl Record {
    /// Records a failed attempt; `what` names where it went (`deployment (group)`).
    pub(crate) fn failed(&mut self, what: String, error: ApiError) {
        self.failures.push(Failed { what, error });
    }

    /// Records a fallback group skipped because the caller may not reach it.
    pub(crate) fn skipped(&mut self, group: Arc<str>) {
        self.skipped.push(group);
    }

    /// Marks an answer with the attempts it took and the failures before it.
    pub(crate) fn answered<B>(self, res: &mut Response<B>) {
        let h = res.headers_mut();
        h.insert(headers::ATTEMPTS, HeaderValue::from(self.attempts.attempts));
        h.insert(
            headers::FALLBACKS,
            HeaderValue::from(self.attempts.fallbacks),
        );
        if !self.skipped.is_empty() {
            h.insert(headers::FALLBACKS_SKIPPED, skipped_header(&self.skipped));
        }
        res.extensions_mut().insert(self.attempts);
        if !self.failures.is_empty() {
            res.extensions_mut()
                .insert(FailedAttempts(failed_attempts(&self.failures)));
        }
    }

    /// The error the client gets when nothing is left: the only failure as it was, or the last
    /// one's status with every attempt listed; either way naming the fallbacks skipped because
    /// the caller may not reach them.
    pub(crate) fn give_up(self) -> ApiError {
        let attribution = attribution(&self.failures, self.attempts);
        let mut e = last_failure(self.failures);
        if let Some(a) = attribution {
            e = e.with_attribution(a);
        }
        if self.skipped.is_empty() {
            return e;
        }
        let names = self
            .skipped
            .iter()
            .map(|s| &**s)
            .collect::<Vec<_>>()
            .join(", ");
        let msg = format!(
            "{}; fallbacks skipped because this key may not call them: {names}",
            e.message()
        );
        e.with_message(msg)
    }
}

/// `x-llmgate-fallbacks-skipped`: the names as written, comma-separated; a character a header
/// cannot carry (names may come from the request body) becomes `?`.
fn skipped_header(skipped: &[Arc<str>]) -> HeaderValue {
    let joined = skipped.iter().map(|s| &**s).collect::<Vec<_>>().join(", ");
    HeaderValue::from_str(&joined).unwrap_or_else(|_| {
        let clean: String = joined
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static("?"))
    })
}

/// The failed attempts that reached a deployment, each against its own.
fn failed_attempts(failures: &[Failed]) -> Vec<FailedAttempt> {
    failures
        .iter()
        .filter_map(|f| {
            let a = f.error.attribution()?;
            let d = a.deployment.as_ref()?;
            Some(FailedAttempt {
                group: a.group.clone(),
                deployment: d.id.clone(),
                class: FailureClass::of(&f.error),
                counts: f.error.counts_against_deployment(),
            })
        })
        .collect()
}

/// The request's attribution when it fails: the last attempt's group and deployment (as the
/// router attributed it), the request's attempt counts, and the failed attempts before it.
fn attribution(failures: &[Failed], attempts: Attempts) -> Option<Attribution> {
    let (last, earlier) = failures.split_last()?;
    let mut a = last.error.attribution()?.clone();
    a.attempts = attempts;
    a.earlier = failed_attempts(earlier);
    Some(a)
}

fn last_failure(mut failures: Vec<Failed>) -> ApiError {
    if failures.len() == 1 {
        return failures.remove(0).error;
    }
    let mut msg = format!("all {} attempts failed:", failures.len());
    for (i, f) in failures.iter().enumerate() {
        let _ = write!(
            msg,
            "{} {} -> {} {}",
            if i == 0 { "" } else { ";" },
            f.what,
            f.error.status().as_u16(),
            f.error.message()
        );
    }
    let Some(last) = failures.pop() else {
        return ApiError::internal("no attempt was made");
    };
    let e = last.error;
    let mut out = ApiError::new(e.status(), e.origin(), msg)
        .with_type(e.error_type())
        .with_retryable(e.retryable())
        .with_retry_after(e.retry_after());
    if let Some(code) = e.code() {
        out = out.with_code(code);
    }
    out
}
