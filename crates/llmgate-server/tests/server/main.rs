//! The tests that run the real `llmgate` binary: real processes, real signals, real sockets.
//! One test binary for all of them, so the many files are compiled and linked once; each
//! file is a module named as before (`cargo test -p llmgate-server --test server shutdown::`).

mod support;

mod attribution;
mod binary;
mod bounds;
mod budgets;
mod cooldowns;
mod dashboards;
mod db_outage;
mod env;
mod gateway_budget;
mod healthcheck;
mod http_limits;
mod import;
mod limits;
mod logs;
mod multi_instance;
mod multi_instance_redis;
mod readiness;
mod reload;
mod reload_keeps;
mod rpd;
mod shared_limits;
mod shutdown;
mod spend_queue;
mod teams;
mod tls;
mod upgrade;
