//! Work the gateway does beside requests (following other instances' key changes), started
//! once, from inside the runtime that serves requests: `Gateway::new` spawns nothing, because a
//! host such as Pingora builds the gateway before its runtimes exist.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Tasks to spawn on the first request (or on an explicit [`Background::start`]).
#[derive(Clone, Default)]
pub(crate) struct Background {
    started: Arc<OnceLock<()>>,
    tasks: Arc<Mutex<Vec<Task>>>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("started", &self.started.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Background {
    /// Adds a task; it runs once started.
    pub(crate) fn add(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(Box::pin(task));
        }
    }

    /// Spawns the tasks, the first time only. Must run inside a tokio runtime.
    pub(crate) fn start(&self) {
        if self.started.get().is_some() || self.started.set(()).is_err() {
            return;
        }
        let tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return,
        };
        for task in tasks {
            tokio::spawn(task);
        }
    }
}
