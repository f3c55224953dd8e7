#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
pub mod config;
mod credentials;
mod driver;
pub mod error;
mod interpolate;
mod migrate;
mod observe;
mod pool;
mod random;
mod redact;
mod registries;
mod registry;
pub mod replication;
mod retry;
mod schema;
mod server;
mod session;
mod stats;
pub mod testing;
mod topology;
pub mod url;

pub use config::{
    Backoff, Config, DbConfig, DbSection, Fallback, Isolation, MigrationsConfig, Pooler,
    RetryConfig, RoutingConfig, SessionConfig, SqliteOptions,
};
pub use credentials::{BoxError, Credential, PasswordFuture, PasswordProvider};
pub use error::{ConnectFailure, Error, OrNotFound, Result};
pub use migrate::{MigrationState, MigrationStatus, Migrations};
pub use registries::{DEFAULT_NAME, RegistriesBuilder, SqlConnectionRegistries};
pub use registry::{SessionOptions, SqlConnectionRegistry};
pub use schema::RegistryBuilder;
pub use session::{Session, SqlxConnection};
#[cfg(feature = "macros")]
pub use sqlreg_macros::test;
pub use stats::{HostStats, PoolStats};
pub use url::{Backend, DbUrl, SqliteTarget, TargetSessionAttrs, UrlConfig, UrlParts};
