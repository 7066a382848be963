//! The command line's parsing: defaults, both spellings, sources, TLS and the environment.

use super::*;
use clap::CommandFactory;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("llmgate").chain(args.iter().copied()))
}

#[test]
fn the_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn config_with_litellm_defaults() {
    let cli = parse(&["--config", "config.yaml"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.source.config, Some(PathBuf::from("config.yaml")));
    assert_eq!(cli.serve.listen_address(), "0.0.0.0:4000");
    assert_eq!(cli.serve.graceful_shutdown_seconds, 30);
    assert!(cli.serve.workers() >= 1);
    assert_eq!(cli.log.log_format, LogFormat::Pretty);
    assert_eq!(cli.log.filter(), "info");
}

#[test]
fn underscores_and_dashes_both_work() {
    for flag in ["--num_workers", "--num-workers"] {
        let cli = parse(&["-c", "c.yaml", flag, "3"]).unwrap();
        assert_eq!(cli.serve.workers(), 3);
    }
    for flag in ["--api_base", "--api-base"] {
        let cli = parse(&["--model", "ollama/llama3.2", flag, "http://127.0.0.1:11434"]).unwrap();
        assert_eq!(
            cli.source.api_base.as_deref(),
            Some("http://127.0.0.1:11434")
        );
    }
    let cli = parse(&["--model", "openai/gpt-4o", "--api_key", "sk-test"]).unwrap();
    assert_eq!(cli.source.api_key.as_deref(), Some("sk-test"));
    let cli = parse(&[
        "-c",
        "c.yaml",
        "--log_format",
        "json",
        "--log_level",
        "debug",
    ])
    .unwrap();
    assert_eq!(cli.log.log_format, LogFormat::Json);
    assert_eq!(cli.log.filter(), "debug");
}

#[test]
fn work_stealing_is_off_with_one_worker_unless_asked_for() {
    let steals = |args: &[&str]| parse(args).unwrap().serve.steals_work();
    assert!(!steals(&["-c", "c.yaml", "--num_workers", "1"]));
    assert!(steals(&["-c", "c.yaml", "--num_workers", "2"]));
    assert!(steals(&[
        "-c",
        "c.yaml",
        "--num_workers",
        "1",
        "--work-stealing",
        "on"
    ]));
    assert!(!steals(&[
        "-c",
        "c.yaml",
        "--num_workers",
        "4",
        "--work_stealing",
        "off"
    ]));
    assert!(parse(&["-c", "c.yaml", "--work-stealing", "sometimes"]).is_err());
}

#[test]
fn host_port_and_ipv6() {
    let cli = parse(&["-c", "c.yaml", "--host", "::1", "--port", "8080"]).unwrap();
    assert_eq!(cli.serve.listen_address(), "[::1]:8080");
}

#[test]
fn sidecar_needs_no_config() {
    let cli = parse(&["--model", "ollama/llama3.2"]).unwrap();
    assert_eq!(cli.source.model.as_deref(), Some("ollama/llama3.2"));
    assert!(cli.source.config.is_none());
}

/// An environment with only `CONFIG_FILE_PATH` set to `value`.
fn config_env(value: &'static str) -> impl Fn(&str) -> Option<OsString> {
    move |name| (name == CONFIG_FILE_PATH).then(|| OsString::from(value))
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

#[test]
fn a_source_is_required_and_only_one() {
    let none = parse(&[]).unwrap();
    let error = none.source.resolve(no_env).unwrap_err();
    for way in [
        "--config FILE",
        "CONFIG_FILE_PATH=FILE",
        "--model PROVIDER/MODEL",
    ] {
        assert!(error.contains(way), "{error}");
    }
    let port_only = parse(&["--port", "4000"]).unwrap();
    assert!(port_only.source.resolve(config_env("")).is_err());
    assert!(parse(&["-c", "c.yaml", "--model", "ollama/llama3.2"]).is_err());
    assert!(parse(&["-c", "c.yaml", "--api_base", "http://x"]).is_err());
    assert!(parse(&["--api_key", "sk-x"]).is_err());
    assert!(parse(&["-c", "c.yaml", "--num_workers", "0"]).is_err());
}

#[test]
fn config_file_path_is_the_default_source_and_flags_win() {
    let env = config_env("/app/config.yaml");
    let cli = parse(&[]).unwrap();
    assert_eq!(
        cli.source.resolve(&env),
        Ok(Serving::Config(PathBuf::from("/app/config.yaml")))
    );
    let cli = parse(&["-c", "mine.yaml"]).unwrap();
    assert_eq!(
        cli.source.resolve(&env),
        Ok(Serving::Config(PathBuf::from("mine.yaml")))
    );
    // The image sets CONFIG_FILE_PATH; `--model` after the image name still serves the model.
    let cli = parse(&["--model", "ollama/llama3.2", "--api_base", "http://o:11434"]).unwrap();
    assert_eq!(
        cli.source.resolve(&env),
        Ok(Serving::Model {
            model: "ollama/llama3.2",
            api_base: Some("http://o:11434"),
            api_key: None
        })
    );
}

#[test]
fn empty_variables_lose_their_env_default() {
    let env = |name: &str| (name != "HOST").then(OsString::new);
    let command = without_empty_env(Cli::command(), &env);
    let env_of = |command: &clap::Command, id: &str| {
        command
            .get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_env().map(ToOwned::to_owned))
    };
    for id in [
        "port",
        "num_workers",
        "work_stealing",
        "ssl_certfile_path",
        "ssl_keyfile_path",
    ] {
        assert_eq!(env_of(&command, id), None, "{id}");
    }
    assert_eq!(env_of(&command, "host"), Some("HOST".into()));
    let check = command.find_subcommand("check").unwrap();
    assert_eq!(env_of(check, "config"), None);
    // Unchanged where the variables are unset.
    let command = without_empty_env(Cli::command(), &|_| None);
    assert_eq!(env_of(&command, "port"), Some("PORT".into()));
    let check = command.find_subcommand("check").unwrap();
    assert_eq!(env_of(check, "config"), Some("CONFIG_FILE_PATH".into()));
}

#[test]
fn tls_takes_both_files_in_either_spelling() {
    let cli = parse(&[
        "-c",
        "c.yaml",
        "--ssl_certfile_path",
        "cert.pem",
        "--ssl-keyfile-path",
        "key.pem",
    ])
    .unwrap();
    let files = cli.serve.tls.files().unwrap();
    assert_eq!(
        (files.cert, files.key),
        (PathBuf::from("cert.pem"), PathBuf::from("key.pem"))
    );
    let cli = parse(&[
        "-c",
        "c.yaml",
        "--ssl-certfile-path",
        "cert.pem",
        "--ssl_keyfile_path",
        "key.pem",
    ])
    .unwrap();
    assert!(cli.serve.tls.files().is_some());
    assert!(parse(&["-c", "c.yaml"])
        .unwrap()
        .serve
        .tls
        .files()
        .is_none());
    assert!(parse(&["-c", "c.yaml", "--ssl_certfile_path", "cert.pem"]).is_err());
    assert!(parse(&["-c", "c.yaml", "--ssl_keyfile_path", "key.pem"]).is_err());
}

#[test]
fn check_takes_its_own_config() {
    let cli = parse(&["check", "--config", "c.yaml"]).unwrap();
    match cli.command {
        Some(Command::Check { config }) => assert_eq!(config, PathBuf::from("c.yaml")),
        _ => panic!("expected check"),
    }
    assert!(parse(&["check"]).is_err());
}

#[test]
fn keys_subcommands() {
    let cli = parse(&[
        "keys",
        "create",
        "-c",
        "c.yaml",
        "--models",
        "a,b",
        "--max_budget",
        "5",
        "--alias",
        "ci",
    ])
    .unwrap();
    match cli.command {
        Some(Command::Keys {
            config,
            action: KeysAction::Create(s),
        }) => {
            assert_eq!(config, Some(PathBuf::from("c.yaml")));
            assert_eq!(s.models, vec!["a", "b"]);
            assert_eq!(
                (s.max_budget, s.key_alias.as_deref()),
                (Some(5.0), Some("ci"))
            );
        }
        other => panic!("expected keys create, got {other:?}"),
    }
    let cli = parse(&[
        "keys", "--config", "c.yaml", "delete", "sk-1", "--alias", "x",
    ])
    .unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Keys { action: KeysAction::Delete { ref keys, ref aliases }, .. })
            if keys == &["sk-1"] && aliases == &["x"]
    ));
}

