//! [`BudgetHold`]: a request's reservation against its key's budgets, put in the request's
//! extensions by the layer that admitted it (auth) and settled with the request's real cost by
//! the layer that knows it (metering). Layer crates cannot call each other; this is the seam.

use std::fmt;
use std::sync::{Arc, Mutex};

type Settle = Box<dyn FnOnce(Option<f64>) + Send>;

/// Settles once: with the request's cost ([`BudgetHold::settle`]), or, if every copy is
/// dropped first (the request was refused or failed before metering saw it), with no cost,
/// which gives the reservation back.
#[derive(Clone)]
pub struct BudgetHold(Arc<Inner>);

struct Inner(Mutex<Option<Settle>>);

impl BudgetHold {
    /// A hold that runs `settle` once, with the cost (`None`: unknown or nothing to charge).
    pub fn new(settle: impl FnOnce(Option<f64>) + Send + 'static) -> Self {
        BudgetHold(Arc::new(Inner(Mutex::new(Some(Box::new(settle))))))
    }

    /// Settles with `cost` USD (`None` when the cost is unknown). Later calls do nothing.
    pub fn settle(&self, cost: Option<f64>) {
        let f = self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f(cost);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let f = self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f(None);
        }
    }
}

impl fmt::Debug for BudgetHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BudgetHold")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn settles_once_with_the_cost_or_on_the_last_drop() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let hold = BudgetHold::new(move |cost| c.lock().unwrap().push(cost));
        let copy = hold.clone();
        copy.settle(Some(0.5));
        hold.settle(Some(1.0));
        drop((hold, copy));
        assert_eq!(*calls.lock().unwrap(), vec![Some(0.5)]);

        let n = Arc::new(AtomicU32::new(0));
        let m = n.clone();
        let hold = BudgetHold::new(move |cost| {
            assert_eq!(cost, None);
            m.fetch_add(1, Ordering::SeqCst);
        });
        let copy = hold.clone();
        drop(hold);
        assert_eq!(n.load(Ordering::SeqCst), 0, "a copy is still alive");
        drop(copy);
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }
}
