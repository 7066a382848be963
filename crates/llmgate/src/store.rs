//! Opening the configured key store: `general_settings.database_url` (or `DATABASE_URL`), else
//! the embedded default, SQLite in `llmgate.db` beside the config.

use std::path::PathBuf;
use std::sync::Arc;

use llmgate_auth::KeyStore;
use llmgate_config::Config;
use tokio::runtime::Handle;

/// Importing another gateway's keys, teams and end users (`llmgate import litellm`).
pub use llmgate_store::import;
pub use llmgate_store::Database;

/// The database file used when no `database_url` is configured.
pub const DEFAULT_DATABASE_FILE: &str = "llmgate.db";

/// Why the key store could not be opened (the message names the database, never a password).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OpenStoreError(#[from] pub llmgate_store::OpenError);

/// Opens (and migrates) the key store `config` names: `general_settings.database_url` (or
/// `DATABASE_URL`), else SQLite in [`DEFAULT_DATABASE_FILE`] beside the config. The store's I/O
/// then runs on the runtime this is called from, whichever runtime later calls it: a host like
/// Pingora serves from runtimes of its own that stop before the process writes its last records.
pub async fn open_key_store(config: &Config) -> Result<Arc<dyn KeyStore>, OpenStoreError> {
    Ok(open_database(config).await?.key_store())
}

/// Opens (and migrates) the database `config` names, as [`open_key_store`], for keys and
/// spend alike.
pub async fn open_database(config: &Config) -> Result<Database, OpenStoreError> {
    let mut options = llmgate_store::StoreOptions::new();
    if let Some(limit) = config.general_settings.database_connection_pool_limit {
        options = options.pool_limit(limit);
    }
    let store = match &config.general_settings.database_url {
        Some(url) => llmgate_store::Store::open(url.expose(), &options).await?,
        None => {
            let path: PathBuf = config.config_dir.join(DEFAULT_DATABASE_FILE);
            llmgate_store::Store::open_sqlite(&path, &options).await?
        }
    };
    Ok(Database::new(store, Handle::current()))
}

/// Where `/v1/responses` keeps responses: in `database` when there is one, else in memory.
pub(crate) fn response_store(database: Option<&Database>) -> llmgate_responses::SharedStore {
    match database {
        Some(db) => db.response_store(),
        None => Arc::new(llmgate_responses::MemoryStore::new()),
    }
}