#[test]
fn debug_flags_mean_debug() {
    for flag in ["--debug", "--detailed_debug"] {
        assert_eq!(
            parse(&["-c", "c.yaml", flag]).unwrap().log.filter(),
            "debug"
        );
    }
}

#[test]
fn upgrade_flags_in_both_spellings_and_a_default_socket_per_address() {
    let cli = parse(&["-c", "c.yaml"]).unwrap();
    assert!(!cli.serve.upgrade);
    assert_eq!(
        cli.serve.upgrade_sock(),
        PathBuf::from("/tmp/llmgate_upgrade_0.0.0.0_4000.sock")
    );
    let cli = parse(&["-c", "c.yaml", "--host", "::1", "--port", "8080"]).unwrap();
    assert_eq!(
        cli.serve.upgrade_sock(),
        PathBuf::from("/tmp/llmgate_upgrade_::1_8080.sock")
    );
    for flag in ["--upgrade_sock", "--upgrade-sock"] {
        let cli = parse(&["-c", "c.yaml", "--upgrade", flag, "/run/llmgate/u.sock"]).unwrap();
        assert!(cli.serve.upgrade);
        assert_eq!(
            cli.serve.upgrade_sock(),
            PathBuf::from("/run/llmgate/u.sock")
        );
    }
    let long = format!("/tmp/{}", "x".repeat(103));
    assert!(parse(&["-c", "c.yaml", "--upgrade_sock", &long]).is_err());
    assert!(parse(&["-c", "c.yaml", "--upgrade_sock", &long[..107]]).is_ok());
}
