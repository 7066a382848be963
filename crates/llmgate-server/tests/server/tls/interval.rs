//! `--ssl-reload-seconds` (docs/deployment.md, TLS flags): how often the certificate files are
//! looked at. 0 never looks again after the start; without the flag they are looked at every
//! 10 s.

use std::time::{Duration, Instant};

use super::{replace, s, start_with, trusted_by, write_config, Pki, DEMO};

/// The certificate and key served from a directory of `old`'s, with `flags` after them.
async fn serving(
    old: &Pki,
    name: &str,
    flags: &[&str],
) -> (
    crate::support::Gateway,
    std::net::SocketAddr,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let served = old.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let (cert, key) = (served.join("cert.pem"), served.join("key.pem"));
    replace(&cert, &old.cert);
    replace(&key, &old.key);
    let config = write_config(name, DEMO);
    let mut args = vec![
        "--ssl_certfile_path".to_owned(),
        s(&cert),
        "--ssl_keyfile_path".to_owned(),
        s(&key),
    ];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (gateway, addr) = start_with(&config, &args, &[]).await;
    assert!(trusted_by(old, addr).await);
    (gateway, addr, cert, key)
}

/// Polls until a client trusting only `pki` completes a handshake: when.
async fn until_trusted(pki: &Pki, addr: std::net::SocketAddr, deadline: Instant) -> Instant {
    while !trusted_by(pki, addr).await {
        assert!(Instant::now() < deadline, "not renewed in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instant::now()
}

#[tokio::test]
async fn a_reload_interval_of_0_never_looks_at_the_files_again() {
    let (old, new) = (Pki::new("interval-0-old"), Pki::new("interval-0-new"));
    let (_gateway, addr, cert, key) =
        serving(&old, "tls-interval-0", &["--ssl-reload-seconds", "0"]).await;
    replace(&cert, &new.cert);
    replace(&key, &new.key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        trusted_by(&old, addr).await,
        "renewed although the interval is 0"
    );
    assert!(!trusted_by(&new, addr).await);
}

/// Without the flag: a change is served at the next look, and the look after it comes 10 s
/// later. The first renewal is polled for (its look falls anywhere in its 10 s); the files are
/// changed back at once, and that change is served about 10 s after the first was.
#[tokio::test]
async fn without_the_flag_the_files_are_looked_at_every_10_s() {
    let (old, new) = (
        Pki::new("interval-default-old"),
        Pki::new("interval-default-new"),
    );
    let (_gateway, addr, cert, key) = serving(&old, "tls-interval-default", &[]).await;
    replace(&cert, &new.cert);
    replace(&key, &new.key);
    let first = until_trusted(&new, addr, Instant::now() + Duration::from_secs(14)).await;
    replace(&cert, &old.cert);
    replace(&key, &old.key);
    let second = until_trusted(&old, addr, first + Duration::from_secs(14)).await;
    let interval = second - first;
    assert!(
        interval > Duration::from_millis(8500) && interval < Duration::from_secs(12),
        "the second change was served {interval:?} after the first"
    );
}
