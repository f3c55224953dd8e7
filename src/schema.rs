//! `create_db`'s second half: the tables of the entities the application
//! registered, created if missing — running it twice changes nothing.

use sea_orm::sea_query::{IndexCreateStatement, TableCreateStatement};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Schema};

use crate::config::DbConfig;
use crate::error::Result;
use crate::migrate::Migrations;
use crate::registry::SqlConnectionRegistry;

/// The DDL of one entity for the backend the registry connected to.
type EntityDdl =
    Box<dyn Fn(DbBackend) -> (TableCreateStatement, Vec<IndexCreateStatement>) + Send + Sync>;

/// Builds a [`SqlConnectionRegistry`] whose `create_db` also creates tables.
///
/// ```no_run
/// # mod user {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "users")]
/// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub name: String }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # async fn run(config: sqlreg::DbConfig) -> sqlreg::Result<()> {
/// let db = sqlreg::SqlConnectionRegistry::builder(config)
///     .entity(user::Entity)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct RegistryBuilder {
    config: DbConfig,
    entities: Vec<EntityDdl>,
    #[cfg(feature = "sea-orm-migration")]
    sea_orm_up: Option<crate::migrate::sea_orm::SeaOrmUp>,
}

impl RegistryBuilder {
    pub(crate) fn new(config: DbConfig) -> Self {
        Self {
            config,
            entities: Vec::new(),
            #[cfg(feature = "sea-orm-migration")]
            sea_orm_up: None,
        }
    }

    /// Registers a sea-orm-migration migrator as the owner of the schema,
    /// instead of a migrations directory: `create_db` then leaves the
    /// entities' tables to it, and with `migrations: {auto: true}` its
    /// pending migrations are applied on connect (through [`engine`](SqlConnectionRegistry::engine),
    /// under the migration lock: the pool needs room for two connections).
    #[cfg(feature = "sea-orm-migration")]
    pub fn sea_orm_migrator<M: sea_orm_migration::MigratorTrait + 'static>(mut self) -> Self {
        self.sea_orm_up = Some(crate::migrate::sea_orm::up_all::<M>);
        self
    }

    /// Whether migrations (a directory or a sea-orm migrator) own the schema.
    fn migrations_own_schema(&self) -> bool {
        #[cfg(feature = "sea-orm-migration")]
        if self.sea_orm_up.is_some() {
            return true;
        }
        self.config.migrations.is_some()
    }

    /// Applies the pending migrations: the sea-orm migrator's if one is
    /// registered, else the section's directory.
    async fn migrate(&self, registry: &SqlConnectionRegistry) -> Result<()> {
        #[cfg(feature = "sea-orm-migration")]
        if let Some(up) = self.sea_orm_up {
            return crate::migrate::sea_orm::apply(registry, up).await;
        }
        match Migrations::from_config(registry.config())? {
            Some(migrations) => migrations.up(registry, None).await.map(drop),
            None => Ok(()),
        }
    }

    /// Registers the [`PasswordProvider`](crate::PasswordProvider) that gives
    /// the password of new connections — an RDS IAM token, a Vault dynamic
    /// secret — instead of `url.password` or `url.password_file`; see
    /// [`DbConfig::password_provider`](crate::DbConfig::password_provider).
    /// Setting both is an [`Error::Config`](crate::Error::Config) at
    /// [`connect`](Self::connect).
    ///
    /// ```no_run
    /// # async fn run(config: sqlreg::DbConfig) -> sqlreg::Result<()> {
    /// use std::time::Duration;
    /// use sqlreg::{Credential, DbUrl};
    ///
    /// let db = sqlreg::SqlConnectionRegistry::builder(config)
    ///     .password_provider(|host: &DbUrl| {
    ///         let user = host.username().unwrap_or_default().to_owned();
    ///         async move {
    ///             let token = format!("a token for {user}"); // ask the secret store
    ///             Ok(Credential::new(token, Duration::from_secs(600)))
    ///         }
    ///     })
    ///     .connect()
    ///     .await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn password_provider(mut self, provider: impl crate::PasswordProvider) -> Self {
        self.config = self.config.password_provider(provider);
        self
    }

    /// Registers an entity whose table `create_db` creates when it is missing.
    /// Register tables that others reference first.
    pub fn entity<E: EntityTrait>(mut self, entity: E) -> Self {
        self.entities.push(Box::new(move |backend| {
            let schema = Schema::new(backend);
            let mut table = schema.create_table_from_entity(entity);
            table.if_not_exists();
            let mut indexes = schema.create_index_from_entity(entity);
            for index in &mut indexes {
                index.if_not_exists();
            }
            (table, indexes)
        }));
        self
    }

    /// Connects (see [`SqlConnectionRegistry::connect`]) and, when
    /// `create_db` is on, creates the registered tables that do not exist —
    /// unless the section has a `migrations` block, which then owns the
    /// schema: with `auto: true` its pending migrations are applied here.
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::connect`], plus [`Error::Query`](crate::Error::Query)
    /// when a table cannot be created and [`Error::Migration`](crate::Error::Migration)
    /// when a migration fails.
    pub async fn connect(self) -> Result<SqlConnectionRegistry> {
        let create_tables = self.config.create_db && !self.migrations_own_schema();
        let auto_migrate = self.config.migrations.as_ref().is_some_and(|m| m.auto);
        let registry = SqlConnectionRegistry::open(self.config.clone()).await?;
        if auto_migrate && let Err(err) = self.migrate(&registry).await {
            registry.close().await;
            return Err(err);
        }
        if create_tables && !self.entities.is_empty() {
            // On a session's connection, so the engine's pool stays unopened.
            let session = registry.own_connection().await?;
            let backend = session.get_database_backend();
            for ddl in &self.entities {
                let (table, indexes) = ddl(backend);
                session.execute(&table).await?;
                for index in &indexes {
                    session.execute(index).await?;
                }
            }
            session.commit().await?;
            tracing::info!(tables = self.entities.len(), "registered tables ensured");
        }
        Ok(registry)
    }
}
