//! Certificate renewal through a Kubernetes Secret volume (docs/deployment.md, "Certificate
//! renewal"): the flags name `tls.crt` and `tls.key`, symlinks through `..data` to a timestamped
//! directory, and an update swaps `..data` to a new directory in one rename. The watcher follows
//! the symlinks; a pair that does not match is refused, and the next good pair is taken.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{s, start_with, trusted_by, write_config, Pki, DEMO};

/// Writes `cert` and `key` into a new timestamped directory of the volume `dir` and points
/// `..data` at it with one rename, as the kubelet does.
fn publish(dir: &Path, generation: u32, cert: &Path, key: &Path) {
    let data = format!("..2026_12_04_{generation}");
    std::fs::create_dir_all(dir.join(&data)).unwrap();
    std::fs::copy(cert, dir.join(&data).join("tls.crt")).unwrap();
    std::fs::copy(key, dir.join(&data).join("tls.key")).unwrap();
    let next = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(&data, &next).unwrap();
    std::fs::rename(&next, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(name)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
    }
}

async fn until_trusted_by(pki: &Pki, addr: std::net::SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !trusted_by(pki, addr).await {
        assert!(Instant::now() < deadline, "{what} was not served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_secret_volume_update_is_served_and_a_bad_pair_waits_for_the_next_good_one() {
    let (first, second) = (Pki::new("volume-first"), Pki::new("volume-second"));
    let volume = first.path("volume");
    std::fs::create_dir_all(&volume).unwrap();
    publish(&volume, 1, &first.cert, &first.key);
    let (cert, key) = (volume.join("tls.crt"), volume.join("tls.key"));
    let config = write_config("tls-volume", DEMO);
    let flags = [
        "--ssl_certfile_path",
        &s(&cert),
        "--ssl_keyfile_path",
        &s(&key),
    ];
    let (_gateway, addr) = start_with(
        &config,
        &[&flags[..], &["--ssl-reload-seconds", "1"]].concat(),
        &[],
    )
    .await;
    assert!(trusted_by(&first, addr).await);

    publish(&volume, 2, &second.cert, &second.key);
    until_trusted_by(&second, addr, "the updated Secret").await;

    // A certificate and a key that do not belong together: refused, the current pair stays.
    publish(&volume, 3, &first.cert, &second.key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        trusted_by(&second, addr).await,
        "a mismatched pair replaced a good one"
    );

    // The next good pair is taken.
    publish(&volume, 4, &first.cert, &first.key);
    until_trusted_by(&first, addr, "the good pair after a refused one").await;
}
