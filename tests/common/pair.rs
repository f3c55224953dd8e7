//! Primary/standby pairs of their own for destructive failover tests
//! (`scripts/db/pair.sh`): a test may crash, promote, rewind or split its
//! pair without touching the shared test servers other tests run on.
//!
//! Each pair lives in a directory under `$SQLREG_TEST_DB_DIR/pairs/`, on two
//! free loopback ports, with the test script's user, password and database.
//! Dropping a pair stops both servers and removes the directory; if the test
//! process dies instead, `scripts/test.sh` stops what it left behind. A
//! script call that fails panics with the tail of the script's stderr (which
//! carries the servers' log tails). The roles swap on promotion: the port
//! getters read the pair's current roles from its directory.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// A PostgreSQL primary and its streaming hot standby (`pg_basebackup -R`,
/// asynchronous until [`PgPair::sync`]).
pub struct PgPair(Pair);

/// A MariaDB primary and its read-only GTID replica.
pub struct MariaPair(Pair);

impl PgPair {
    /// Starts a pair for `test`, or returns `None` (with a `SKIPPED` note)
    /// when the test script's environment is missing on a developer machine;
    /// under `CI=true` that fails instead, as does a pair that cannot start.
    pub async fn start(test: &str) -> Option<Self> {
        Pair::start("pg", "start-pg", test).await.map(Self)
    }

    /// A `postgres://` URL of the server on `port`, password percent-encoded.
    pub fn url(&self, port: u16) -> String {
        self.0.url("postgres", port)
    }

    /// `postgresql://…@127.0.0.1:P1,127.0.0.1:P2/…?target_session_attrs=read-write`,
    /// the first primary's port first (a user's URL does not change on failover).
    pub fn multi_host_url(&self) -> String {
        format!(
            "{}?target_session_attrs=read-write",
            self.0.multi_host_url("postgresql")
        )
    }

    /// Starts a PgBouncer in transaction mode in front of each server (one
    /// pooler per host; it stays up when its server crashes) and returns
    /// their ports: the first primary's pooler first.
    pub async fn poolers(&self) -> (u16, u16) {
        let (a, b) = free_ports();
        self.0
            .run(&["pg-poolers", &a.to_string(), &b.to_string()])
            .await;
        (a, b)
    }

    /// [`multi_host_url`](Self::multi_host_url) through the poolers on
    /// `ports` instead of the servers themselves.
    pub fn multi_host_url_through(&self, ports: (u16, u16)) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{},127.0.0.1:{}/{}?target_session_attrs=read-write",
            self.0.userinfo(),
            ports.0,
            ports.1,
            self.0.database
        )
    }

    /// The port of the current primary.
    pub fn primary_port(&self) -> u16 {
        self.0.role_port("primary")
    }

    /// The port of the current standby (after a promotion: the old primary,
    /// whether stopped, rewound into a standby, or split off as a second
    /// primary).
    pub fn standby_port(&self) -> u16 {
        self.0.role_port("standby")
    }

    /// Switches the current primary to synchronous replication to the
    /// current standby (returns once `pg_stat_replication` says `sync`), or
    /// back to asynchronous.
    pub async fn sync(&self, on: bool) {
        self.0
            .run(&["pg-sync", if on { "on" } else { "off" }])
            .await;
    }

    /// Stops the standby cleanly (`on: false`) or starts it again; the
    /// roles stay as they are.
    pub async fn standby(&self, on: bool) {
        self.0
            .run(&["standby", if on { "start" } else { "stop" }])
            .await;
    }

    /// Crashes the current primary (`pg_ctl stop -m immediate`).
    pub async fn stop_primary(&self) {
        self.0.run(&["pg-stop-primary"]).await;
    }

    /// Promotes the standby (`pg_ctl promote`) and returns once it accepts
    /// writes, on its new timeline, without synchronous_standby_names; the
    /// roles swap.
    pub async fn promote(&self) {
        self.0.run(&["pg-promote"]).await;
    }

    /// Brings the old primary back as operators do: `pg_rewind` against the
    /// new primary, then a standby of it; returns once it streams.
    pub async fn rewind(&self) {
        self.0.run(&["pg-rewind"]).await;
    }

    /// Starts the stopped old primary as a primary again (no rewind, no
    /// standby.signal, no synchronous_standby_names, so its writes commit):
    /// two read-write servers on different timelines.
    pub async fn split_brain(&self) {
        self.0.run(&["pg-split-brain"]).await;
    }
}

impl MariaPair {
    /// Starts a pair for `test`, as [`PgPair::start`].
    pub async fn start(test: &str) -> Option<Self> {
        Pair::start("my", "start-mariadb", test).await.map(Self)
    }

    /// A `mysql://` URL of the server on `port`, password percent-encoded.
    pub fn url(&self, port: u16) -> String {
        self.0.url("mysql", port)
    }

    /// `mysql://…@127.0.0.1:P1,127.0.0.1:P2/…`, the first primary's port first.
    pub fn multi_host_url(&self) -> String {
        self.0.multi_host_url("mysql")
    }

