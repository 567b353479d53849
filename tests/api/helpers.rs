//! `spawn_app()`: the real server on an ephemeral port with a fresh database
//! (in-memory SQLite, or a new PostgreSQL database when TEST_DATABASE_URL is
//! set) and a manual clock; typed helpers that assert what they expect.

use std::sync::Arc;

use api::db::QueryCounter;
use api::events::EventBus;
use api::{Application, Config};
use chrono::{DateTime, Utc};
use domain::{Domain, ManualClock};
use entity::{ConversationStatus, Priority, channel, contact, conversation};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, Set};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "agent-password-1";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub domain: Domain,
    pub clock: Arc<ManualClock>,
    pub queries: QueryCounter,
    pub admin_token: String,
    pub database_url: String,
    /// The instance's event bus, for its counters.
    pub events: EventBus,
    pg_database: Option<(String, String)>,
}

/// A fresh PostgreSQL database for one test, or None for SQLite.
async fn test_database() -> Option<(String, String)> {
    let server = std::env::var("TEST_DATABASE_URL").ok()?;
    let name = format!("hd_t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&server)
        .await
        .expect("connect to TEST_DATABASE_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
    Some((format!("{base}/{name}"), name))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_at(Utc::now(), adjust).await
}

/// A server whose manual clock starts at `at`: the workers' first ticks,
/// which run at start-up, already see that time (setting the clock back
/// afterwards would let a tick that read the start time judge the test's
/// data by it).
pub async fn spawn_app_at(at: DateTime<Utc>, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pg = test_database().await;
    let mut config = base_config(
        pg.as_ref()
            .map(|(url, _)| url.clone())
            .unwrap_or_else(|| "sqlite::memory:".into()),
    );
    adjust(&mut config);
    let clock = Arc::new(ManualClock::new(at));
    let server = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    start(config, clock, pg.map(|(_, name)| (server, name))).await
}

/// Another server on `of`'s database and clock (with no database of its own
/// to drop): two `Application`s in one process count as two instances.
/// `of` must not use `sqlite::memory:` (one database per connection).
pub async fn spawn_instance(of: &TestApp, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = base_config(of.database_url.clone());
    adjust(&mut config);
    start(config, of.clock.clone(), None).await
}

fn base_config(database_url: String) -> Config {
    Config {
        bind: "127.0.0.1:0".into(),
        database_url,
        jwt_secret: Some("a-test-secret-that-is-long-enough-1234".into()),
        admin_email: ADMIN_EMAIL.into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        db_max_connections: 10,
        // Tests drive the outbox with `domain.run_outbox_once()` against a
        // local stand-in (tests/api/cloud_api.rs), never the real Graph API.
        outbox_worker: false,
        // Seeded unassigned conversations stay where tests put them; routing
        // tests turn the worker on (or call `domain.route_queue()`).
        routing_worker: false,
        // SLA tests sweep by hand with `domain.run_sla_sweep()`.
        sla_worker: false,
        // Webhook deliveries are driven with `domain.run_webhooks_once()`
        // (tests/api/integration.rs); no background polling to skew counts.
        webhooks_worker: false,
        graph_base_url: "http://127.0.0.1:9".into(),
        ..Config::default()
    }
}

async fn start(
    config: Config,
    clock: Arc<ManualClock>,
    pg_database: Option<(String, String)>,
) -> TestApp {
    let database_url = config.database_url.clone();
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .expect("application builds");
    let port = app.port();
    let domain = app.domain().clone();
    let queries = app.queries();
    let events = app.events().clone();
    tokio::spawn(app.run_until_stopped());
    let mut test = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        domain,
        clock,
        queries,
        admin_token: String::new(),
        database_url,
        events,
        pg_database,
    };
    test.admin_token = test.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    test
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((server, name)) = self.pg_database.take() {
            // Best effort, on its own runtime: the test's runtime is ending.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(db) = Database::connect(&server).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = db.execute_unprepared(&sql).await;
                    }
                });
            })
            .join();
        }
    }
}

/// A GraphQL response, with helpers that fail the test with the whole body.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "expected no errors, got {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of the first error.
    pub fn error_code(&self) -> String {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.body))
            .to_string()
    }

    pub fn assert_code(&self, code: &str) {
        assert_eq!(self.error_code(), code, "body: {}", self.body);
    }
}

