//! A TCP relay on loopback between a registry and its real server that
//! counts what the client sends, so a test can see round trips the server
//! would otherwise answer silently (sqlx's release ping, a pre-ping) — and
//! that can lose a connection right after a COMMIT reached the server,
//! the one failure whose outcome the client cannot know, or hold back the
//! reply to a statement the server ran, so a test can cut it off then.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::ConnectionTrait;
use sqlreg::{DbConfig, SqlConnectionRegistry, UrlConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::TestDb;

/// Long enough for anything a pool does in the background after a release
/// (sqlx's pool pinged every returned connection within milliseconds).
pub const SETTLE: Duration = Duration::from_millis(300);

/// A registry with a pool of one connection whose traffic goes through a
/// counting relay, that connection opened and returned already.
pub async fn relayed(db: &TestDb) -> (SqlConnectionRegistry, CountingProxy) {
    let proxy = CountingProxy::start(&db.config).await;
    let mut config = proxy.route(&db.config);
    config.session.pool_size = 1;
    config.session.max_overflow = 0;
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    // Opens the one connection; a session leaves its default access as it
    // was opened (an autocommit one would not).
    let warm = registry.get().await.unwrap();
    warm.execute_unprepared("SELECT 1").await.unwrap();
    warm.commit().await.unwrap();
    tokio::time::sleep(SETTLE).await;
    (registry, proxy)
}

/// Requests the client sent while `work` ran, and after it until things settled.
pub async fn requests(proxy: &CountingProxy, work: impl AsyncFnOnce()) -> u64 {
    let before = proxy.writes();
    work().await;
    tokio::time::sleep(SETTLE).await;
    proxy.writes() - before
}

/// Relays every connection made to it to the server the config named.
pub struct CountingProxy {
    port: u16,
    sent: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    /// Armed: the next COMMIT goes to the server, its reply never back.
    cut: Arc<AtomicBool>,
    hold: Arc<Hold>,
}

/// Armed: the reply to the next request that holds `word` comes back only
/// `delay` after that request went to the server.
#[derive(Default)]
struct Hold {
    armed: Mutex<Option<(&'static str, Duration)>>,
    until: Mutex<Option<tokio::time::Instant>>,
}

impl CountingProxy {
    /// Starts relaying to `config`'s server; use [`CountingProxy::route`] to
    /// point a config at the relay.
    pub async fn start(config: &DbConfig) -> Self {
        let UrlConfig::Parts(parts) = &config.url else {
            panic!("the test config gives the URL as parts");
        };
        let server = format!(
            "{}:{}",
            parts.host.as_deref().unwrap_or("127.0.0.1"),
            parts.port.expect("a server port")
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sent, writes, cut, hold) = (
            Arc::default(),
            Arc::default(),
            Arc::default(),
            Arc::default(),
        );
        tokio::spawn(relay_all(
            listener,
            server,
            Arc::clone(&sent),
            Arc::clone(&writes),
            Arc::clone(&cut),
            Arc::clone(&hold),
        ));
        Self {
            port,
            sent,
            writes,
            cut,
            hold,
        }
    }

    /// `config` with its server replaced by this relay.
    pub fn route(&self, config: &DbConfig) -> DbConfig {
        let mut config = config.clone();
        let UrlConfig::Parts(parts) = &mut config.url else {
            panic!("the test config gives the URL as parts");
        };
        parts.host = Some("127.0.0.1".into());
        parts.port = Some(self.port);
        config
    }

    /// The next COMMIT any client sends reaches the server, which commits;
    /// then that client's connection is closed before the reply comes back.
    pub fn cut_after_next_commit(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// The next request holding `word` (ASCII, any case) reaches the
    /// server at once; its reply comes back `delay` later.
    pub fn hold_reply_to_next(&self, word: &'static str, delay: Duration) {
        *self.hold.armed.lock().unwrap() = Some((word, delay));
    }

    /// Bytes the clients sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Separate reads of client data so far: each request the client
    /// flushes (a statement, a ping, BEGIN) arrives as at least one.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

async fn relay_all(
    listener: TcpListener,
    server: String,
    sent: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    hold: Arc<Hold>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(upstream) = TcpStream::connect(&server).await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = upstream.into_split();
        // Set when this connection is being cut: replies stop here.
        let muted = Arc::new(AtomicBool::new(false));
        let replies_muted = Arc::clone(&muted);
        let replies_held = Arc::clone(&hold);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = match server_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let until = replies_held.until.lock().unwrap().take();
                if let Some(until) = until {
                    tokio::time::sleep_until(until).await;
                }
                if replies_muted.load(Ordering::SeqCst)
                    || client_write.write_all(&buffer[..n]).await.is_err()
                {
                    break;
                }
            }
        });
        let (sent, writes, cut, hold) = (
            Arc::clone(&sent),
            Arc::clone(&writes),
            Arc::clone(&cut),
            Arc::clone(&hold),
        );
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                sent.fetch_add(n as u64, Ordering::SeqCst);
                writes.fetch_add(1, Ordering::SeqCst);
                let commit = holds_commit(&buffer[..n]);
                let cutting = commit && cut.swap(false, Ordering::SeqCst);
                if cutting {
                    muted.store(true, Ordering::SeqCst);
                }
                hold.arm_for(&buffer[..n]);
                if server_write.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
                if cutting {
                    // The server commits; the client never hears of it.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
            let _ = server_write.shutdown().await;
        });
    }
}

impl Hold {
    /// Holds back the replies from now on if `request` is the one armed for.
    fn arm_for(&self, request: &[u8]) {
        let mut armed = self.armed.lock().unwrap();
        if let Some((word, delay)) = *armed
            && request
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        {
            *armed = None;
            *self.until.lock().unwrap() = Some(tokio::time::Instant::now() + delay);
        }
    }
}

/// Whether `bytes` hold the word COMMIT (not `autocommit`, not
/// `synchronous_commit`).
fn holds_commit(bytes: &[u8]) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    bytes.windows(6).enumerate().any(|(at, w)| {
        w.eq_ignore_ascii_case(b"COMMIT")
            && !at.checked_sub(1).is_some_and(|before| word(&bytes[before]))
            && !bytes.get(at + 6).is_some_and(word)
    })
}
