//! The plain side of the read benchmark (BENCHMARKS.md, `loadgen reads
//! --plain-url`): an actix-web server returning the rows of the two GraphQL
//! reads as JSON, with the same queries but no GraphQL, no authentication and
//! no permission checks. What GraphQL and its checks cost is the ratio.
//!
//! ```text
//! cargo run --release -p api --example plain_reads -- postgres://postgres@127.0.0.1:5432/bench 127.0.0.1:18090
//! ```
//!
//! - `GET /queue`: 50 open conversations, newest first, each with its contact
//!   and its newest 5 messages;
//! - `GET /conversations/{id}`: one conversation, its contact and its first
//!   20 messages.

use std::collections::HashMap;

use actix_web::{App, HttpResponse, HttpServer, web};
use entity::{ConversationStatus, contact, conversation, message};
use sea_orm::{
    ColumnTrait, Database, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

async fn queue(db: web::Data<DatabaseConnection>) -> actix_web::Result<HttpResponse> {
    let fail = actix_web::error::ErrorInternalServerError;
    let page = conversation::Entity::find()
        .filter(conversation::Column::Status.eq(ConversationStatus::Open))
        .order_by_desc(conversation::Column::CreatedAt)
        .order_by_desc(conversation::Column::Id)
        .limit(50)
        .all(db.get_ref())
        .await
        .map_err(fail)?;
    let ids: Vec<i64> = page.iter().map(|c| c.id).collect();
    let contacts: HashMap<i64, contact::Model> = contact::Entity::find()
        .filter(contact::Column::Id.is_in(page.iter().map(|c| c.contact_id)))
        .all(db.get_ref())
        .await
        .map_err(fail)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut recent: HashMap<i64, Vec<message::Model>> = HashMap::new();
    for m in domain::conversations::recent_messages(db.get_ref(), &ids, 5)
        .await
        .map_err(fail)?
    {
        recent.entry(m.conversation_id).or_default().push(m);
    }
    let rows: Vec<_> = page
        .into_iter()
        .map(|c| {
            json!({"contact": contacts.get(&c.contact_id), "recentMessages": recent.remove(&c.id).unwrap_or_default(), "conversation": c})
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

async fn one(
    db: web::Data<DatabaseConnection>,
    id: web::Path<i64>,
) -> actix_web::Result<HttpResponse> {
    let fail = actix_web::error::ErrorInternalServerError;
    let Some(c) = conversation::Entity::find_by_id(id.into_inner())
        .one(db.get_ref())
        .await
        .map_err(fail)?
    else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let contact = contact::Entity::find_by_id(c.contact_id)
        .one(db.get_ref())
        .await
        .map_err(fail)?;
    let messages = message::Entity::find()
        .filter(message::Column::ConversationId.eq(c.id))
        .order_by_asc(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id)
        .limit(20)
        .all(db.get_ref())
        .await
        .map_err(fail)?;
    Ok(HttpResponse::Ok()
        .json(json!({"conversation": c, "contact": contact, "messages": messages})))
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/bench".into());
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    // The server's default pool size, for a like-for-like comparison.
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(20).sqlx_logging(false);
    let db = web::Data::new(Database::connect(options).await?);
    HttpServer::new(move || {
        App::new()
            .app_data(db.clone())
            .route("/queue", web::get().to(queue))
            .route("/conversations/{id}", web::get().to(one))
    })
    .bind(bind)?
    .run()
    .await?;
    Ok(())
}
