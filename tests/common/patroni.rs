//! The test script's Patroni cluster (`scripts/db/patroni.sh`): three
//! PostgreSQL nodes under Patroni in synchronous mode, etcd, and HAProxy
//! with a primary and a replica port. One cluster per test run, shared by
//! the tests of `tests/patroni.rs`: each holds [`Cluster::lock`] for its
//! whole run (crashes and switchovers must not overlap) and leaves the
//! cluster healthy again (a leader, a synchronous standby and a third node
//! streaming), as it found it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::sync::{Mutex, MutexGuard};

/// How long the cluster may take to be healthy again after a test's event.
const HEALTHY_WAIT: Duration = Duration::from_secs(120);

pub struct Cluster {
    ctl: PathBuf,
    /// `(name, PostgreSQL port)` of pg1, pg2, pg3.
    nodes: Vec<(String, u16)>,
    haproxy: u16,
    haproxy_replica: u16,
    user: String,
    password: String,
    database: String,
}

/// One member as Patroni's REST API sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// `leader`, `sync_standby` or `replica`.
    pub role: String,
    pub state: String,
    pub port: u16,
}

static LOCK: Mutex<()> = Mutex::const_new(());

impl Cluster {
    /// The cluster, or `None` (with a `SKIPPED` note) when the test
    /// script did not start one on a developer machine; under `CI=true`
    /// that fails instead.
    pub fn get(test: &str) -> Option<Self> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let Ok(ctl) = std::env::var("SQLREG_TEST_PATRONI_CTL") else {
            assert!(
                !ci,
                "CI=true but SQLREG_TEST_PATRONI_CTL is not set: run the suite through \
                 scripts/test.sh (without SQLREG_PATRONI=off)"
            );
            eprintln!("SKIPPED {test}: no Patroni cluster (run scripts/test.sh)");
            return None;
        };
        let env = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the suite through scripts/test.sh")
            })
        };
        let names = env("SQLREG_TEST_PATRONI_NODES");
        let ports = env("SQLREG_TEST_PATRONI_PORTS");
        let nodes = names
            .split(',')
            .zip(ports.split(','))
            .map(|(name, port)| (name.to_owned(), port.parse().unwrap()))
            .collect();
        Some(Self {
            ctl: PathBuf::from(ctl),
            nodes,
            haproxy: env("SQLREG_TEST_PATRONI_HAPROXY_PORT").parse().unwrap(),
            haproxy_replica: env("SQLREG_TEST_PATRONI_HAPROXY_REPLICA_PORT")
                .parse()
                .unwrap(),
            user: env("SQLREG_TEST_USER"),
            password: env("SQLREG_TEST_PASSWORD"),
            database: env("SQLREG_TEST_DATABASE"),
        })
    }

    /// Takes the cluster for one test and waits until it is healthy.
    pub async fn lock(&self) -> MutexGuard<'static, ()> {
        let guard = LOCK.lock().await;
        self.wait_healthy().await;
        guard
    }

    fn userinfo(&self) -> String {
        format!(
            "{}:{}",
            utf8_percent_encode(&self.user, NON_ALPHANUMERIC),
            utf8_percent_encode(&self.password, NON_ALPHANUMERIC)
        )
    }

    /// `postgresql://…@127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/…?target_session_attrs=read-write`.
    pub fn multi_host_url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect();
        format!(
            "postgresql://{}@{}/{}?target_session_attrs=read-write",
            self.userinfo(),
            hosts.join(","),
            self.database
        )
    }

    /// A single-host URL of the server (or HAProxy port) on `port`.
    pub fn url(&self, port: u16) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{port}/{}",
            self.userinfo(),
            self.database
        )
    }

    /// HAProxy's port to the leader.
    pub fn haproxy_port(&self) -> u16 {
        self.haproxy
    }

    /// HAProxy's port to the replicas.
    pub fn haproxy_replica_port(&self) -> u16 {
        self.haproxy_replica
    }

    /// The nodes' PostgreSQL ports, pg1 first.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(_, port)| *port).collect()
    }

    pub fn port_of(&self, name: &str) -> u16 {
        self.nodes
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no node {name}"))
            .1
    }

    /// Every member, as Patroni's REST API of a running node reports it.
    pub async fn members(&self) -> Vec<Member> {
        let out = self.run(&["members"]).await;
        out.lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                Member {
                    name: f[0].to_owned(),
                    role: f[1].to_owned(),
                    state: f[2].to_owned(),
                    port: f[3].parse().unwrap(),
                }
            })
            .collect()
    }

    /// The leader's name and port, once there is one.
    pub async fn leader(&self) -> (String, u16) {
        self.wait_for_role("leader").await
    }

    /// The synchronous standby's name and port, once there is one.
    pub async fn sync_standby(&self) -> (String, u16) {
        self.wait_for_role("sync_standby").await
    }

    async fn wait_for_role(&self, role: &str) -> (String, u16) {
        let deadline = Instant::now() + HEALTHY_WAIT;
        loop {
            if let Ok(out) = self.try_run(&[role.replace('_', "-").as_str()]).await {
                let mut f = out.split_whitespace();
                if let (Some(name), Some(port)) = (f.next(), f.next()) {
                    return (name.to_owned(), port.parse().unwrap());
                }
            }
            assert!(Instant::now() < deadline, "the cluster has no {role}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL to the node's postmaster (Patroni restarts it in place).
    pub async fn kill_postmaster(&self, node: &str) {
        self.run(&["kill-postmaster", node]).await;
    }

    /// SIGKILL to the node's Patroni process, then to its postmaster: the
    /// leader key expires after `ttl` and the synchronous standby takes it.
    pub async fn kill_node(&self, node: &str) {
        self.run(&["kill-node", node]).await;
    }

    /// Starts a killed node's Patroni again; it rejoins as a replica.
    pub async fn start_node(&self, node: &str) {
        self.run(&["start-node", node]).await;
    }

    /// `patronictl switchover --force` to `candidate`.
    pub async fn switchover(&self, candidate: &str) {
        self.run(&["switchover", candidate]).await;
    }

    /// Waits for a leader, a synchronous standby and a third node
    /// streaming, each HAProxy port routing to the right kind of node.
    pub async fn wait_healthy(&self) {
        self.run(&["wait", &HEALTHY_WAIT.as_secs().to_string()])
            .await;
    }

    async fn run(&self, args: &[&str]) -> String {
        match self.try_run(args).await {
            Ok(out) => out,
            Err(err) => panic!("patroni-ctl {} failed:\n{err}", args.join(" ")),
        }
    }

    async fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let ctl = self.ctl.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let output = Command::new(&ctl)
                .args(&args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", ctl.display()));
            if output.status.success() {
                Ok(String::from_utf8_lossy(&output.stdout).into_owned())
            } else {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let lines: Vec<&str> = stderr.lines().collect();
                Err(format!(
                    "({}) {}",
                    output.status,
                    lines[lines.len().saturating_sub(60)..].join("\n")
                ))
            }
        })
        .await
        .unwrap()
    }
}
