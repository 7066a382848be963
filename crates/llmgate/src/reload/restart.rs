//! What a reload cannot change: settings read once, when the process starts (the parts built
//! from them live as long as it does, see `parts.rs`), or read by the host before the gateway
//! exists. A new config that changes any of them is refused whole, with one problem per key
//! naming it; nothing is half-applied. The listen address, port and worker count are command
//! line flags, not config: a reload never sees them.

use llmgate_config::Config;

/// One restart-only setting: its name and whether two configs agree on it.
struct Fixed {
    key: &'static str,
    same: fn(&Config, &Config) -> bool,
}

macro_rules! general {
    ($field:ident) => {
        Fixed {
            key: concat!("general_settings.", stringify!($field)),
            same: |a, b| a.general_settings.$field == b.general_settings.$field,
        }
    };
}

macro_rules! cache_param {
    ($key:literal, $field:ident) => {
        Fixed {
            key: concat!("litellm_settings.cache_params.", $key),
            // Only while there is a store (turning it on or off is its own problem).
            same: |a, b| {
                let field = |c: &Config| {
                    c.litellm_settings
                        .cache_params
                        .as_ref()
                        .and_then(|p| p.$field.clone())
                };
                !cache_on(a) || !cache_on(b) || field(a) == field(b)
            },
        }
    };
}

fn cache_on(c: &Config) -> bool {
    c.litellm_settings.cache == Some(true)
}

/// Every restart-only setting.
fn fixed() -> Vec<Fixed> {
    vec![
        Fixed {
            key: "general_settings.master_key (added or removed; a new value is applied)",
            same: |a, b| a.master_key().is_some() == b.master_key().is_some(),
        },
        general!(database_url),
        general!(database_connection_pool_limit),
        general!(disable_spend_logs),
        general!(allow_requests_on_db_unavailable),
        general!(user_api_key_cache_ttl),
        Fixed {
            key: "router_settings.redis_url / redis_host / redis_port / redis_password",
            same: |a, b| {
                crate::build::ratelimit::redis_url(a) == crate::build::ratelimit::redis_url(b)
            },
        },
        general!(llmgate_rate_limit_redis_prefix),
        Fixed {
            key: "litellm_settings.cache (turning the response cache on or off)",
            same: |a, b| cache_on(a) == cache_on(b),
        },
        cache_param!("type", cache_type),
        cache_param!("host", host),
        cache_param!("port", port),
        cache_param!("url", url),
        cache_param!("password", password),
        cache_param!("max_size_in_memory", max_size_in_memory),
        cache_param!("max_size_in_memory_mb", max_size_in_memory_mb),
        Fixed {
            key: "litellm_settings.max_budget",
            same: |a, b| a.litellm_settings.max_budget == b.litellm_settings.max_budget,
        },
        Fixed {
            key: "litellm_settings.budget_duration",
            same: |a, b| a.litellm_settings.budget_duration == b.litellm_settings.budget_duration,
        },
        general!(proxy_batch_write_at),
        general!(spend_batch_size),
        general!(spend_queue_size),
        general!(spend_queue_full),
        Fixed {
            key: "general_settings.spend_spill_dir",
            same: |a, b| spill_dir(a) == spill_dir(b),
        },
        general!(max_request_size_mb),
        general!(llmgate_request_header_timeout),
        general!(llmgate_request_body_timeout),
        general!(llmgate_max_header_bytes),
        general!(llmgate_max_headers),
        general!(llmgate_max_connections),
        general!(background_health_checks),
        general!(health_check_interval),
        Fixed {
            key: "general_settings.alerting / alert_types / alerting_threshold / alerting_args / alert_to_webhook_url (or SLACK_WEBHOOK_URL / WEBHOOK_URL)",
            same: |a, b| a.general_settings.alerting == b.general_settings.alerting,
        },
    ]
}

/// Where spend records spill, as the meter resolves it (beside the config).
fn spill_dir(c: &Config) -> std::path::PathBuf {
    c.config_dir.join(
        c.general_settings
            .spend_spill_dir
            .as_deref()
            .unwrap_or(crate::build::meter::DEFAULT_SPILL_DIR.as_ref()),
    )
}

