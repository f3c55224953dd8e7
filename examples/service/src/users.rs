//! The users table and its CRUD handlers: each request is one sqlreg
//! session, committed when the handler's body succeeds.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use sqlreg::OrNotFound;

use crate::api_error::ApiError;
use crate::app::App;

/// A user: `{"id", "name", "email"}`; the email is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub name: String,
    #[sea_orm(unique)]
    pub email: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The body of `POST /users` and `PUT /users/{id}`.
#[derive(Deserialize)]
pub struct UserInput {
    name: String,
    email: String,
}

type Body = Result<Json<UserInput>, JsonRejection>;
type Id = Result<Path<i32>, PathRejection>;

/// `POST /users` → 201 with the new user; 409 when the email is taken.
pub async fn create(
    State(app): State<App>,
    body: Body,
) -> Result<(StatusCode, Json<Model>), ApiError> {
    let Json(input) = body?;
    let created = app
        .users
        .session(async move |s| {
            let user = ActiveModel {
                name: Set(input.name),
                email: Set(input.email),
                ..Default::default()
            };
            Ok::<_, sqlreg::Error>(user.insert(s).await?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /users/{id}` → 200, or 404.
pub async fn read(State(app): State<App>, id: Id) -> Result<Json<Model>, ApiError> {
    let Path(id) = id?;
    let user = app
        .users
        .read_session(async |s| {
            Entity::find_by_id(id)
                .one(s)
                .await?
                .or_not_found(format_args!("user {id}"))
        })
        .await?;
    Ok(Json(user))
}

/// `PUT /users/{id}` → 200 with the user as it is now; 404, or 409 when
/// the new email is taken.
pub async fn update(State(app): State<App>, id: Id, body: Body) -> Result<Json<Model>, ApiError> {
    let Path(id) = id?;
    let Json(input) = body?;
    let user = app
        .users
        .session(async move |s| {
            let found = Entity::find_by_id(id)
                .one(s)
                .await?
                .or_not_found(format_args!("user {id}"))?;
            let mut user: ActiveModel = found.into();
            user.name = Set(input.name);
            user.email = Set(input.email);
            Ok::<_, sqlreg::Error>(user.update(s).await?)
        })
        .await?;
    Ok(Json(user))
}

/// `DELETE /users/{id}` → 204, or 404.
pub async fn delete(State(app): State<App>, id: Id) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    app.users
        .session(async |s| {
            let deleted = Entity::delete_by_id(id).exec(s).await?;
            if deleted.rows_affected == 0 {
                return Err(sqlreg::Error::NotFound(format!("user {id}")));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
