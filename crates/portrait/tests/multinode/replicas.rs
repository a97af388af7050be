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
//!   each with its monitoring port, whose `/connz` tells which server the nodes are on; a killed
//!   server can be started again on its client port (`converge.rs`).
//!
//! Ports: a NATS server picks its own (`-p -1`, read back from its ports file, [`spawn_nats`]);
//! PostgreSQL cannot, so it is started on a free port and started again on another if that one
//! was taken in between ([`pg_start_on_free_port`]). Nothing is bound by the test and released
//! for a service to take, except a NATS server started again on the client port it had.

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

/// A free TCP port on 127.0.0.1 (bound, then released for the service to take: another process
/// may take it first, see [`pg_start_on_free_port`]).
fn free_port() -> u16 {
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
    if let Err(e) = pg_try(bin, args) {
        panic!("{e}");
    }
}

/// [`pg`], returning the failure (status and output) instead of panicking.
fn pg_try(bin: &str, args: &[&str]) -> Result<(), String> {
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
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{bin} {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Starts the server of data directory `data` (`pg_ctl start`, log in `data/server.log`) on a
/// free port and returns the port. A port taken by another process between being found free and
/// PostgreSQL binding it ("Address already in use" in the log) is replaced by another, a few
/// times; any other failure panics.
pub(super) fn pg_start_on_free_port(data: &Path) -> u16 {
    pg_start_on_first_free(data, std::iter::repeat_with(free_port))
}

/// [`pg_start_on_free_port`] on the first of `ports` that PostgreSQL can bind (five tried).
fn pg_start_on_first_free(data: &Path, ports: impl Iterator<Item = u16>) -> u16 {
    let log = data.join("server.log");
    let mut last = String::new();
    for port in ports.take(5) {
        configure(data, &format!("port = {port}"));
        let logged_before = std::fs::read_to_string(&log).map_or(0, |l| l.len());
        let started = pg_try(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                &START_WAIT.as_secs().to_string(),
                "start",
            ],
        );
        match started {
            Ok(()) => return port,
            Err(e) => {
                let logged = std::fs::read_to_string(&log).unwrap_or_default();
                let this_time = logged.get(logged_before..).unwrap_or_default();
                assert!(
                    this_time.contains("Address already in use"),
                    "{e}\n{}: {this_time}",
                    log.display()
                );
                last = e;
            }
        }
    }
    panic!("PostgreSQL found every port it tried taken: {last}");
}

/// `initdb` of a new cluster in `dir`: superuser `postgres`, trust authentication, no fsync of
/// the new files (a test's cluster).
pub(super) fn initdb(dir: &Path) {
    pg(
        "initdb",
        &[
            "-D",
            &dir.display().to_string(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--no-instructions",
        ],
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
        let mut pair = PgPair { dir, ports: [0, 0] };
        let (primary, standby) = (pair.data(0), pair.data(1));
        let sockets = pair.dir.path().display().to_string();
        initdb(&primary);
        configure(
            &primary,
            &format!(
                "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\n\
                 wal_level = replica\nmax_wal_senders = 4\nwal_keep_size = '64MB'\n\
                 synchronous_standby_names = '*'\nsynchronous_commit = on\n\
                 max_connections = 100\nshared_buffers = '32MB'"
            ),
        );
        pair.ports[0] = pg_start_on_free_port(&primary);
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
        configure(&standby, "synchronous_standby_names = ''\nhot_standby = on");
        pair.ports[1] = pg_start_on_free_port(&standby);
        pair
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

/// The ports a `nats-server` listens on, from its ports file.
#[derive(Debug, Clone, Copy)]
pub struct NatsPorts {
    pub client: u16,
    pub monitor: Option<u16>,
    pub cluster: Option<u16>,
}

/// Starts [`NATS_SERVER`] on 127.0.0.1 with `args` (`-p -1` lets it pick its client port) and
/// returns it with the ports it listens on, read from the ports file it writes into `dir` once
/// it listens (`--ports_file_dir`). Panics if it exits first (a port given in `args` was taken,
/// say) or does not listen within [`START_WAIT`].
pub fn spawn_nats(dir: &Path, args: &[String]) -> (Child, NatsPorts) {
    require(&[PathBuf::from(NATS_SERVER)], "nats-server");
    let mut child = Command::new(NATS_SERVER)
        .args(["-a", "127.0.0.1", "--ports_file_dir"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {NATS_SERVER}: {e}"));
    let file = dir.join(format!("nats-server_{}.ports", child.id()));
    let deadline = Instant::now() + START_WAIT;
    loop {
        // Written whole once every listener is up; a partial read does not parse yet.
        let ports = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        if let Some(ports) = ports {
            let port = |key: &str| -> Option<u16> {
                ports[key][0].as_str()?.rsplit(':').next()?.parse().ok()
            };
            if let Some(client) = port("nats") {
                let got = NatsPorts {
                    client,
                    monitor: port("monitoring"),
                    cluster: port("cluster"),
                };
                return (child, got);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{NATS_SERVER} {args:?} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{NATS_SERVER} {args:?} did not listen within {START_WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The name of the connections Portrait's coherence opens to find the first listed NATS server
/// that answers (`portrait_server::coherence::PROBE_NAME`): short-lived, not a node's own.
const PROBE_NAME: &str = "portrait-coherence-probe";
/// The name of a node's coherence connection.
const COHERENCE_NAME: &str = "portrait-coherence";

/// One server of a [`NatsCluster`].
struct NatsServer {
    child: Child,
    monitor: u16,
    cluster: u16,
}

/// Three NATS servers routed into one cluster. Dropping it kills them.
pub struct NatsCluster {
    /// Their ports files.
    dir: tempfile::TempDir,
    servers: Vec<Option<NatsServer>>,
    /// Each server's client port, kept when it is started again (the nodes list them).
    ports: Vec<u16>,
}

impl NatsCluster {
    /// Starts three servers, each routed to those started before it (the cluster tells each
    /// about the others), and waits until each has routes to the two others.
    pub async fn start() -> NatsCluster {
        let mut cluster = NatsCluster {
            dir: tempfile::tempdir().expect("a temp dir"),
            servers: Vec::new(),
            ports: Vec::new(),
        };
        for _ in 0..3 {
            // Pushed as each starts, so that a failure part-way kills those already running.
            let (server, port) = cluster.spawn(None);
            cluster.servers.push(Some(server));
            cluster.ports.push(port);
        }
        cluster.until_routed(START_WAIT).await;
        cluster
    }

    /// Starts a server on `port` (a free one if `None`) with routes to the running ones.
    fn spawn(&self, port: Option<u16>) -> (NatsServer, u16) {
        let routes: Vec<String> = self
            .servers
            .iter()
            .flatten()
            .map(|s| format!("nats://127.0.0.1:{}", s.cluster))
            .collect();
        let mut args: Vec<String> = [
            "-p",
            &port.map_or("-1".to_owned(), |p| p.to_string()),
            "-m",
            "-1",
            "--cluster_name",
            "portrait-ha",
            "--cluster",
            "nats://127.0.0.1:-1",
        ]
        .map(str::to_owned)
        .to_vec();
        if !routes.is_empty() {
            args.extend(["--routes".to_owned(), routes.join(",")]);
        }
        let (child, ports) = spawn_nats(self.dir.path(), &args);
        let server = NatsServer {
            child,
            monitor: ports.monitor.expect("a monitoring port"),
            cluster: ports.cluster.expect("a cluster port"),
        };
        (server, ports.client)
    }

    /// Waits until every running server has routes to every other running one.
    async fn until_routed(&self, within: Duration) {
        let running = self.servers.iter().flatten().count() as u64;
        let deadline = Instant::now() + within;
        for n in 0..self.servers.len() {
            if self.servers[n].is_none() {
                continue;
            }
            loop {
                let routes = self.monitor(n, "routez").await;
                if routes.and_then(|r| r["num_routes"].as_u64()) == Some(running - 1) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "NATS server {n} has no routes to the {} others within {within:?}",
                    running - 1
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// `nats://127.0.0.1:P1,nats://127.0.0.1:P2,nats://127.0.0.1:P3`, every server in order,
    /// killed ones included.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
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

    /// Of each server still running (`None` for a killed one), its client connections whose
    /// name `counts`.
    async fn connections(&self, counts: impl Fn(&str) -> bool) -> Vec<Option<u64>> {
        let mut got = Vec::new();
        for n in 0..self.servers.len() {
            let connz = self.monitor(n, "connz?limit=4096").await;
            got.push(connz.and_then(|c| {
                let list = c["connections"].as_array()?;
                let named = |c: &&serde_json::Value| counts(c["name"].as_str().unwrap_or(""));
                Some(list.iter().filter(named).count() as u64)
            }));
        }
        got
    }

    /// Client connections of each server still running (`None` for a killed one), the
    /// coherence probes' left out (they come and go every second).
    pub async fn clients(&self) -> Vec<Option<u64>> {
        self.connections(|name| name != PROBE_NAME).await
    }

    /// The nodes' coherence connections on each server still running.
    pub async fn coherence_clients(&self) -> Vec<Option<u64>> {
        self.connections(|name| name == COHERENCE_NAME).await
    }

    /// SIGKILLs server `n`.
    pub fn kill(&mut self, n: usize) {
        let mut server = self.servers[n].take().expect("the server is running");
        let _ = server.child.kill();
        let _ = server.child.wait();
    }

    /// Starts the killed server `n` again on its client port, routed to the others, and waits
    /// until the running servers are routed together again.
    pub async fn restart(&mut self, n: usize) {
        assert!(self.servers[n].is_none(), "server {n} is running");
        let (server, _) = self.spawn(Some(self.ports[n]));
        self.servers[n] = Some(server);
        self.until_routed(START_WAIT).await;
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

/// A port taken between being found free and PostgreSQL binding it is replaced by another.
#[test]
fn a_postgres_port_taken_meanwhile_is_replaced_by_another() {
    require(
        &["initdb", "pg_ctl", "postgres"].map(|b| Path::new(PG_BIN).join(b)),
        "postgresql-15",
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    if as_root() {
        let ok = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {} to the postgres user", dir.path().display());
    }
    let data = dir.path().join("data");
    initdb(&data);
    configure(
        &data,
        &format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off",
            dir.path().display()
        ),
    );
    // Another process took the first port found free.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let taken_port = taken.local_addr().unwrap().port();
    let port = pg_start_on_first_free(
        &data,
        std::iter::once(taken_port).chain(std::iter::repeat_with(free_port)),
    );
    let answered = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    if let Some(pid) = postmaster_pid(&data) {
        kill_group(pid);
    }
    assert_ne!(port, taken_port, "started on another port");
    assert!(answered, "PostgreSQL listens on {port}");
}
