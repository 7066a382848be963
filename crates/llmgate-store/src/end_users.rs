//! End users' spend, charged with the spend log: the request's `user` field summed per batch
//! and added to its record (created on its first charge).

use llmgate_metering::SpendRecord;

/// Charges an end user (creating its record the first time it is seen, as LiteLLM creates
/// customers): `$1` the end user, `$2` USD, `$3` now.
pub(crate) const CHARGE_END_USER: &str = "INSERT INTO llmgate_records \
    (kind, id, doc, spend, budget_reset_at, created_at, updated_at) \
    VALUES ('end_user', $1, '{}', $2, NULL, $3, $3) \
    ON CONFLICT (kind, id) DO UPDATE SET spend = llmgate_records.spend + excluded.spend";

/// The cost of `records` per end user (their `user` field), in first-seen order, leaving out
/// records without one or with nothing to charge.
pub(crate) fn end_user_charges<'a>(records: &[&'a SpendRecord]) -> Vec<(&'a str, f64)> {
    let mut out: Vec<(&str, f64)> = Vec::new();
    for r in records {
        let (Some(user), cost) = (r.end_user.as_deref(), r.charge()) else {
            continue;
        };
        if cost == 0.0 {
            continue;
        }
        match out.iter_mut().find(|(u, _)| *u == user) {
            Some((_, c)) => *c += cost,
            None => out.push((user, cost)),
        }
    }
    out
}
