//! The replicated services of the high-availability test (`ha.rs`), started on free loopback
//! ports under temporary directories and torn down on drop, failure included:
//!
//! * [`PgPair`]: a PostgreSQL 15 primary and a streaming-replication standby (Debian's binaries
//!   in [`PG_BIN`]), replication *synchronous* (`synchronous_standby_names = '*'`), so that a
//!   commit is acknowledged only once the standby has it. Promotion is the documented manual one
//!   (docs/deployment.md, "High availability"): the test kills the primary's process group and
//!   runs `pg_ctl promote` on the standby. PostgreSQL refuses to run as root, so as root every
//!   command runs as the `postgres` OS user (`runuser -u postgres --`) in a directory it owns.
//! * [`NatsCluster`]: three `nats-server` processes ([`NATS_SERVER`]) routed into one cluster,
//!   each with its monitoring port, whose `/connz` tells which server the nodes are on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 server binaries live.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Debian's NATS server.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// How long a service may take to start.
pub(super) const START_WAIT: Duration = Duration::from_secs(30);

/// A free TCP port on 127.0.0.1 (bound, then released for the service to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Panics, naming what to install, unless every file in `paths` exists.
pub(super) fn require(paths: &[PathBuf], package: &str) {
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the high-availability test needs {} (Debian package {package}: `apt-get install {package}`)",
        missing.join(", ")
    );
}

pub(super) fn as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs `bin` (a PostgreSQL binary) with `args` as the `postgres` OS user when we are root, and
/// panics with its output if it fails.
pub(super) fn pg(bin: &str, args: &[&str]) {
    let path = Path::new(PG_BIN).join(bin);
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    let out = cmd
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends `lines` to `dir/postgresql.conf` (later settings win).
pub(super) fn configure(dir: &Path, lines: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("postgresql.conf"))
        .expect("open postgresql.conf");
    writeln!(f, "\n{lines}").expect("write postgresql.conf");
}

/// The postmaster's pid, from `postmaster.pid` (its first line).
pub(super) fn postmaster_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// SIGKILLs the process group led by `pid` (`pg_ctl` starts the postmaster in a session of its
/// own, so this is the postmaster and every backend: a machine dying, as far as clients see).
pub(super) fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// A primary and its synchronous standby. Dropping it kills both and removes their files.
pub struct PgPair {
    dir: tempfile::TempDir,
    /// Ports of the primary and of the standby.
    pub ports: [u16; 2],
}

impl PgPair {
    /// Data directory of server `n` (0: the first primary, 1: the standby).
    fn data(&self, n: usize) -> PathBuf {
        self.dir.path().join(["primary", "standby"][n])
    }

    /// initdb, start the primary, base-backup the standby from it and start the standby.
    pub fn start() -> PgPair {
        require(
            &["initdb", "pg_ctl", "pg_basebackup", "postgres"].map(|b| Path::new(PG_BIN).join(b)),
            "postgresql-15",
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        if as_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {} to the postgres user", dir.path().display());
        }
        let pair = PgPair {
            dir,
            ports: [free_port(), free_port()],
        };
        let (primary, standby) = (pair.data(0), pair.data(1));
        let sockets = pair.dir.path().display().to_string();
        pg(
            "initdb",
            &[
                "-D",
                &primary.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--no-instructions",
            ],
        );
        configure(
            &primary,
            &format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{sockets}'\n\
                 wal_level = replica\nmax_wal_senders = 4\nwal_keep_size = '64MB'\n\
                 synchronous_standby_names = '*'\nsynchronous_commit = on\n\
                 max_connections = 100\nshared_buffers = '32MB'",
                pair.ports[0]
            ),
        );
        pair.pg_ctl_start(0);
        pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pair.ports[0].to_string(),
                "-U",
                "postgres",
                "-D",
                &standby.display().to_string(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        // Once promoted, the standby has no standby of its own: a synchronous setting would make
        // every commit wait for one forever.
        configure(
            &standby,
            &format!(
                "port = {}\nsynchronous_standby_names = ''\nhot_standby = on",
                pair.ports[1]
            ),
        );
        pair.pg_ctl_start(1);
        pair
    }

