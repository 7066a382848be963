//! Zero-downtime binary upgrade through the real `llmgate` binary and real signals: a new
//! process started with `--upgrade` takes the listening socket from the running one, which is
//! sent SIGQUIT, drains and exits, while a load of clients sees no error.
//!
//! The two processes serve the model `chat` from two mock upstreams whose replies name the
//! process that answered ([`OLD`], [`NEW`]): each answer says who served it.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers")]

mod h2;
mod load;

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{post, signal, wait_exit, Gateway, BIN};
use http::StatusCode;
use http_body_util::BodyExt as _;
use llmgate_store::{LogFilter, Store, StoreOptions};
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use load::{
    chat, connect, error, record, start_load, Answer, Shared, IDLE_CLIENT_THINKS, NEW, OLD,
};
use serde_json::json;
use tokio::net::TcpStream;

const MASTER: &str = "sk-master-upgrade";
/// Pingora keeps accepting this long after handing the sockets over; plus a margin for a busy
/// machine.
const OLD_ACCEPTS_FOR: Duration = Duration::from_secs(6);

/// A directory of its own per test: both configs (so both processes share the SQLite database
/// beside them), the logs, the upgrade and notify sockets.
fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("upgrade-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An upstream whose replies say `who`, streamed `pace` apart per event (a stream has about
/// five), and a config `name`.yaml serving it as `chat`.
async fn upstream_and_config(
    dir: &Path,
    name: &str,
    who: &str,
    pace: Duration,
) -> (MockProvider, PathBuf) {
    let upstream = MockProvider::start().await;
    upstream.set_default(Behaviour::reply(who).paced(pace));
    let text = format!(
        "model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: {}\n      api_key: sk-test\n    model_info:\n      \
         input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n\
         general_settings:\n  master_key: {MASTER}\n",
        upstream.v1_url()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    (upstream, path)
}

/// How a test starts `llmgate`: where its log goes, and systemd's notify socket if any.
struct Launch<'a> {
    log: PathBuf,
    notify: Option<&'a Path>,
}

/// Start `llmgate` with `config` on `addr` (one worker); `args` come last.
fn launch(config: &Path, addr: SocketAddr, args: &[&str], how: &Launch<'_>) -> Gateway {
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(config)
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--num_workers", "1", "--log-level", "info"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stderr(File::create(&how.log).unwrap());
    if let Some(socket) = how.notify {
        command.env("NOTIFY_SOCKET", socket);
    }
    Gateway(command.spawn().unwrap())
}

/// [`launch`] on a free port, retried if another process takes the port meanwhile.
async fn start_old(config: &Path, args: &[&str], how: &Launch<'_>) -> (Gateway, SocketAddr) {
    for _ in 0..3 {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut gateway = launch(config, addr, args, how);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && gateway.0.try_wait().unwrap().is_none() {
            if TcpStream::connect(addr).await.is_ok() {
                return (gateway, addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("llmgate did not start; see {}", how.log.display());
}

/// Waits until a process listens on the Unix socket `sock` (the new process waiting for the
/// listening sockets), as the kernel's table of Unix sockets says.
async fn wait_listening(sock: &Path, new: &mut Gateway) {
    let suffix = format!(" {}", sock.display());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = std::fs::read_to_string("/proc/net/unix").unwrap();
        if table
            .lines()
            .any(|l| l.ends_with(&suffix) && l.split_whitespace().nth(3) == Some("00010000"))
        {
            return;
        }
        assert!(
            new.0.try_wait().unwrap().is_none(),
            "the new process exited"
        );
        assert!(Instant::now() < deadline, "the new process never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The messages systemd would have received on its notify socket, each as text.
fn notifications(socket: &UnixDatagram) -> Vec<String> {
    socket.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

/// The spend-log rows of the key `token`.
async fn spend_rows(dir: &Path, token: &str) -> usize {
    let store = Store::open_sqlite(&dir.join("llmgate.db"), &StoreOptions::new())
        .await
        .unwrap();
    let filter = LogFilter {
        key_token: Some(token.to_owned()),
        limit: 1_000_000,
        ..LogFilter::default()
    };
    store.spend_logs(&filter).await.unwrap().len()
}

/// A stream on the old process, started just before SIGQUIT: with the old upstream's pace it
/// runs past the moment the old process stops accepting, into its drain.
async fn stream_across(addr: SocketAddr, key: String, tally: Shared) {
    let sent = Instant::now();
    let mut sender = connect(addr).await.unwrap();
    match sender.send_request(chat(&key, true)).await {
        Ok(response) => record(&tally, response, sent, true).await,
        Err(e) => error(&tally, format!("the stream across the hand-over: {e}")),
    }
}

/// The whole hand-over under load. Guards docs/upgrade.md: no
/// connection error and no failed request across it, a stream running on the old process
/// when it stops accepting finishes whole, the old process stops accepting 5 s after SIGQUIT
/// and exits 0 once its requests and connections are done, the new process serves from then
/// on, every answer's spend record is written (by the process that answered), and systemd is
/// told each process's pid once it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_under_load_loses_no_request_and_no_stream() {
    let dir = test_dir("load");
    // The old process's streams take about 10 s: they outlast its 5 s of accepting.
    let slow = Duration::from_millis(2500);
    let (old_upstream, old_config) = upstream_and_config(&dir, "old", OLD, slow).await;
    let fast = Duration::from_millis(250);
    let (_new_upstream, new_config) = upstream_and_config(&dir, "new", NEW, fast).await;
    let sock = dir.join("upgrade.sock");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let how = |name: &str| Launch {
        log: dir.join(name),
        notify: Some(&notify_path),
    };
    let sock_arg = ["--upgrade_sock", sock.to_str().unwrap()];
    let (mut old, addr) = start_old(&old_config, &sock_arg, &how("old.log")).await;
    let (status, key) = post(addr, "/key/generate", MASTER, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let (secret, token) = (key["key"].as_str().unwrap(), key["token"].as_str().unwrap());

    let tally = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = start_load(addr, secret, &tally, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let new_args = [sock_arg[0], sock_arg[1], "--upgrade"];
    let mut new = launch(&new_config, addr, &new_args, &how("new.log"));
    wait_listening(&sock, &mut new).await;
    let before = old_upstream.request_count();
    tasks.push(tokio::spawn(stream_across(
        addr,
        secret.to_owned(),
        tally.clone(),
    )));
    while old_upstream.request_count() == before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let quit = Instant::now();
    signal(&old, "QUIT");
    let old_status = wait_exit(&mut old, Duration::from_secs(40)).await;
    let old_exit = Instant::now();
    // Past the idle client's second request too.
    let end = (old_exit + Duration::from_millis(1500)).max(started + IDLE_CLIENT_THINKS * 11 / 10);
    tokio::time::sleep_until(end.into()).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(old_status.success(), "the old process: {old_status}");
    assert!(
        new.0.try_wait().unwrap().is_none(),
        "the new process serves"
    );

    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let count = |keep: &dyn Fn(&Answer) -> bool| tally.answers.iter().filter(|a| keep(a)).count();
    eprintln!(
        "{} answers in {elapsed:.1?} ({:.0}/s), {} of them while the old process drained; \
         {} by the old process ({} streams), {} by the new; SIGQUIT to exit: {:.1?}",
        tally.answers.len(),
        tally.answers.len() as f64 / elapsed.as_secs_f64(),
        count(&|a| a.sent > quit && a.sent < old_exit),
        count(&|a| a.by == OLD),
        count(&|a| a.by == OLD && a.stream),
        count(&|a| a.by == NEW),
        old_exit - quit,
    );
    assert!(
        tally.errors.is_empty(),
        "{} errors, first: {:?}",
        tally.errors.len(),
        &tally.errors[..tally.errors.len().min(5)]
    );
    let stopped_accepting = quit + OLD_ACCEPTS_FOR;
    assert!(
        count(&|a| a.by == OLD && a.stream && a.done > stopped_accepting) > 0,
        "a stream of the old process ran into its drain and finished"
    );
    assert!(
        count(&|a| a.sent > quit && a.sent < old_exit) >= 100,
        "load during the hand-over"
    );
    assert_eq!(
        count(&|a| a.by == OLD && a.fresh_connection && a.sent > stopped_accepting),
        0,
        "the old process stopped accepting"
    );
    assert_eq!(count(&|a| a.by == OLD && a.sent > old_exit), 0);
    assert!(
        count(&|a| a.by == NEW && a.sent > old_exit) > 0,
        "the new process serves"
    );
    assert!(count(&|a| a.by == NEW && a.stream) > 0, "and streams");

    signal(&new, "TERM");
    assert!(wait_exit(&mut new, Duration::from_secs(20)).await.success());
    assert_eq!(
        spend_rows(&dir, token).await,
        tally.answers.len(),
        "one spend record per answer"
    );
    let (old_pid, new_pid) = (old.0.id(), new.0.id());
    assert_eq!(
        notifications(&notify),
        [
            format!("MAINPID={old_pid}\nREADY=1\n"),
            format!("MAINPID={new_pid}\nREADY=1\n")
        ],
        "systemd learns each process's pid once it serves"
    );
}

/// An old process ready to hand over: two upstreams whose replies name the process that
/// answered, the old process started with an upgrade socket (and `extra` arguments), and a key
/// made on it.
struct Pair {
    dir: PathBuf,
    old_upstream: MockProvider,
    _new_upstream: MockProvider,
    new_config: PathBuf,
    sock: PathBuf,
    old: Gateway,
    addr: SocketAddr,
    secret: String,
}

impl Pair {
    async fn start(name: &str, extra: &[&str]) -> Pair {
        let dir = test_dir(name);
        let pace = Duration::from_millis(10);
        let (old_upstream, old_config) = upstream_and_config(&dir, "old", OLD, pace).await;
        let (_new_upstream, new_config) = upstream_and_config(&dir, "new", NEW, pace).await;
        let sock = dir.join("upgrade.sock");
        let mut args = vec!["--upgrade_sock", sock.to_str().unwrap()];
        args.extend(extra);
        let how = Launch {
            log: dir.join("old.log"),
            notify: None,
        };
        let (old, addr) = start_old(&old_config, &args, &how).await;
        let (status, key) = post(addr, "/key/generate", MASTER, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{key}");
        let secret = key["key"].as_str().unwrap().to_owned();
        Pair {
            dir,
            old_upstream,
            _new_upstream,
            new_config,
            sock,
            old,
            addr,
            secret,
        }
    }

    /// The new process, `--upgrade` (with `extra` arguments), logging to `new.log`.
    fn launch_new(&self, extra: &[&str]) -> Gateway {
        let mut args = vec!["--upgrade_sock", self.sock.to_str().unwrap()];
        args.extend(extra);
        args.push("--upgrade");
        let how = Launch {
            log: self.dir.join("new.log"),
            notify: None,
        };
        launch(&self.new_config, self.addr, &args, &how)
    }

    /// A request on a new connection is answered by the new process; then it is stopped.
    async fn new_serves_then_stops(&self, mut new: Gateway) {
        let mut sender = connect(self.addr).await.unwrap();
        let response = sender
            .send_request(chat(&self.secret, false))
            .await
            .unwrap();
        let tally = Shared::default();
        record(&tally, response, Instant::now(), true).await;
        assert_eq!(tally.lock().unwrap().answers[0].by, NEW);
        signal(&new, "TERM");
        assert!(wait_exit(&mut new, Duration::from_secs(20)).await.success());
    }
}

/// SIGQUIT with no new process waiting on the upgrade socket changes nothing: the process logs
/// why and keeps serving past the point where Pingora, asked to hand over to nobody, would have
/// stopped accepting (5 s of tries to send, then 5 s). A later SIGQUIT then hands over to a
/// new process started just after it (the old one waits up to 5 s for it to appear).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_with_no_new_process_waiting_keeps_serving() {
    let mut p = Pair::start("no-partner", &[]).await;
    let (addr, secret) = (p.addr, p.secret.clone());

    let tally = Shared::default();
    signal(&p.old, "QUIT");
    let quit = Instant::now();
    // The old process's wait for a partner (5 s) and Pingora's would-be hand-over (10 s).
    while quit.elapsed() < Duration::from_secs(17) {
        let sent = Instant::now();
        match connect(addr).await {
            Ok(mut sender) => match sender.send_request(chat(&secret, false)).await {
                Ok(response) => record(&tally, response, sent, true).await,
                Err(e) => error(&tally, format!("request: {e}")),
            },
            Err(e) => error(&tally, e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    assert!(tally.answers.iter().all(|a| a.by == OLD) && tally.answers.len() > 50);
    assert!(p.old.0.try_wait().unwrap().is_none(), "still running");
    let text = std::fs::read_to_string(p.dir.join("old.log")).unwrap();
    assert!(
        text.contains("no new process is waiting on the upgrade socket; still serving"),
        "{text}"
    );

    // The one-liner: SIGQUIT first, then the new process.
    signal(&p.old, "QUIT");
    let new = p.launch_new(&[]);
    assert!(wait_exit(&mut p.old, Duration::from_secs(30))
        .await
        .success());
    p.new_serves_then_stops(new).await;
}

/// SIGTERM after SIGQUIT hurries the old process's stop as a second signal does: once its 5 s
/// of accepting are over, a stream it was still serving (held at its upstream, so the drain
/// would wait the whole 30 s grace period) is cut with an error event, and it exits with 1
/// within 3 s of the SIGTERM. The new process serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_after_sigquit_cuts_the_streams_and_exits_with_1() {
    quit_then("TERM").await;
}

/// The same with SIGINT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigint_after_sigquit_cuts_the_streams_and_exits_with_1() {
    quit_then("INT").await;
}

/// SIGQUIT, then `second` once the old process stopped accepting: see the tests above.
async fn quit_then(second: &str) {
    let mut p = Pair::start(&format!("quit-then-{second}"), &[]).await;
    let (addr, secret) = (p.addr, p.secret.clone());

    let gate = Gate::new();
    p.old_upstream.set_default(Behaviour::gated(&gate, 1));
    let mut sender = connect(addr).await.unwrap();
    let (response, ()) = tokio::join!(
        sender.send_request(chat(&secret, true)),
        gate.wait_for_arrivals(1)
    );
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    signal(&p.old, "QUIT");
    let quit = Instant::now();
    let new = p.launch_new(&[]);
    tokio::time::sleep(OLD_ACCEPTS_FOR.saturating_sub(quit.elapsed())).await;
    assert!(
        p.old.0.try_wait().unwrap().is_none(),
        "waits for the stream"
    );

    let term = Instant::now();
    signal(&p.old, second);
    let status = wait_exit(&mut p.old, Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(
        term.elapsed() < Duration::from_secs(3),
        "exited {:?} after SIG{second}",
        term.elapsed()
    );
    let text = match response.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(e) => panic!("the stream was dropped, not ended with an error event: {e}"),
    };
    assert!(
        text.contains("gateway_shutting_down") && !text.contains("[DONE]"),
        "{text}"
    );
    gate.release();
    p.new_serves_then_stops(new).await;
}

/// `--upgrade` with no running process to take the sockets from: the process waits about 6 s
/// for them, then exits with 1, having listened on nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_with_nothing_to_take_over_exits_with_1() {
    let dir = test_dir("alone");
    let pace = Duration::from_millis(10);
    let (_upstream, config) = upstream_and_config(&dir, "new", NEW, pace).await;
    let sock = dir.join("upgrade.sock");
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let how = Launch {
        log: dir.join("new.log"),
        notify: None,
    };
    let args = ["--upgrade_sock", sock.to_str().unwrap(), "--upgrade"];
    let mut new = launch(&config, addr, &args, &how);
    let status = wait_exit(&mut new, Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(TcpStream::connect(addr).await.is_err(), "nothing listens");
    let text = std::fs::read_to_string(&how.log).unwrap();
    assert!(
        text.contains("waiting for the running llmgate's listening sockets"),
        "{text}"
    );
}

/// `deploy/systemd/llmgate-upgrade`, what `systemctl reload` runs in the unit.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/systemd/llmgate-upgrade"
);

/// Runs [`SCRIPT`] on `pid`, its output (the new process's log too) in `log`: its exit code.
fn run_script(pid: u32, log: &Path) -> Option<i32> {
    let out = File::create(log).unwrap();
    let status = Command::new(SCRIPT)
        .arg(pid.to_string())
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    status.code()
}

async fn answered_by(addr: SocketAddr, key: &str) -> &'static str {
    let tally = Shared::default();
    let mut sender = connect(addr).await.unwrap();
    let response = sender.send_request(chat(key, false)).await.unwrap();
    record(&tally, response, Instant::now(), true).await;
    let tally = tally.lock().unwrap();
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    tally.answers[0].by
}

/// The helper script restarts the running process's command line, with `--upgrade`, and hands
/// over: with a config that does not load, the new process exits, the script exits 1 and the
/// running process serves on untouched; with a good one, the script returns 0 once the old
/// process has exited and the new one (reading the changed config) serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_script_hands_over_or_leaves_the_running_process_alone() {
    let dir = test_dir("script");
    let pace = Duration::from_millis(10);
    let (_old_upstream, old_config) = upstream_and_config(&dir, "old", OLD, pace).await;
    let (_new_upstream, new_config) = upstream_and_config(&dir, "new", NEW, pace).await;
    let config = dir.join("config.yaml");
    std::fs::copy(&old_config, &config).unwrap();
    let sock = dir.join("upgrade.sock");
    let how = Launch {
        log: dir.join("old.log"),
        notify: None,
    };
    let (mut old, addr) =
        start_old(&config, &["--upgrade_sock", sock.to_str().unwrap()], &how).await;
    let (status, key) = post(addr, "/key/generate", MASTER, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();

    std::fs::write(&config, "model_list: [\n").unwrap();
    let log = dir.join("script-bad.log");
    let pid = old.0.id();
    let code = tokio::task::spawn_blocking(move || run_script(pid, &log))
        .await
        .unwrap();
    let text = std::fs::read_to_string(dir.join("script-bad.log")).unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("before taking over"), "{text}");
    assert!(old.0.try_wait().unwrap().is_none());
    assert_eq!(answered_by(addr, &secret).await, OLD);

    std::fs::copy(&new_config, &config).unwrap();
    let log = dir.join("script.log");
    let code = tokio::task::spawn_blocking(move || run_script(pid, &log))
        .await
        .unwrap();
    let text = std::fs::read_to_string(dir.join("script.log")).unwrap();
    assert_eq!(code, Some(0), "{text}");
    let status = old
        .0
        .try_wait()
        .unwrap()
        .expect("the old process has exited");
    assert!(status.success(), "{status}");
    assert_eq!(answered_by(addr, &secret).await, NEW);

    // The new process is the script's child, not ours: stop it by the pid the script printed.
    let new_pid = text
        .lines()
        .find_map(|l| l.strip_prefix("llmgate-upgrade: started "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert!(Command::new("kill")
        .arg(new_pid)
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the new process still serves");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