/// One problem per restart-only setting `new` changes from `running`; empty when `new` may be
/// applied by a reload.
pub(crate) fn needs_restart(running: &Config, new: &Config) -> Vec<String> {
    fixed()
        .into_iter()
        .filter(|f| !(f.same)(running, new))
        .map(|f| {
            format!(
                "{}: changed, and this needs a restart (it is read once, at start); the running config stays",
                f.key
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use llmgate_config::{CacheParams, Config, SpendQueueFull};
    use llmgate_core::Secret;

    use super::needs_restart;

    /// Asserts that `change` is refused, the one problem naming `key`.
    fn refused(key: &str, change: impl Fn(&mut Config)) {
        refused_from(Config::default(), key, change);
    }

    fn refused_from(running: Config, key: &str, change: impl Fn(&mut Config)) {
        let mut new = running.clone();
        change(&mut new);
        let problems = needs_restart(&running, &new);
        assert_eq!(problems.len(), 1, "{key}: {problems:?}");
        assert!(problems[0].contains(key), "{problems:?}");
        assert!(problems[0].contains("needs a restart"), "{problems:?}");
    }

    fn cached() -> Config {
        let mut c = Config::default();
        c.litellm_settings.cache = Some(true);
        c.litellm_settings.cache_params = Some(CacheParams {
            cache_type: Some("local".into()),
            ..CacheParams::default()
        });
        c
    }

    #[test]
    fn master_key_added_or_removed() {
        refused("general_settings.master_key", |c| {
            c.general_settings.master_key = Some(Secret::new("sk-1"));
        });
        let mut with = Config::default();
        with.general_settings.master_key = Some(Secret::new("sk-1"));
        refused_from(with.clone(), "general_settings.master_key", |c| {
            c.general_settings.master_key = None;
        });
        // A new value is applied.
        let mut other = with.clone();
        other.general_settings.master_key = Some(Secret::new("sk-2"));
        assert!(needs_restart(&with, &other).is_empty());
    }

    #[test]
    fn alerting() {
        refused("general_settings.alerting", |c| {
            c.general_settings.alerting.channels = vec!["slack".into()];
        });
        refused("alerting_threshold", |c| {
            c.general_settings.alerting.alerting_threshold =
                Some(std::time::Duration::from_secs(5));
        });
    }

    #[test]
    fn the_gateways_budget() {
        refused("litellm_settings.max_budget", |c| {
            c.litellm_settings.max_budget = Some(10.0);
        });
        refused("litellm_settings.budget_duration", |c| {
            c.litellm_settings.budget_duration = Some("1d".into());
        });
    }

    #[test]
    fn database_url() {
        refused("general_settings.database_url", |c| {
            c.general_settings.database_url = Some(Secret::new("postgres://db"));
        });
    }

    #[test]
    fn database_connection_pool_limit() {
        refused("general_settings.database_connection_pool_limit", |c| {
            c.general_settings.database_connection_pool_limit = Some(3);
        });
    }

    #[test]
    fn disable_spend_logs() {
        refused("general_settings.disable_spend_logs", |c| {
            c.general_settings.disable_spend_logs = Some(true);
        });
    }

    #[test]
    fn allow_requests_on_db_unavailable() {
        refused("general_settings.allow_requests_on_db_unavailable", |c| {
            c.general_settings.allow_requests_on_db_unavailable = Some(true);
        });
    }

    #[test]
    fn user_api_key_cache_ttl() {
        refused("general_settings.user_api_key_cache_ttl", |c| {
            c.general_settings.user_api_key_cache_ttl = Some(Duration::from_secs(5));
        });
    }

    #[test]
    fn redis_settings() {
        refused("router_settings.redis_url", |c| {
            c.router_settings.redis_url = Some(Secret::new("redis://127.0.0.1:6379/5"));
        });
        refused("router_settings.redis_url", |c| {
            c.router_settings.redis_host = Some("127.0.0.1".into());
        });
        refused("general_settings.llmgate_rate_limit_redis_prefix", |c| {
            c.general_settings.llmgate_rate_limit_redis_prefix = Some("x:".into());
        });
    }

    #[test]
    fn cache_on_or_off_and_its_store() {
        refused("litellm_settings.cache", |c| {
            c.litellm_settings.cache = Some(true);
        });
        refused_from(cached(), "litellm_settings.cache", |c| {
            c.litellm_settings.cache = Some(false);
        });
        let params = |c: &mut Config| c.litellm_settings.cache_params.as_mut().unwrap().clone();
        for (key, change) in [
            (
                "cache_params.type",
                (|p: &mut CacheParams| p.cache_type = Some("redis".into())) as fn(&mut CacheParams),
            ),
            ("cache_params.host", |p| p.host = Some("h".into())),
            ("cache_params.port", |p| p.port = Some(1)),
            ("cache_params.url", |p| {
                p.url = Some(Secret::new("redis://h"))
            }),
            ("cache_params.password", |p| {
                p.password = Some(Secret::new("pw"))
            }),
            ("cache_params.max_size_in_memory", |p| {
                p.max_size_in_memory = Some(5)
            }),
            ("cache_params.max_size_in_memory_mb", |p| {
                p.max_size_in_memory_mb = Some(5.0)
            }),
        ] {
            refused_from(cached(), key, |c| {
                let mut p = params(c);
                change(&mut p);
                c.litellm_settings.cache_params = Some(p);
            });
        }
        // The layer's settings are applied.
        let mut new = cached();
        let p = new.litellm_settings.cache_params.as_mut().unwrap();
        p.ttl = Some(Duration::from_secs(9));
        p.namespace = Some("n".into());
        assert!(needs_restart(&cached(), &new).is_empty());
    }

    #[test]
    fn spend_queue_settings() {
        refused("general_settings.proxy_batch_write_at", |c| {
            c.general_settings.proxy_batch_write_at = Some(Duration::from_secs(1));
        });
        refused("general_settings.spend_batch_size", |c| {
            c.general_settings.spend_batch_size = Some(1);
        });
        refused("general_settings.spend_queue_size", |c| {
            c.general_settings.spend_queue_size = Some(1);
        });
        refused("general_settings.spend_queue_full", |c| {
            c.general_settings.spend_queue_full = Some(SpendQueueFull::Drop);
        });
        refused("general_settings.spend_spill_dir", |c| {
            c.general_settings.spend_spill_dir = Some("elsewhere".into());
        });
    }

    #[test]
    fn limits_the_host_reads_at_start() {
        refused("general_settings.max_request_size_mb", |c| {
            c.general_settings.max_request_size_mb = Some(1.0);
        });
        refused("general_settings.llmgate_request_header_timeout", |c| {
            c.general_settings.llmgate_request_header_timeout = Some(Duration::from_secs(1));
        });
        refused("general_settings.llmgate_request_body_timeout", |c| {
            c.general_settings.llmgate_request_body_timeout = Some(Duration::from_secs(1));
        });
        refused("general_settings.llmgate_max_header_bytes", |c| {
            c.general_settings.llmgate_max_header_bytes = Some(1);
        });
        refused("general_settings.llmgate_max_headers", |c| {
            c.general_settings.llmgate_max_headers = Some(1);
        });
        refused("general_settings.llmgate_max_connections", |c| {
            c.general_settings.llmgate_max_connections = Some(1);
        });
    }

    #[test]
    fn background_health_checks() {
        refused("general_settings.background_health_checks", |c| {
            c.general_settings.background_health_checks = Some(true);
        });
        refused("general_settings.health_check_interval", |c| {
            c.general_settings.health_check_interval = Some(Duration::from_secs(1));
        });
    }

    #[test]
    fn models_limits_and_routing_are_applied() {
        let running = Config::default();
        let mut new = running.clone();
        new.general_settings.max_parallel_requests = Some(3);
        new.general_settings.global_max_parallel_requests = Some(30);
        new.general_settings.max_response_size_mb = Some(1.0);
        new.router_settings.num_retries = Some(4);
        assert!(needs_restart(&running, &new).is_empty());
    }
}