    fn pg_ctl_start(&self, n: usize) {
        let data = self.data(n);
        pg(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &data.join("server.log").display().to_string(),
                "-w",
                "-t",
                &START_WAIT.as_secs().to_string(),
                "start",
            ],
        );
    }

    /// `postgres://postgres@127.0.0.1:P1,127.0.0.1:P2/postgres?target_session_attrs=read-write`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
            self.ports[0], self.ports[1]
        )
    }

    /// SIGKILLs the primary and all its backends.
    pub fn kill_primary(&self) {
        let pid = postmaster_pid(&self.data(0)).expect("the primary's postmaster.pid");
        kill_group(pid);
    }

    /// `pg_ctl promote` on the standby; returns once it accepts writes.
    pub fn promote_standby(&self) {
        pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(1).display().to_string(),
                "-w",
                "-t",
                &START_WAIT.as_secs().to_string(),
                "promote",
            ],
        );
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        for n in 0..2 {
            if let Some(pid) = postmaster_pid(&self.data(n)) {
                kill_group(pid);
            }
        }
        // The temp dir is removed by its own drop (as root, whoever owns the files).
    }
}

/// One server of a [`NatsCluster`].
struct NatsServer {
    child: Child,
    port: u16,
    monitor: u16,
}

/// Three NATS servers routed into one cluster. Dropping it kills them.
pub struct NatsCluster {
    servers: Vec<Option<NatsServer>>,
}

impl NatsCluster {
    /// Starts three servers and waits until each has routes to the two others.
    pub async fn start() -> NatsCluster {
        require(&[PathBuf::from(NATS_SERVER)], "nats-server");
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        // Built as the servers start, so that a failure part-way kills those already running.
        let mut cluster = NatsCluster {
            servers: Vec::new(),
        };
        for (n, &(port, cluster_port, monitor)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .map(|(_, p)| format!("nats://127.0.0.1:{}", p.1))
                .collect();
            let child = Command::new(NATS_SERVER)
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .args(["-m", &monitor.to_string()])
                .args(["--cluster_name", "portrait-ha"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cluster_port}")])
                .args(["--routes", &routes.join(",")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {NATS_SERVER}: {e}"));
            cluster.servers.push(Some(NatsServer {
                child,
                port,
                monitor,
            }));
        }
        let deadline = Instant::now() + START_WAIT;
        for n in 0..3 {
            loop {
                let routes = cluster.monitor(n, "routez").await;
                if routes.and_then(|r| r["num_routes"].as_u64()) == Some(2) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "NATS server {n} has no routes to the two others within {START_WAIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// `nats://127.0.0.1:P1,nats://127.0.0.1:P2,nats://127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self
            .servers
            .iter()
            .flatten()
            .map(|s| format!("nats://127.0.0.1:{}", s.port))
            .collect();
        urls.join(",")
    }

    /// The JSON of monitoring endpoint `what` of server `n`, if it answers.
    async fn monitor(&self, n: usize, what: &str) -> Option<serde_json::Value> {
        let server = self.servers[n].as_ref()?;
        let url = format!("http://127.0.0.1:{}/{what}", server.monitor);
        let reply = reqwest::get(url).await.ok()?;
        reply.json().await.ok()
    }

    /// Client connections of each server still running (`None` for a killed one).
    pub async fn clients(&self) -> Vec<Option<u64>> {
        let mut got = Vec::new();
        for n in 0..3 {
            let connz = self.monitor(n, "connz").await;
            got.push(connz.and_then(|c| c["num_connections"].as_u64()));
        }
        got
    }

    /// SIGKILLs server `n`.
    pub fn kill(&mut self, n: usize) {
        let mut server = self.servers[n].take().expect("the server is running");
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for server in self.servers.iter_mut().flatten() {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }
}