    /// The port of the current primary.
    pub fn primary_port(&self) -> u16 {
        self.0.role_port("primary")
    }

    /// The port of the current replica (after a promotion: the old primary).
    pub fn standby_port(&self) -> u16 {
        self.0.role_port("standby")
    }

    /// Crashes the current primary (SIGKILL).
    pub async fn stop_primary(&self) {
        self.0.run(&["mariadb-stop-primary"]).await;
    }

    /// Promotes the replica once it has applied what it received (`STOP
    /// SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0`); the roles swap.
    pub async fn promote(&self) {
        self.0.run(&["mariadb-promote"]).await;
    }
}

/// One pair's directory and the credentials its servers share with the
/// test script's servers.
struct Pair {
    dir: PathBuf,
    user: String,
    password: String,
    database: String,
}

/// Attempts at a start: another process may take a free port between our
/// probe and the server's bind.
const START_ATTEMPTS: usize = 3;

impl Pair {
    async fn start(prefix: &str, command: &'static str, test: &str) -> Option<Self> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let Some(db_dir) = std::env::var_os("SQLREG_TEST_DB_DIR") else {
            assert!(
                !ci,
                "CI=true but SQLREG_TEST_DB_DIR is not set: run the suite through scripts/test.sh"
            );
            eprintln!(
                "SKIPPED {test}: no SQLREG_TEST_DB_DIR for its own server pair (run scripts/test.sh)"
            );
            return None;
        };
        let env = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the suite through scripts/test.sh")
            })
        };
        let (user, password, database) = (
            env("SQLREG_TEST_USER"),
            env("SQLREG_TEST_PASSWORD"),
            env("SQLREG_TEST_DATABASE"),
        );
        let parent = Path::new(&db_dir).join("pairs");
        std::fs::create_dir_all(&parent).unwrap();
        // The servers run as the postgres/mysql users.
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let pair = Pair {
                // Short: the servers' unix sockets live inside.
                dir: parent.join(super::unique_name(prefix)),
                user: user.clone(),
                password: password.clone(),
                database: database.clone(),
            };
            let (first, second) = free_ports();
            let args = vec![
                command.to_owned(),
                pair.dir.display().to_string(),
                first.to_string(),
                second.to_string(),
            ];
            match tokio::task::spawn_blocking(move || script(&args))
                .await
                .unwrap()
            {
                Ok(()) => return Some(pair),
                // Dropping `pair` stops whatever did start.
                Err(stderr) if stderr.contains("already in use") => failure = stderr,
                Err(stderr) => panic!("{command} failed for {test}:\n{stderr}"),
            }
        }
        panic!("{command} failed for {test} {START_ATTEMPTS} times:\n{failure}");
    }

    /// Runs a pair script command on this pair, off the async workers (a
    /// failover test's other tasks keep running meanwhile).
    async fn run(&self, command: &[&str]) {
        let mut args: Vec<String> = vec![command[0].to_owned(), self.dir.display().to_string()];
        args.extend(command[1..].iter().map(|arg| (*arg).to_owned()));
        let what = command.join(" ");
        if let Err(stderr) = tokio::task::spawn_blocking(move || script(&args))
            .await
            .unwrap()
        {
            panic!("pair script `{what}` failed:\n{stderr}");
        }
    }

    fn role_port(&self, role: &str) -> u16 {
        let node = read_trimmed(&self.dir.join(role));
        read_trimmed(&self.dir.join(format!("{node}.port")))
            .parse()
            .unwrap()
    }

    fn userinfo(&self) -> String {
        format!(
            "{}:{}",
            utf8_percent_encode(&self.user, NON_ALPHANUMERIC),
            utf8_percent_encode(&self.password, NON_ALPHANUMERIC)
        )
    }

    fn url(&self, scheme: &str, port: u16) -> String {
        format!(
            "{scheme}://{}@127.0.0.1:{port}/{}",
            self.userinfo(),
            self.database
        )
    }

    /// Both servers in the order they were started (`a`, then `b`).
    fn multi_host_url(&self, scheme: &str) -> String {
        let port = |node: &str| read_trimmed(&self.dir.join(format!("{node}.port")));
        format!(
            "{scheme}://{}@127.0.0.1:{},127.0.0.1:{}/{}",
            self.userinfo(),
            port("a"),
            port("b"),
            self.database
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let args = vec!["stop".to_owned(), self.dir.display().to_string()];
        if let Err(stderr) = script(&args) {
            // No panic in a drop (the test may be unwinding already); the
            // test script stops leftover pairs when the run ends.
            eprintln!(
                "stopping the pair in {} failed:\n{stderr}",
                self.dir.display()
            );
        }
    }
}

/// Two distinct loopback ports nothing listens on right now.
fn free_ports() -> (u16, u16) {
    let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    (
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    )
}

/// Runs `bash scripts/db/pair.sh ARGS…`; on failure, the tail of its stderr.
fn script(args: &[String]) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/db/pair.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(60)..].join("\n");
    Err(format!("({}) {tail}", output.status))
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .trim()
        .to_owned()
}