impl TestApp {
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Gql {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("JSON body");
        Gql { status, body }
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .gql(
                "",
                "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ accessToken } }",
                json!({"e": email, "p": password}),
            )
            .await;
        r.data()["login"]["accessToken"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    /// Creates a staff user with `role` (ADMIN, EDITOR, AGENT, ANALYST) and logs in.
    pub async fn staff(&self, name: &str, role: &str) -> (i64, String) {
        let email = format!("{}@test.example", name.to_lowercase());
        let r = self
            .gql(
                &self.admin_token,
                "mutation($i: StaffCreateInput!){ createStaff(input:$i){ id } }",
                json!({"i": {"email": email, "name": name, "password": PASSWORD, "role": role}}),
            )
            .await;
        let id = r.data()["createStaff"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("numeric id");
        (id, self.login(&email, PASSWORD).await)
    }

    pub fn now(&self) -> DateTime<Utc> {
        domain::Clock::now(self.clock.as_ref())
    }

    /// A channel for seeded conversations.
    pub async fn seed_channel(&self) -> i64 {
        let now = self.now();
        channel::ActiveModel {
            name: Set("Test shop".into()),
            phone_number_id: Set(format!("1{}", rand_digits())),
            region: Set("europe".into()),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.domain.db)
        .await
        .expect("channel")
        .id
    }

    /// An open conversation with a fresh contact, optionally assigned.
    pub async fn seed_conversation(&self, channel_id: i64, assignee: Option<i64>) -> i64 {
        let now = self.now();
        let wa_id = format!("39{}", rand_digits());
        let contact = contact::ActiveModel {
            wa_id: Set(Some(wa_id.clone())),
            profile_name: Set(Some(format!("Cliente {wa_id}"))),
            priority: Set(Priority::Normal),
            is_vip: Set(false),
            consent: Set(Default::default()),
            fields: Set(json!({})),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.domain.db)
        .await
        .expect("contact");
        conversation::ActiveModel {
            channel_id: Set(channel_id),
            contact_id: Set(contact.id),
            status: Set(ConversationStatus::Open),
            priority: Set(Priority::Normal),
            assignee_id: Set(assignee),
            escalation_level: Set(0),
            transfer_count: Set(0),
            reopen_count: Set(0),
            last_message_at: Set(Some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.domain.db)
        .await
        .expect("conversation")
        .id
    }
}

fn rand_digits() -> String {
    uuid::Uuid::new_v4().as_u128().to_string()[..10].to_string()
}

/// Teams and queues for the routing, assignment and presence tests.
impl TestApp {
    /// A department routed by `strategy` (SMART or ROUND_ROBIN).
    pub async fn department(&self, name: &str, strategy: &str) -> i64 {
        let r = self
            .gql(
                &self.admin_token,
                "mutation($n:String!,$s:RoutingStrategy!){ createDepartment(input:{name:$n, routingStrategy:$s}){ id } }",
                json!({"n": name, "s": strategy}),
            )
            .await;
        r.data()["createDepartment"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("numeric id")
    }

    /// An AGENT with skills, departments and capacity, logged in (offline
    /// until it sends a request).
    pub async fn agent(
        &self,
        name: &str,
        skills: &[&str],
        departments: &[i64],
        max_concurrent: i32,
    ) -> (i64, String) {
        let email = format!("{}@test.example", name.to_lowercase());
        let deps: Vec<String> = departments.iter().map(i64::to_string).collect();
        let r = self
            .gql(
                &self.admin_token,
                "mutation($i: StaffCreateInput!){ createStaff(input:$i){ id } }",
                json!({"i": {"email": email, "name": name, "password": PASSWORD, "role": "AGENT",
                    "skills": skills, "departmentIds": deps, "maxConcurrent": max_concurrent}}),
            )
            .await;
        let id = r.data()["createStaff"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("numeric id");
        (id, self.login(&email, PASSWORD).await)
    }

    /// Sets the caller's presence with a heartbeat (ONLINE, AWAY, OFFLINE).
    pub async fn heartbeat(&self, token: &str, status: &str) {
        self.gql(
            token,
            "mutation($s:Presence){ heartbeat(status:$s){ presence } }",
            json!({"s": status}),
        )
        .await
        .data();
    }

    /// A queued conversation: open, unassigned, in `department`, queued now.
    pub async fn seed_queued(
        &self,
        channel_id: i64,
        department: Option<i64>,
        priority: Priority,
        topic: Option<&str>,
    ) -> i64 {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let id = self.seed_conversation(channel_id, None).await;
        conversation::Entity::update_many()
            .col_expr(conversation::Column::DepartmentId, Expr::value(department))
            .col_expr(conversation::Column::Priority, Expr::value(priority))
            .col_expr(
                conversation::Column::Topic,
                Expr::value(topic.map(str::to_string)),
            )
            .col_expr(conversation::Column::QueuedAt, Expr::value(self.now()))
            .filter(conversation::Column::Id.eq(id))
            .exec(&self.domain.db)
            .await
            .expect("queue the conversation");
        id
    }

    /// A conversation as stored now.
    pub async fn conversation_row(&self, id: i64) -> conversation::Model {
        use sea_orm::EntityTrait;
        conversation::Entity::find_by_id(id)
            .one(&self.domain.db)
            .await
            .expect("read conversation")
            .expect("conversation exists")
    }

    /// Polls `check` until it holds, for at most 10 s of real time (workers
    /// react to events asynchronously).
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..200 {
            if check().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }
}
