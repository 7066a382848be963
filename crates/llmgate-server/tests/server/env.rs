//! The environment LiteLLM's image users set, read by the real `llmgate` binary: `PORT`, `HOST`,
//! `NUM_WORKERS` and `CONFIG_FILE_PATH` as defaults for their flags (a flag wins),
//! `LITELLM_MASTER_KEY` and `DATABASE_URL` as defaults for the config's `general_settings`, and
//! the error that names every way to say what to serve.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{chat, post, send, sigterm, text, wait_exit, Gateway, BIN, DEMO};
use http::StatusCode;
use llmgate::auth::KeyStore as _;
use llmgate_store::{Store, StoreOptions};
use llmgate_testkit::MockProvider;
use serde_json::json;
use tokio::net::TcpStream;

/// Every variable this file is about: removed from the inherited environment first, so a
/// developer's own `PORT` cannot change a test.
const OURS: [&str; 9] = [
    "PORT",
    "HOST",
    "NUM_WORKERS",
    "CONFIG_FILE_PATH",
    "LITELLM_MASTER_KEY",
    "DATABASE_URL",
    "SSL_CERTFILE_PATH",
    "SSL_KEYFILE_PATH",
    "LLMGATE_WORK_STEALING",
];

/// A fresh directory under the test target dir.
fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("llmgate-env-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with exactly `args` and `env` (none of [`OURS`] inherited), info logs on a pipe.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for name in OURS {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Start the binary and wait until `addr` accepts connections; panics with its log if it
/// exits first. The port comes from the caller (it is what the test is about), so a port
/// taken in between fails the test instead of being retried.
async fn start(args: &[&str], env: &[(&str, &str)], addr: SocketAddr) -> Gateway {
    let mut gateway = Gateway(command(args, env).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = gateway.0.try_wait().unwrap() {
            panic!("llmgate exited ({status}): {}", stderr_of(&mut gateway));
        }
        if TcpStream::connect(addr).await.is_ok() {
            return gateway;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("llmgate did not listen on {addr}");
}

/// Stop the gateway with SIGTERM and return what it logged.
async fn stop(mut gateway: Gateway) -> String {
    sigterm(&gateway);
    let status = wait_exit(&mut gateway, Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
    stderr_of(&mut gateway)
}

fn stderr_of(gateway: &mut Gateway) -> String {
    let mut out = String::new();
    if let Some(mut pipe) = gateway.0.stderr.take() {
        let _ = pipe.read_to_string(&mut out);
    }
    out
}

/// Ask for the `demo` model: the status and the answer's text.
async fn ask(addr: SocketAddr, model: &str) -> (StatusCode, String) {
    let response = send(addr, chat(model, false)).await;
    (response.status(), text(response).await)
}

#[tokio::test]
async fn port_host_workers_and_config_come_from_the_environment() {
    let dir = test_dir("all-env");
    let config = write(&dir, "config.yaml", DEMO);
    let port = free_port().to_string();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let gateway = start(
        &[],
        &[
            ("CONFIG_FILE_PATH", config.to_str().unwrap()),
            ("PORT", &port),
            ("HOST", "127.0.0.1"),
            ("NUM_WORKERS", "3"),
            ("LLMGATE_WORK_STEALING", "off"),
        ],
        addr,
    )
    .await;
    let (status, body) = ask(addr, "demo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("hello"), "{body}");
    let log = stop(gateway).await;
    assert!(
        log.contains(&format!("llmgate listening on http://127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains("workers=3 work_stealing=false"), "{log}");
}

#[tokio::test]
async fn flags_win_over_the_environment() {
    let dir = test_dir("flags-win");
    let config = write(&dir, "config.yaml", DEMO);
    let env_port = free_port().to_string();
    let flag_port = free_port().to_string();
    let addr: SocketAddr = format!("127.0.0.1:{flag_port}").parse().unwrap();
    let gateway = start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--port",
            &flag_port,
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
            "--work-stealing",
            "on",
        ],
        &[
            // Each of these would fail the start or change what the log says.
            ("CONFIG_FILE_PATH", "/nonexistent/llmgate/config.yaml"),
            ("PORT", &env_port),
            ("HOST", "::1"),
            ("NUM_WORKERS", "3"),
            ("LLMGATE_WORK_STEALING", "off"),
        ],
        addr,
    )
    .await;
    let (status, body) = ask(addr, "demo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let env_addr: SocketAddr = format!("127.0.0.1:{env_port}").parse().unwrap();
    assert!(
        TcpStream::connect(env_addr).await.is_err(),
        "also listening on PORT"
    );
    let log = stop(gateway).await;
    assert!(
        log.contains(&format!(
            "llmgate listening on http://127.0.0.1:{flag_port}"
        )),
        "{log}"
    );
    assert!(log.contains("workers=1 work_stealing=true"), "{log}");
}

/// The image sets `CONFIG_FILE_PATH`; `--model ... --api_base ...` after the image name must
/// still serve the one model instead of conflicting with it.
#[tokio::test]
async fn model_flag_wins_over_config_file_path() {
    let upstream = MockProvider::start().await;
    let port = free_port().to_string();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let gateway = start(
        &[
            "--model",
            "openai/gpt-4o",
            "--api_base",
            &upstream.v1_url(),
            "--api_key",
            "sk-upstream",
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
        ],
        &[
            ("CONFIG_FILE_PATH", "/nonexistent/llmgate/config.yaml"),
            ("PORT", &port),
        ],
        addr,
    )
    .await;
    let (status, body) = ask(addr, "gpt-4o").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(upstream.requests().len(), 1, "the upstream was called");
    let log = stop(gateway).await;
    // `--work-stealing auto`, the default: one worker steals nothing.
    assert!(log.contains("workers=1 work_stealing=false"), "{log}");
}

#[test]
fn nothing_to_serve_names_all_three_ways() {
    let output = command(&["--port", "0"], &[]).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
    for way in [
        "--config FILE",
        "CONFIG_FILE_PATH=FILE",
        "--model PROVIDER/MODEL",
    ] {
        assert!(stderr.contains(way), "{way} missing from: {stderr}");
    }
    // An empty CONFIG_FILE_PATH is no config either.
    let output = command(&[], &[("CONFIG_FILE_PATH", "")]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// A variable set to the empty string (`PORT=` in a compose file, an empty Helm value) counts
/// as unset, as in LiteLLM: the defaults apply, and no TLS is asked for.
#[tokio::test]
async fn empty_variables_count_as_unset() {
    let dir = test_dir("empty");
    let config = write(&dir, "config.yaml", DEMO);
    let port = free_port().to_string();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let empty = [
        ("HOST", ""),
        ("NUM_WORKERS", ""),
        ("SSL_CERTFILE_PATH", ""),
        ("SSL_KEYFILE_PATH", ""),
        ("CONFIG_FILE_PATH", ""),
        ("LLMGATE_WORK_STEALING", ""),
    ];
    let mut env = vec![("PORT", port.as_str())];
    env.extend(empty);
    let gateway = start(&["--config", config.to_str().unwrap()], &env, addr).await;
    let (status, body) = ask(addr, "demo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let log = stop(gateway).await;
    assert!(
        log.contains(&format!("llmgate listening on http://0.0.0.0:{port}")),
        "{log}"
    );

    // PORT= too (4000 may be taken here, so only the parse is checked: an empty PORT would be
    // an invalid port before anything else).
    let output = command(&[], &[("PORT", ""), ("HOST", "")])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing to serve"), "{stderr}");
}

/// `llmgate check` reads `CONFIG_FILE_PATH` too, and the serving variables set for the image
/// (`PORT`, `HOST`, `NUM_WORKERS`) do not get in the way of a subcommand.
#[test]
fn check_reads_config_file_path_beside_the_serving_variables() {
    let dir = test_dir("check");
    let config = write(&dir, "config.yaml", DEMO);
    let output = command(
        &["check"],
        &[
            ("CONFIG_FILE_PATH", config.to_str().unwrap()),
            ("PORT", "4100"),
            ("HOST", "127.0.0.1"),
            ("NUM_WORKERS", "2"),
        ],
    )
    .stdout(Stdio::piped())
    .output()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{}: valid", config.display())),
        "{stdout}"
    );
}

/// `llmgate keys` finds its config through `CONFIG_FILE_PATH` and its master key through
/// `LITELLM_MASTER_KEY`, as the server does.
#[test]
fn keys_read_config_file_path_and_the_master_key() {
    let dir = test_dir("keys");
    let config = write(&dir, "config.yaml", DEMO);
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let output = command(args, env).stdout(Stdio::piped()).output().unwrap();
        (
            output.status,
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let config_env = ("CONFIG_FILE_PATH", config.to_str().unwrap());
    let master = ("LITELLM_MASTER_KEY", "sk-master-keys");
    let (status, stdout, stderr) = run(
        &["keys", "create", "--alias", "from-env"],
        &[config_env, master],
    );
    assert!(status.success(), "{stdout}{stderr}");
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        created["key"].as_str().unwrap().starts_with("sk-"),
        "{created}"
    );
    assert!(
        dir.join("llmgate.db").exists(),
        "the key is not beside the config"
    );
    let (status, stdout, stderr) = run(&["keys", "list"], &[config_env, master]);
    assert!(status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("from-env"), "{stdout}");

    // Without the master key, the message says where one comes from.
    let (status, _, stderr) = run(&["keys", "list"], &[config_env]);
    assert!(!status.success());
    assert!(stderr.contains("LITELLM_MASTER_KEY"), "{stderr}");
    // Without a config, the message says how to give one.
    let (status, _, stderr) = run(&["keys", "list"], &[master]);
    assert!(!status.success());
    assert!(stderr.contains("CONFIG_FILE_PATH"), "{stderr}");
}

/// LiteLLM's image reads the master key and the database from the environment when the config
/// does not set them; so does llmgate (through `llmgate-config`).
#[tokio::test]
async fn master_key_and_database_url_come_from_the_environment() {
    const MASTER: &str = "sk-master-from-env";
    let dir = test_dir("master-db");
    let config = write(&dir, "config.yaml", DEMO);
    let database = dir.join("from-env.db");
    let database_url = format!("sqlite://{}", database.display());
    let port = free_port().to_string();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let gateway = start(
        &["--config", config.to_str().unwrap(), "--host", "127.0.0.1"],
        &[
            ("PORT", &port),
            ("LITELLM_MASTER_KEY", MASTER),
            ("DATABASE_URL", &database_url),
        ],
        addr,
    )
    .await;

    // The master key is in force: no key, no answer.
    let (status, body) = ask(addr, "demo").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = post(addr, "/v1/chat/completions", MASTER, &chat_json()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A key made with it lands in DATABASE_URL's database, not in llmgate.db beside the config.
    let (status, body) = post(addr, "/key/generate", MASTER, &json!({"key_alias": "env"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = post(addr, "/v1/chat/completions", &key, &chat_json()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stop(gateway).await;

    assert!(
        !dir.join("llmgate.db").exists(),
        "the default database was used"
    );
    let store = Store::open(&database_url, &StoreOptions::new())
        .await
        .unwrap();
    let stored = store.get(&token).await.unwrap();
    assert!(stored.is_some(), "the key is not in {database_url}");
}

fn chat_json() -> serde_json::Value {
    serde_json::from_str(&chat("demo", false)).unwrap()
}

/// docs/deployment.md: `RUST_LOG` wins over `--log-level`. With `--log-level error` and
/// `RUST_LOG=info`, the INFO line saying where it listens is written; with `--log-level error`
/// alone (and `RUST_LOG` unset), it is not.
#[tokio::test]
async fn rust_log_wins_over_the_log_level_flag() {
    let dir = test_dir("rust-log-wins");
    let config = write(&dir, "config.yaml", DEMO);
    for (rust_log, shown) in [(Some("info"), true), (None, false)] {
        let port = free_port().to_string();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let args = [
            "--config",
            config.to_str().unwrap(),
            "--port",
            &port,
            "--host",
            "127.0.0.1",
            "--log-level",
            "error",
        ];
        let mut command = command(&args, &[]);
        match rust_log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let gateway = Gateway(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "llmgate did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = stop(gateway).await;
        assert_eq!(
            log.contains("llmgate listening on"),
            shown,
            "RUST_LOG={rust_log:?}: {log}"
        );
    }
}
