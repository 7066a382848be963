//! [`Live`]: what the parts that outlive a config reload (the key budgets' estimator, the health
//! checks, the daily counts, the shared cooldowns) read of the config that is running now: the
//! model table and each group's prices. A reload installs the new ones when it swaps the stack.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use llmgate_router::ModelTable;

/// A group's dearest input and output prices per token, for budget estimates.
pub(crate) type GroupPrices = HashMap<Arc<str>, (f64, f64)>;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Live {
    table: ArcSwap<ModelTable>,
    group_prices: ArcSwap<GroupPrices>,
}

impl Live {
    /// Starts with `table` and no prices (installed with the first stack).
    pub(crate) fn new(table: Arc<ModelTable>) -> Arc<Self> {
        Arc::new(Live {
            table: ArcSwap::new(table),
            group_prices: ArcSwap::default(),
        })
    }

    /// The table now.
    pub(crate) fn table(&self) -> Arc<ModelTable> {
        self.table.load_full()
    }

    /// The input and output prices of the group `model` resolves to now.
    pub(crate) fn group_price(&self, model: &str) -> Option<(f64, f64)> {
        let table = self.table.load();
        let group = table.resolve(model)?;
        self.group_prices.load().get(group).copied()
    }

    /// Makes `table` and `prices` current.
    pub(crate) fn install(&self, table: Arc<ModelTable>, prices: Arc<GroupPrices>) {
        self.table.store(table);
        self.group_prices.store(prices);
    }
}
