//! A redis-server of one test's (or bench's) own: a free loopback port,
//! its files in the caller's directory, every write synced
//! (`appendonly yes`, `appendfsync always`). Included by path from the
//! server's tests and bench and from the CLI's tests.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    /// On `port` (0: a free one), keeping its files in `dir`; panics with
    /// what to install when redis-server is missing.
    pub fn start(dir: &Path, port: u16) -> RedisServer {
        Self::try_start(dir, port)
            .expect("redis-server is not installed or did not start: run scripts/install-peers.sh")
    }

    /// [`start`](Self::start), or the reason it could not.
    pub fn try_start(dir: &Path, port: u16) -> std::io::Result<RedisServer> {
        let port = match port {
            0 => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
            p => p,
        };
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("redis-server did not start in 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `kill -9`; the port, to start again on.
    pub fn kill9(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}
