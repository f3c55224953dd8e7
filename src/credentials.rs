//! Where a new connection's password comes from when it is not written in
//! the URL: `url.password_file`, read for each new connection, or a
//! [`PasswordProvider`] registered in code, whose answer is cached for as
//! long as it says and shared by every connection of the registry.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::url::DbUrl;

/// The error a [`PasswordProvider`] fails with: any error type, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`PasswordProvider::password`] returns: a boxed future, so the
/// trait stays object safe.
pub type PasswordFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credential, BoxError>> + Send + 'a>>;

/// A password and until when new connections may use it.
///
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct Credential {
    password: String,
    expires: Instant,
}

impl Credential {
    /// `password`, used for new connections during the next `valid_for`
    /// (an RDS IAM token: 15 minutes, less a margin; a Vault lease: its
    /// `lease_duration`, less a margin). `Duration::ZERO` asks for every new
    /// connection.
    #[must_use]
    pub fn new(password: impl Into<String>, valid_for: Duration) -> Self {
        let now = Instant::now();
        Self {
            password: password.into(),
            expires: now.checked_add(valid_for).unwrap_or(now + YEARS),
        }
    }

    /// `password`, used for new connections until `expires`.
    #[must_use]
    pub fn until(password: impl Into<String>, expires: Instant) -> Self {
        Self {
            password: password.into(),
            expires,
        }
    }

    /// The password.
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }

    /// When new connections stop using it and ask the provider again.
    #[must_use]
    pub fn expires(&self) -> Instant {
        self.expires
    }
}

/// Far enough ahead to mean "never" where `Instant` cannot reach `MAX`.
const YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("password", &"***")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Gives the password for new connections, for credentials that rotate: an
/// AWS RDS IAM token, a Vault dynamic secret. Register it with
/// [`RegistryBuilder::password_provider`](crate::RegistryBuilder::password_provider)
/// (or [`DbConfig::password_provider`]).
///
/// It is asked when a new connection needs a password and the last one it
/// gave has expired ([`Credential::expires`]); connections opening at the
/// same time share one call, and connections already open keep working
/// until they are recycled. It is asked per host — `host` is the one URL
/// of the server being connected to (user, host, port, database; no
/// password) — so a token signed for one host is never sent to another.
/// A call that does not answer within `session.connect_timeout` fails.
///
/// A closure `Fn(&DbUrl) -> impl Future<Output = Result<Credential, BoxError>>`
/// is a provider; so is any type implementing this trait:
///
/// ```
/// use std::time::Duration;
/// use sqlreg::{Credential, DbUrl, PasswordFuture, PasswordProvider};
///
/// struct Vault { /* a client */ }
///
/// impl PasswordProvider for Vault {
///     fn password<'a>(&'a self, host: &'a DbUrl) -> PasswordFuture<'a> {
///         Box::pin(async move {
///             let lease = format!("secret for {}", host.username().unwrap_or_default());
///             Ok(Credential::new(lease, Duration::from_secs(300)))
///         })
///     }
/// }
/// ```
pub trait PasswordProvider: Send + Sync + 'static {
    /// The password for new connections to `host`, and how long it may be
    /// used for them.
    ///
    /// # Errors
    ///
    /// Any error; connecting then fails with
    /// [`Error::Connect`](crate::Error::Connect)
    /// ([`ConnectFailure::PasswordProvider`]) carrying its message, which
    /// must not contain a secret.
    fn password<'a>(&'a self, host: &'a DbUrl) -> PasswordFuture<'a>;
}

impl<F, Fut> PasswordProvider for F
where
    F: Fn(&DbUrl) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credential, BoxError>> + Send + 'static,
{
    fn password<'a>(&'a self, host: &'a DbUrl) -> PasswordFuture<'a> {
        Box::pin(self(host))
    }
}

/// A registered provider with its answers, one per host, shared by every
/// clone of the config it is in.
#[derive(Clone)]
pub(crate) struct SharedProvider(Arc<ProviderCache>);

struct ProviderCache {
    provider: Box<dyn PasswordProvider>,
    hosts: Mutex<HashMap<String, Arc<HostEntry>>>,
}

/// One host's cached answer. The async lock makes callers that find it
/// expired wait for the one call in flight instead of calling too.
#[derive(Default)]
struct HostEntry {
    /// Calls finished so far: a caller that saw another call finish while
    /// it waited takes that call's answer, failure included.
    calls: AtomicU64,
    state: tokio::sync::Mutex<HostState>,
}

