//! Spawning the real `portrait` binary for end-to-end tests.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const APP: u64 = 1_400_000_001;
pub const KEY: &str = "crash-test-key";

/// A running `portrait serve` process.
pub struct Node {
    pub child: Child,
    pub base: String,
    /// Every stdout line seen before the listening line.
    pub banner: Vec<String>,
}

/// Starts `portrait serve` on an ephemeral port with `data_dir`; `apps` is the PORTRAIT_APPS
/// value (None: no apps, so the development app is used). Waits for the "listening" line.
pub fn start(data_dir: &Path, apps: Option<&str>) -> Node {
    let mut cmd = serve_command(data_dir);
    if let Some(apps) = apps {
        cmd.env("PORTRAIT_APPS", apps);
    }
    launch(cmd)
}

/// `portrait serve --listen 127.0.0.1:0 --data-dir DIR`, run in `data_dir`, logging warnings to
/// the test's stderr, with no `PORTRAIT_*` variable inherited from the test's environment.
pub fn serve_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portrait"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .current_dir(data_dir)
        .env("RUST_LOG", "warn")
        // Errors logged by a node without a backtrace each (panics keep theirs).
        .env("RUST_LIB_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORTRAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Spawns `cmd` (a `portrait serve` command with piped stdout, see [`serve_command`]) and waits
/// for its "listening" line. Panics if the process exits first (its stderr is the test's).
#[allow(clippy::zombie_processes)] // the child is reaped by Node's Drop
pub fn launch(mut cmd: Command) -> Node {
    let mut child = cmd.spawn().expect("spawn portrait");
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Err(mpsc::SendError(line)) = tx.send(line) {
                // Listening: the node's log (warnings and errors, see `serve_command`) goes to
                // the test's stderr, so a failing test shows why the node refused; draining
                // also keeps the child from blocking on a full pipe.
                eprintln!("[portrait {pid}] {line}");
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("portrait did not print its listening line within 60 s")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("reap portrait");
                panic!("portrait exited ({status}) before listening; its stderr is above; stdout: {banner:#?}")
            }
        };
        if let Some(url) = line.strip_prefix("portrait: listening on ") {
            return Node {
                child,
                base: url.trim().to_owned(),
                banner,
            };
        }
        banner.push(line);
    }
}

/// PORTRAIT_APPS for one app with rate limits off.
pub fn apps_env() -> String {
    format!("[{{sdkappid={APP}, key=\"{KEY}\", admins=[\"administrator\"], rate_limits={{enabled=false}}}}]")
}

impl Node {
    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
