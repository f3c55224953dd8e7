//! The quickstart: a core-lib style application on embedded SQLite.
//!
//! `cargo run --example quickstart` — no server, no environment variables.
//! A `users` entity, a data-access struct holding the registry, and a service
//! over it that creates, reads, updates and deletes users.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sqlreg::{Config, OrNotFound, SqlConnectionRegistry};

mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// core-lib's `UserDataAccess`: every method is one session, committed when
/// it returns `Ok` and rolled back when it returns `Err`.
struct UserDataAccess {
    db: SqlConnectionRegistry,
}

impl UserDataAccess {
    async fn create(&self, email: &str, name: &str) -> sqlreg::Result<user::Model> {
        self.db
            .session(async |s| {
                let user = user::ActiveModel {
                    email: Set(email.to_owned()),
                    name: Set(name.to_owned()),
                    ..Default::default()
                };
                Ok(user.insert(s).await?)
            })
            .await
    }

    async fn get(&self, id: i32) -> sqlreg::Result<user::Model> {
        self.db
            .session(async |s| {
                user::Entity::find_by_id(id)
                    .one(s)
                    .await?
                    .or_not_found(format_args!("user {id}"))
            })
            .await
    }

    async fn rename(&self, id: i32, name: &str) -> sqlreg::Result<user::Model> {
        self.db
            .session(async |s| {
                let found = user::Entity::find_by_id(id)
                    .one(s)
                    .await?
                    .or_not_found(format_args!("user {id}"))?;
                let mut user: user::ActiveModel = found.into();
                user.name = Set(name.to_owned());
                Ok(user.update(s).await?)
            })
            .await
    }

    async fn delete(&self, id: i32) -> sqlreg::Result<()> {
        self.db
            .session(async |s| {
                let deleted = user::Entity::delete_by_id(id).exec(s).await?;
                if deleted.rows_affected == 0 {
                    return Err(sqlreg::Error::NotFound(format!("user {id}")));
                }
                Ok(())
            })
            .await
    }
}

/// The application's service layer, built from the config like core-lib's `CoreLib`.
struct UserService {
    users: UserDataAccess,
}

impl UserService {
    async fn from_config(config: &Config) -> sqlreg::Result<Self> {
        let db = SqlConnectionRegistry::builder(config.at("core_lib.db")?)
            .entity(user::Entity)
            .connect()
            .await?;
        Ok(Self {
            users: UserDataAccess { db },
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.yaml");
    let config = Config::from_yaml_file(path)?;
    let service = UserService::from_config(&config).await?;
    println!("connected to {}", service.users.db.url());

    let ada = service.users.create("ada@example.com", "Ada").await?;
    let alan = service.users.create("alan@example.com", "Alan").await?;
    println!("created {ada:?}");
    println!("created {alan:?}");

    println!("read    {:?}", service.users.get(ada.id).await?);
    println!(
        "renamed {:?}",
        service.users.rename(alan.id, "Alan Turing").await?
    );

    match service.users.create("ada@example.com", "Ada again").await {
        Err(err) => println!("duplicate email -> {err} (HTTP {})", err.status_code()),
        Ok(user) => return Err(format!("duplicate email was accepted: {user:?}").into()),
    }

    service.users.delete(ada.id).await?;
    println!("deleted user {}", ada.id);
    match service.users.get(ada.id).await {
        Err(err) => println!("read deleted user -> {err} (HTTP {})", err.status_code()),
        Ok(user) => return Err(format!("deleted user still there: {user:?}").into()),
    }
    println!("pool: {:?}", service.users.db.stats());
    Ok(())
}