#[derive(Default)]
struct HostState {
    cached: Option<Credential>,
    /// The last call's failure, until a call succeeds.
    failed: Option<String>,
}

impl SharedProvider {
    pub(crate) fn new(provider: impl PasswordProvider) -> Self {
        Self(Arc::new(ProviderCache {
            provider: Box::new(provider),
            hosts: Mutex::new(HashMap::new()),
        }))
    }

    /// The password for a new connection to `url`'s (first) host: the
    /// cached one while it is valid, else the provider's answer, within
    /// `timeout`. The error is the provider's message, never a password.
    async fn password(&self, url: &DbUrl, timeout: Duration) -> Result<String, String> {
        let key = format!(
            "{}@{}:{}",
            url.username().unwrap_or_default(),
            url.host().unwrap_or_default(),
            url.port().unwrap_or_default()
        );
        let entry = {
            let mut hosts = self.0.hosts.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(hosts.entry(key).or_default())
        };
        let seen = entry.calls.load(Ordering::Acquire);
        let mut state = entry.state.lock().await;
        if let Some(cached) = &state.cached
            && cached.expires > Instant::now()
        {
            return Ok(cached.password.clone());
        }
        if entry.calls.load(Ordering::Acquire) != seen
            && let Some(failed) = &state.failed
        {
            return Err(failed.clone());
        }
        let answer = tokio::time::timeout(timeout, self.0.provider.password(url)).await;
        entry.calls.fetch_add(1, Ordering::AcqRel);
        match answer {
            Ok(Ok(credential)) => {
                let password = credential.password.clone();
                state.cached = Some(credential);
                state.failed = None;
                Ok(password)
            }
            Ok(Err(err)) => {
                // Should a provider echo the password it last gave.
                let old = state.cached.as_ref().map_or("", |c| c.password.as_str());
                let message = crate::redact::scrub_password(&err.to_string(), &[old]);
                state.failed = Some(message.clone());
                Err(message)
            }
            Err(_) => {
                let message = format!("no answer within session.connect_timeout ({timeout:?})");
                state.failed = Some(message.clone());
                Err(message)
            }
        }
    }
}

impl PartialEq for SharedProvider {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SharedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordProvider(..)")
    }
}

/// Where a URL's password comes from for each new connection, when it is
/// not written in the URL.
#[derive(Clone)]
pub(crate) struct PasswordSource {
    url: DbUrl,
    from: Origin,
}

#[derive(Clone)]
enum Origin {
    File,
    Provider(SharedProvider, Duration),
}

impl PasswordSource {
    /// `url.password_file` when the URL has one; else the config's
    /// provider when the URL has no password of its own; else none.
    pub(crate) fn of(url: &DbUrl, config: &DbConfig) -> Option<Self> {
        let from = if url.password_file().is_some() {
            Origin::File
        } else if url.password().is_none()
            && let Some(provider) = config.provider()
        {
            Origin::Provider(provider.clone(), config.session.connect_timeout)
        } else {
            return None;
        };
        Some(Self {
            url: url.clone(),
            from,
        })
    }

    /// The password now.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] with [`ConnectFailure::PasswordFile`] naming an
    /// unreadable file, or [`ConnectFailure::PasswordProvider`] with the
    /// provider's message.
    pub(crate) async fn password(&self) -> Result<String> {
        match &self.from {
            Origin::File => Ok(self.url.read_password_file()?.unwrap_or_default()),
            Origin::Provider(provider, timeout) => provider
                .password(&self.url, *timeout)
                .await
                .map_err(|message| Error::Connect {
                    url: self.url.redacted(),
                    reason: ConnectFailure::PasswordProvider,
                    detail: format!("the password provider failed: {message}"),
                }),
        }
    }
}

/// The password for a new connection to `url` when it comes from a file or
/// the provider; `None` when the URL's own (or none) is used.
///
/// # Errors
///
/// As [`PasswordSource::password`].
pub(crate) async fn password_now(url: &DbUrl, config: &DbConfig) -> Result<Option<String>> {
    match PasswordSource::of(url, config) {
        Some(source) => source.password().await.map(Some),
        None => Ok(None),
    }
}
