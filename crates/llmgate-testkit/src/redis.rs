//! [`ErringRedis`]: a Redis that is up and answers every command with an error (`-ERR ...`),
//! unlike a [`crate::FaultProxy`]'s cut (connection refused) or stall (no answer).
//!
//! ```
//! use llmgate_testkit::ErringRedis;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let redis = ErringRedis::start().await?;
//! let mut conn = tokio::net::TcpStream::connect(redis.addr()).await?;
//! conn.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").await?;
//! let mut buf = [0u8; 4];
//! conn.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"-ERR");
//! assert_eq!(redis.count("get"), 1);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The answer to every command.
const ERROR: &[u8] = b"-ERR llmgate-testkit: this Redis answers every command with an error\r\n";

/// A fake Redis on `127.0.0.1:<ephemeral>` answering every command (RESP arrays or inline)
/// with an error, and noting each command's name. Dropping it stops the listener.
#[derive(Debug)]
pub struct ErringRedis {
    addr: SocketAddr,
    commands: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ErringRedis {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub async fn start() -> std::io::Result<ErringRedis> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let commands: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = commands.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, seen.clone()));
            }
        });
        Ok(ErringRedis {
            addr,
            commands,
            task,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// How many commands named `name` (any case) it has been sent.
    pub fn count(&self, name: &str) -> usize {
        let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands
            .iter()
            .filter(|c| c.eq_ignore_ascii_case(name))
            .count()
    }
}

impl Drop for ErringRedis {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers each command on `socket` with [`ERROR`] until the client leaves.
async fn serve(socket: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let (r, mut w) = socket.into_split();
    let mut r = BufReader::new(r);
    while let Some(name) = command(&mut r).await {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        if w.write_all(ERROR).await.is_err() {
            return;
        }
    }
}

/// Reads one command, returning its name; `None` at the end of the stream or on a malformed one.
async fn command(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let line = read_line(r).await?;
    let Some(n) = line.strip_prefix('*') else {
        // An inline command: its first word.
        return Some(line.split_whitespace().next().unwrap_or("").to_owned());
    };
    let n: usize = n.parse().ok()?;
    let mut name = None;
    for _ in 0..n {
        let len: usize = read_line(r).await?.strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0; len + 2];
        r.read_exact(&mut arg).await.ok()?;
        arg.truncate(len);
        name.get_or_insert_with(|| String::from_utf8_lossy(&arg).into_owned());
    }
    name
}

async fn read_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}
