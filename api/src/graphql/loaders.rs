//! DataLoaders: children of a page are fetched in one query per kind, so a
//! page of conversations costs a constant number of queries. They skip
//! permission checks: only resolvers of already-checked parents use them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{channel, contact, conversation_tag, department, message, tag, user};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

pub type LoadError = Arc<DbErr>;

/// Rows by primary key, for any entity whose key is `id: i64`.
pub struct ById<E> {
    db: DatabaseConnection,
    _entity: std::marker::PhantomData<fn() -> E>,
}

macro_rules! by_id_loader {
    ($module:ident) => {
        impl Loader<i64> for ById<$module::Entity> {
            type Value = $module::Model;
            type Error = LoadError;

            async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
                Ok($module::Entity::find()
                    .filter($module::Column::Id.is_in(keys.to_vec()))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|row| (row.id, row))
                    .collect())
            }
        }
    };
}

by_id_loader!(contact);
by_id_loader!(user);
by_id_loader!(department);
by_id_loader!(channel);

/// Tags of each conversation.
pub struct ConversationTags {
    db: DatabaseConnection,
}

impl Loader<i64> for ConversationTags {
    type Value = Vec<tag::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = conversation_tag::Entity::find()
            .filter(conversation_tag::Column::ConversationId.is_in(keys.to_vec()))
            .find_also_related(tag::Entity)
            .all(&self.db)
            .await?;
        let mut out: HashMap<i64, Self::Value> = HashMap::new();
        for (link, tag) in rows {
            out.entry(link.conversation_id).or_default().extend(tag);
        }
        Ok(out)
    }
}

/// The newest messages of each conversation, keyed by (conversation, how many).
pub struct RecentMessages {
    db: DatabaseConnection,
}

impl Loader<(i64, u64)> for RecentMessages {
    type Value = Vec<message::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(i64, u64)],
    ) -> Result<HashMap<(i64, u64), Self::Value>, Self::Error> {
        let mut by_count: HashMap<u64, Vec<i64>> = HashMap::new();
        for &(id, n) in keys {
            by_count.entry(n).or_default().push(id);
        }
        let mut out: HashMap<(i64, u64), Self::Value> = HashMap::new();
        for (n, ids) in by_count {
            for m in domain::conversations::recent_messages(&self.db, &ids, n).await? {
                out.entry((m.conversation_id, n)).or_default().push(m);
            }
        }
        Ok(out)
    }
}

/// Every loader, built once per schema and shared (they batch, they do not cache).
pub struct Loaders {
    pub contacts: DataLoader<ById<contact::Entity>>,
    pub users: DataLoader<ById<user::Entity>>,
    pub departments: DataLoader<ById<department::Entity>>,
    pub channels: DataLoader<ById<channel::Entity>>,
    pub conversation_tags: DataLoader<ConversationTags>,
    pub recent_messages: DataLoader<RecentMessages>,
}

/// How long a loader waits to gather keys before querying: long enough that a
/// page of 100 rows resolving on a busy machine still makes one batch.
const BATCH_DELAY: Duration = Duration::from_millis(3);

fn loader<K, T: Loader<K>>(inner: T, delay: Duration) -> DataLoader<T>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
{
    DataLoader::new(inner, tokio::spawn).delay(delay)
}

impl Loaders {
    /// Loaders for queries and mutations: keys are gathered for
    /// [`BATCH_DELAY`], so a page's rows make one query per relation.
    pub fn batching(db: &DatabaseConnection) -> Arc<Self> {
        Arc::new(Self::new(db, BATCH_DELAY))
    }

    /// Loaders for subscriptions, which resolve one event at a time: waiting
    /// to gather keys would only add the delay to every event a socket gets.
    pub fn immediate(db: &DatabaseConnection) -> Arc<Self> {
        Arc::new(Self::new(db, Duration::ZERO))
    }

    fn new(db: &DatabaseConnection, delay: Duration) -> Self {
        fn by_id<E>(db: &DatabaseConnection) -> ById<E> {
            ById {
                db: db.clone(),
                _entity: std::marker::PhantomData,
            }
        }
        Self {
            contacts: loader(by_id(db), delay),
            users: loader(by_id(db), delay),
            departments: loader(by_id(db), delay),
            channels: loader(by_id(db), delay),
            conversation_tags: loader(ConversationTags { db: db.clone() }, delay),
            recent_messages: loader(RecentMessages { db: db.clone() }, delay),
        }
    }
}

/// The loaders of the operation: a socket's session data holds the
/// immediate ones, which take precedence over the schema's batching ones.
pub fn loaders<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a Loaders {
    ctx.data_unchecked::<Arc<Loaders>>()
}
