//! Runs every migration up, down and up again, and checks that the schema matches the
//! entities and enforces the data model's constraints.
//!
//! Always runs on SQLite in memory. When `TEST_DATABASE_URL` is set (a PostgreSQL URL,
//! e.g. `postgres://postgres@127.0.0.1:5432/test`) it also runs on PostgreSQL, in a
//! freshly created database `hd_mig_<random>` that is dropped at the end.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use entity::*;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, Database,
    DatabaseConnection, DbBackend, DbErr, EntityTrait, IntoActiveModel, ModelTrait, PaginatorTrait,
    QueryFilter, Set, SqlErr, Statement,
};
use serde_json::json;

/// Every table of the data model.
const TABLES: [&str; 42] = [
    "users",
    "departments",
    "department_members",
    "channels",
    "contacts",
    "contact_tags",
    "tags",
    "conversations",
    "conversation_tags",
    "messages",
    "notes",
    "assignments",
    "audit_log",
    "auto_reply_rules",
    "canned_responses",
    "business_hours",
    "holidays",
    "sla_policies",
    "sla_events",
    "surveys",
    "billing_ledger",
    "outbox",
    "webhook_subscriptions",
    "webhook_deliveries",
    "api_tokens",
    "automation_variables",
    "lead_flows",
    "lead_flow_runs",
    "presence_intervals",
    "webhook_inbox",
    "automation_hits",
    "metrics_rollup_hours",
    "metrics_rollup_dirty",
    "metrics_rollup",
    "metrics_rollup_frt",
    "metrics_rollup_volume",
    "metrics_rollup_wait",
    "metrics_rollup_repeat",
    "metrics_rollup_cost",
    "metrics_rollup_busy",
    "metrics_rollup_handlers",
    "metrics_rollup_chars",
];

const MIGRATION_TABLE: &str = "seaql_migrations";

#[tokio::test]
async fn sqlite_up_down_up() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    up_down_up(&db).await;
}

#[tokio::test]
async fn postgres_up_down_up() {
    let Ok(server_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL run");
        return;
    };
    let name = format!(
        "hd_mig_{:016x}",
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    );
    let admin = Database::connect(&server_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();

    let url = with_database(&server_url, &name);
    // Run in a task so that a failed assertion still lets us drop the database.
    let outcome = tokio::spawn(async move {
        let db = Database::connect(&url).await.unwrap();
        up_down_up(&db).await;
        db.close().await.unwrap();
    })
    .await;

    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `postgres://u@h:5432/test?x=y` → `postgres://u@h:5432/<db>?x=y`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{prefix}/{db}{query}")
}

async fn up_down_up(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    assert_schema_complete(db).await;
    check_entities_round_trip(db).await;
    check_defaults_and_constraints(db).await;

    Migrator::down(db, None).await.unwrap();
    assert_eq!(
        tables(db).await,
        BTreeSet::from([MIGRATION_TABLE.to_owned()]),
        "only the migration table may remain after down"
    );
    assert_eq!(
        indexes(db).await,
        BTreeSet::new(),
        "no index may remain after down"
    );
    assert_eq!(Migrator::get_applied_migrations(db).await.unwrap().len(), 0);

    // Up again on the emptied database: everything must be re-creatable.
    Migrator::up(db, None).await.unwrap();
    assert_schema_complete(db).await;
    check_entities_round_trip(db).await;
    check_defaults_and_constraints(db).await;
}

async fn query_strings(db: &DatabaseConnection, sql: &str) -> BTreeSet<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn tables(db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        DbBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
        other => panic!("unsupported backend {other:?}"),
    };
    query_strings(db, sql).await
}

/// User-visible indexes outside the migration table (implicit PK/UNIQUE ones included on
/// PostgreSQL, auto-indexes excluded on SQLite).
async fn indexes(db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND name NOT LIKE 'sqlite_autoindex_%' AND tbl_name <> 'seaql_migrations'"
        }
        DbBackend::Postgres => {
            "SELECT indexname::text FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename <> 'seaql_migrations'"
        }
        other => panic!("unsupported backend {other:?}"),
    };
    query_strings(db, sql).await
}

async fn assert_schema_complete(db: &DatabaseConnection) {
    let mut expected: BTreeSet<String> = TABLES.iter().map(|t| t.to_string()).collect();
    expected.insert(MIGRATION_TABLE.to_owned());
    assert_eq!(tables(db).await, expected);
    let idx = indexes(db).await;
    for name in [
        "conversations_one_open_per_contact",
        "idx_conversations_status_department_id_assignee_id",
        "idx_messages_conversation_id_created_at",
        "uq_sla_events_conversation_id_kind_level_cycle",
        "uq_surveys_conversation_id_kind_round",
        "uq_holidays_business_hours_id_date",
        "idx_webhook_inbox_status_received_at",
        "idx_conversations_sla_first_response_running",
        "idx_conversations_sla_resolution_running",
        "idx_conversations_sla_unanswered_created_at",
        "idx_conversations_sla_next_at",
    ] {
        assert!(idx.contains(name), "missing index {name}; have {idx:?}");
    }
    assert_eq!(Migrator::get_pending_migrations(db).await.unwrap().len(), 0);
}

/// A timestamp with microsecond precision (what PostgreSQL keeps).
fn ts(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap()
        + Duration::seconds(secs)
        + Duration::microseconds(123_456)
}

/// Inserts the model with every column set (explicit ids ≥ 1000, so they never collide with
/// sequence-generated ones), and checks both `RETURNING` and a plain `SELECT` give it back
/// unchanged: proves that every entity column exists in the table with a compatible type.
macro_rules! round_trip {
    ($db:expr, $module:ident, $model:expr) => {{
        let model: $module::Model = $model;
        let returned = $module::Entity::insert(model.clone().into_active_model())
            .exec_with_returning($db)
            .await
            .unwrap_or_else(|e| panic!("insert into {}: {e}", stringify!($module)));
        assert_eq!(returned, model, "RETURNING of {}", stringify!($module));
        let all = $module::Entity::find().all($db).await.unwrap();
        assert!(
            all.contains(&model),
            "SELECT of {}: {all:?}",
            stringify!($module)
        );
        model
    }};
}

async fn check_entities_round_trip(db: &DatabaseConnection) {
    let user = round_trip!(
        db,
        user,
        user::Model {
            id: 1000,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: "$argon2id$v=19$...".into(),
            role: Role::Admin,
            skills: json!(["billing", "es"]),
            max_concurrent: 5,
            presence: Presence::Online,
            last_seen_at: Some(ts(1)),
            last_assigned_at: Some(ts(2)),
            is_active: true,
            token_version: 2,
            created_at: ts(0),
            updated_at: ts(3),
        }
    );
    let department = round_trip!(
        db,
        department,
        department::Model {
            id: 1000,
            name: "Sales".into(),
            description: Some("Pre-sales".into()),
            keywords: json!(["price", "buy"]),
            routing_strategy: RoutingStrategy::RoundRobin,
            round_robin_cursor: Some(user.id),
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        department_member,
        department_member::Model {
            department_id: department.id,
            user_id: user.id,
        }
    );
    let channel = round_trip!(
        db,
        channel,
        channel::Model {
            id: 1000,
            name: "Main".into(),
            phone_number_id: "1234567890".into(),
            display_phone_number: Some("+34 600 000 000".into()),
            waba_id: Some("waba-1".into()),
            app_secret: Some("s3cret".into()),
            access_token: Some("EAAB".into()),
            region: "latam".into(),
            is_active: false,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    let contact = round_trip!(
        db,
        contact,
        contact::Model {
            id: 1000,
            wa_id: Some("34600000001".into()),
            user_id: Some("ES.123".into()),
            phone: Some("+34600000001".into()),
            name: Some("Bob".into()),
            profile_name: Some("bobby".into()),
            language: Some("es".into()),
            priority: Priority::Urgent,
            is_vip: true,
            consent: ConsentState::OptedIn,
            consent_changed_at: Some(ts(4)),
            fields: json!({"budget": 1000, "city": "Madrid"}),
            external_id: Some("crm-1".into()),
            last_inbound_at: Some(ts(5)),
            erased_at: None,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    let tag = round_trip!(
        db,
        tag,
        tag::Model {
            id: 1000,
            name: "vip".into(),
            color: Some("#ff0000".into()),
            created_at: ts(0),
        }
    );
    round_trip!(
        db,
        contact_tag,
        contact_tag::Model {
            contact_id: contact.id,
            tag_id: tag.id,
        }
    );
    let hours = round_trip!(
        db,
        business_hours,
        business_hours::Model {
            id: 1000,
            name: "Madrid office".into(),
            timezone: "Europe/Madrid".into(),
            schedule: json!({"mon": [["09:00", "18:00"]]}),
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        holiday,
        holiday::Model {
            id: 1000,
            business_hours_id: hours.id,
            date: NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
            name: Some("Christmas".into()),
        }
    );
    let policy = round_trip!(
        db,
        sla_policy,
        sla_policy::Model {
            id: 1000,
            name: "VIP".into(),
            priority: Some(Priority::High),
            channel_id: Some(channel.id),
            department_id: Some(department.id),
            business_hours_id: Some(hours.id),
            first_response_secs: 300,
            resolution_secs: 86_400,
            warn_percent: 75,
            topic_tolerances: json!({"logistics": 720}),
            pause_when_pending: false,
            escalation_kind: EscalationKind::Functional,
            escalate_to_user_id: Some(user.id),
            escalate_to_department_id: Some(department.id),
            notify_customer_on_breach: true,
            is_default: true,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    let conversation = round_trip!(
        db,
        conversation,
        conversation::Model {
            id: 1000,
            channel_id: channel.id,
            contact_id: contact.id,
            status: ConversationStatus::Pending,
            priority: Priority::High,
            topic: Some("logistics".into()),
            language: Some("es".into()),
            department_id: Some(department.id),
            assignee_id: Some(user.id),
            lock_holder_id: Some(user.id),
            lock_acquired_at: Some(ts(10)),
            lock_last_activity_at: Some(ts(11)),
            lock_expires_at: Some(ts(12)),
            sla_policy_id: Some(policy.id),
            first_response_due_at: Some(ts(13)),
            resolution_due_at: Some(ts(14)),
            sla_paused_at: Some(ts(15)),
            important_wait_due_at: Some(ts(15)),
            sla_next_at: Some(ts(16)),
            escalation_level: 1,
            transfer_count: 2,
            reopen_count: 3,
            queued_at: Some(ts(16)),
            assigned_at: Some(ts(17)),
            first_response_at: Some(ts(18)),
            resolved_at: None,
            closed_at: None,
            last_message_at: Some(ts(19)),
            last_inbound_at: Some(ts(20)),
            csat: Some(5),
            nps: Some(10),
            converted_at: Some(ts(21)),
            conversion_amount_micros: Some(12_500_000),
            archived_at: None,
            created_at: ts(0),
            updated_at: ts(22),
        }
    );
    round_trip!(
        db,
        conversation_tag,
        conversation_tag::Model {
            conversation_id: conversation.id,
            tag_id: tag.id,
        }
    );
    let message = round_trip!(
        db,
        message,
        message::Model {
            id: 1000,
            conversation_id: conversation.id,
            channel_id: channel.id,
            direction: Direction::Outbound,
            sender_kind: SenderKind::Agent,
            sender_user_id: Some(user.id),
            message_type: MessageType::Interactive,
            body: Some("¿Le puedo ayudar? ".repeat(100)),
            media: Some(json!({"id": "m1", "mime_type": "image/jpeg"})),
            payload: Some(json!({"type": "button", "buttons": ["Sí", "No"]})),
            wa_message_id: Some("wamid.round-trip".into()),
            context_wa_id: Some("wamid.ctx".into()),
            status: DeliveryStatus::Read,
            error_code: Some(131_047),
            error_title: Some("Re-engagement message".into()),
            sent_at: Some(ts(30)),
            delivered_at: Some(ts(31)),
            read_at: Some(ts(32)),
            failed_at: None,
            auto_rule_id: Some(7),
            auto_variant: Some(1),
            cost_micros: Some(8_000),
            created_at: ts(29),
        }
    );
    round_trip!(
        db,
        note,
        note::Model {
            id: 1000,
            conversation_id: conversation.id,
            author_id: user.id,
            body: "n".repeat(300),
            created_at: ts(33),
        }
    );
    round_trip!(
        db,
        assignment,
        assignment::Model {
            id: 1000,
            conversation_id: conversation.id,
            kind: AssignmentKind::Transfer,
            from_user_id: Some(user.id),
            to_user_id: Some(user.id + 1),
            from_department_id: Some(department.id),
            to_department_id: None,
            reason: Some("language".into()),
            actor_id: Some(user.id),
            created_at: ts(34),
        }
    );
    round_trip!(
        db,
        sla_event,
        sla_event::Model {
            id: 1000,
            conversation_id: conversation.id,
            kind: SlaKind::FirstResponse,
            level: SlaLevel::Warning,
            target_at: ts(35),
            occurred_at: ts(36),
            late_secs: Some(-60),
            details: Some(json!({"percent": 80})),
            cycle: 2,
        }
    );
    round_trip!(
        db,
        auto_reply_rule,
        auto_reply_rule::Model {
            id: 1000,
            name: "Lunch".into(),
            trigger_mode: TriggerMode::Scheduled,
            channel_id: Some(channel.id),
            language: Some("es".into()),
            keywords: json!(["hola"]),
            variants: json!(["A", "B"]),
            buttons: json!(["Ok"]),
            schedule: Some(json!({"days": [1, 2, 3, 4, 5], "start": "11:30", "end": "13:00"})),
            priority: 10,
            is_active: false,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        canned_response,
        canned_response::Model {
            id: 1000,
            shortcut: "/hi".into(),
            title: "Greeting".into(),
            body: "Hello {{name}}".into(),
            department_id: Some(department.id),
            created_by: Some(user.id),
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        automation_variable,
        automation_variable::Model {
            key: "company_name".into(),
            value: "ACME".into(),
            updated_at: ts(0),
        }
    );
    let flow = round_trip!(
        db,
        lead_flow,
        lead_flow::Model {
            id: 1000,
            name: "Budget".into(),
            department_id: Some(department.id),
            trigger_keywords: json!(["quote"]),
            questions: json!([{"field": "budget", "question": "What is your budget?"}]),
            is_active: true,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        lead_flow_run,
        lead_flow_run::Model {
            id: 1000,
            flow_id: flow.id,
            conversation_id: conversation.id,
            step: 1,
            answers: json!({"budget": "1000"}),
            status: FlowRunStatus::Active,
            question_held: false,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        survey,
        survey::Model {
            id: 1000,
            conversation_id: conversation.id,
            contact_id: contact.id,
            agent_id: Some(user.id),
            kind: SurveyKind::Nps,
            round: 3,
            status: SurveyStatus::Answered,
            score: Some(9),
            raw_answer: Some("9!".into()),
            sent_at: ts(40),
            answered_at: Some(ts(41)),
            expires_at: ts(42),
        }
    );
    round_trip!(
        db,
        billing_ledger,
        billing_ledger::Model {
            id: 1000,
            message_id: message.id,
            channel_id: channel.id,
            conversation_id: conversation.id,
            period: "2026-11".into(),
            region: "europe".into(),
            free: false,
            base_micros: 8_000,
            surcharge_micros: 500,
            total_micros: 8_500,
            created_at: ts(43),
        }
    );
    round_trip!(
        db,
        outbox,
        outbox::Model {
            id: 1000,
            message_id: message.id,
            channel_id: channel.id,
            status: OutboxStatus::Sending,
            attempts: 2,
            next_attempt_at: ts(44),
            locked_until: Some(ts(45)),
            last_error: Some("timeout".into()),
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    let subscription = round_trip!(
        db,
        webhook_subscription,
        webhook_subscription::Model {
            id: 1000,
            name: "CRM".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: "whsec".into(),
            event_types: json!(["conversation.resolved"]),
            is_active: true,
            disabled_reason: Some("none".into()),
            consecutive_failures: 1,
            created_at: ts(0),
            updated_at: ts(0),
        }
    );
    round_trip!(
        db,
        webhook_delivery,
        webhook_delivery::Model {
            id: 1000,
            subscription_id: subscription.id,
            event_id: "0190f5a2-7b8e-7c4e-9d1f-3a2b1c0d9e8f".into(),
            event_type: "conversation.resolved".into(),
            ordering_key: Some("conversation:1000".into()),
            payload: json!({"conversation_id": 1000}),
            status: DeliveryState::Delivered,
            attempts: 1,
            next_attempt_at: ts(46),
            response_status: Some(204),
            latency_ms: Some(12),
            last_error: None,
            created_at: ts(0),
            delivered_at: Some(ts(47)),
        }
    );
    round_trip!(
        db,
        api_token,
        api_token::Model {
            id: 1000,
            name: "ci".into(),
            token_hash: "ab".repeat(32),
            role: Role::Analyst,
            created_by: Some(user.id),
            expires_at: Some(ts(48)),
            last_used_at: Some(ts(49)),
            revoked_at: None,
            created_at: ts(0),
        }
    );
    round_trip!(
        db,
        audit_log,
        audit_log::Model {
            id: 1000,
            actor_kind: ActorKind::ApiToken,
            actor_id: Some(1000),
            action: "conversation.assign".into(),
            entity_type: "conversation".into(),
            entity_id: Some("1000".into()),
            before: Some(json!({"assignee_id": null})),
            after: Some(json!({"assignee_id": 1000})),
            created_at: ts(50),
        }
    );
    round_trip!(
        db,
        presence_interval,
        presence_interval::Model {
            id: 1000,
            user_id: user.id,
            status: Presence::Away,
            started_at: ts(51),
            ended_at: Some(ts(52)),
        }
    );
    round_trip!(
        db,
        webhook_inbox,
        webhook_inbox::Model {
            id: 1000,
            body: r#"{"object":"whatsapp_business_account","entry":[]}"#.into(),
            signature: Some("sha256=00".into()),
            status: InboxStatus::Failed,
            error: Some("bad json".into()),
            received_at: ts(53),
            processed_at: Some(ts(54)),
        }
    );

    check_relations(db, &conversation, &user, &tag, &message).await;

    // Cascade: deleting the conversation removes everything that hangs off it.
    conversation::Entity::delete_by_id(conversation.id)
        .exec(db)
        .await
        .unwrap();
    for count in [
        message::Entity::find().count(db).await.unwrap(),
        note::Entity::find().count(db).await.unwrap(),
        billing_ledger::Entity::find().count(db).await.unwrap(),
        outbox::Entity::find().count(db).await.unwrap(),
        sla_event::Entity::find().count(db).await.unwrap(),
        survey::Entity::find().count(db).await.unwrap(),
        conversation_tag::Entity::find().count(db).await.unwrap(),
    ] {
        assert_eq!(count, 0, "cascade from conversations");
    }
    // Set null / cascade from departments.
    department::Entity::delete_by_id(department.id)
        .exec(db)
        .await
        .unwrap();
    let policy = sla_policy::Entity::find_by_id(policy.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(policy.department_id, None, "set null from departments");
    assert_eq!(
        department_member::Entity::find().count(db).await.unwrap(),
        0
    );
}

/// The `Related` / `Linked` definitions produce working joins.
async fn check_relations(
    db: &DatabaseConnection,
    conversation: &conversation::Model,
    user: &user::Model,
    tag: &tag::Model,
    message: &message::Model,
) {
    let messages = conversation
        .find_related(message::Entity)
        .all(db)
        .await
        .unwrap();
    assert_eq!(messages, vec![message.clone()]);
    assert_eq!(
        message
            .find_related(conversation::Entity)
            .one(db)
            .await
            .unwrap()
            .as_ref(),
        Some(conversation)
    );
    let with_messages = conversation::Entity::find()
        .find_with_related(message::Entity)
        .all(db)
        .await
        .unwrap();
    assert_eq!(with_messages.len(), 1);
    assert_eq!(with_messages[0].1.len(), 1);
    // has_one on a unique FK.
    let outbox = message.find_related(outbox::Entity).one(db).await.unwrap();
    assert_eq!(outbox.map(|o| o.message_id), Some(message.id));
    // Many-to-many through the join tables.
    let departments = user.find_related(department::Entity).all(db).await.unwrap();
    assert_eq!(departments.len(), 1);
    let members = departments[0]
        .find_related(user::Entity)
        .all(db)
        .await
        .unwrap();
    assert_eq!(members.iter().map(|u| u.id).collect::<Vec<_>>(), [user.id]);
    let tagged = tag
        .find_related(conversation::Entity)
        .all(db)
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);
    let contacts = tag.find_related(contact::Entity).all(db).await.unwrap();
    assert_eq!(contacts.len(), 1);
    let tags = conversation
        .find_related(tag::Entity)
        .all(db)
        .await
        .unwrap();
    assert_eq!(tags, vec![tag.clone()]);
    // Two FKs to users: Linked instead of Related.
    let (_, assignee) = conversation::Entity::find_by_id(conversation.id)
        .find_also_linked(conversation::AssigneeLink)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(assignee.map(|u| u.id), Some(user.id));
    let holder = conversation
        .find_linked(conversation::LockHolderLink)
        .one(db)
        .await
        .unwrap();
    assert_eq!(holder.map(|u| u.id), Some(user.id));
}

fn sql_err(result: Result<impl std::fmt::Debug, DbErr>) -> SqlErr {
    let err = result.expect_err("the statement must be rejected");
    err.sql_err()
        .unwrap_or_else(|| panic!("expected a constraint violation, got {err:?}"))
}

async fn check_defaults_and_constraints(db: &DatabaseConnection) {
    // Only required columns set: every other NOT NULL column comes from a database default.
    let user = user::ActiveModel {
        email: Set("min@example.com".into()),
        name: Set("Min".into()),
        password_hash: Set("x".into()),
        role: Set(Role::Agent),
        created_at: Set(ts(0)),
        updated_at: Set(ts(0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(
        user.id > 0 && user.id != 1000,
        "generated id, got {}",
        user.id
    );
    assert_eq!(user.skills, json!([]));
    assert_eq!(user.max_concurrent, 3);
    assert_eq!(user.presence, Presence::Offline);
    assert!(user.is_active);
    assert_eq!(user.token_version, 0);

    let department = department::ActiveModel {
        name: Set("Support".into()),
        created_at: Set(ts(0)),
        updated_at: Set(ts(0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(department.keywords, json!([]));
    assert_eq!(department.routing_strategy, RoutingStrategy::Smart);

    let channel = channel::ActiveModel {
        name: Set("Default".into()),
        phone_number_id: Set("pn-min".into()),
        created_at: Set(ts(0)),
        updated_at: Set(ts(0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(channel.region, "europe");
    assert!(channel.is_active);
    let other_channel = channel::ActiveModel {
        name: Set("Other".into()),
        phone_number_id: Set("pn-other".into()),
        created_at: Set(ts(0)),
        updated_at: Set(ts(0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(matches!(
        sql_err(
            channel::ActiveModel {
                name: Set("Dup".into()),
                phone_number_id: Set("pn-min".into()),
                created_at: Set(ts(0)),
                updated_at: Set(ts(0)),
                ..Default::default()
            }
            .insert(db)
            .await
        ),
        SqlErr::UniqueConstraintViolation(_)
    ));

    let contact = contact::ActiveModel {
        wa_id: Set(Some("34600000002".into())),
        created_at: Set(ts(0)),
        updated_at: Set(ts(0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(contact.priority, Priority::Normal);
    assert!(!contact.is_vip);
    assert_eq!(contact.consent, ConsentState::Unknown);
    assert_eq!(contact.fields, json!({}));
    // Several contacts without wa_id: NULLs never collide in the unique index.
    for _ in 0..2 {
        contact::ActiveModel {
            created_at: Set(ts(0)),
            updated_at: Set(ts(0)),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
    }

    let policy = sla_policy::ActiveModel {
        name: Set("Default".into()),
        first_response_secs: Set(600),
        resolution_secs: Set(3600),
        created_at: Set(ts(0)),
        updated_at: Set(ts(0)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(policy.warn_percent, 80);
    assert_eq!(policy.topic_tolerances, json!({}));
    assert!(policy.pause_when_pending);
    assert_eq!(policy.escalation_kind, EscalationKind::Hierarchical);
    assert!(!policy.notify_customer_on_breach);
    assert!(!policy.is_default);

    let new_conversation =
        |channel_id: i64, status: Option<ConversationStatus>| conversation::ActiveModel {
            channel_id: Set(channel_id),
            contact_id: Set(contact.id),
            status: status.map_or(NotSet, Set),
            created_at: Set(ts(0)),
            updated_at: Set(ts(0)),
            ..Default::default()
        };
    let first = new_conversation(channel.id, None).insert(db).await.unwrap();
    assert_eq!(first.status, ConversationStatus::Open);
    assert_eq!(first.priority, Priority::Normal);
    assert_eq!(
        (
            first.escalation_level,
            first.transfer_count,
            first.reopen_count
        ),
        (0, 0, 0)
    );

    // The partial unique index: one open/pending conversation per (contact, channel).
    for status in [
        None,
        Some(ConversationStatus::Open),
        Some(ConversationStatus::Pending),
    ] {
        assert!(matches!(
            sql_err(new_conversation(channel.id, status).insert(db).await),
            SqlErr::UniqueConstraintViolation(_)
        ));
    }
    // Another channel is another conversation.
    new_conversation(other_channel.id, None)
        .insert(db)
        .await
        .unwrap();
    // Closed/resolved conversations do not count.
    new_conversation(channel.id, Some(ConversationStatus::Closed))
        .insert(db)
        .await
        .unwrap();
    let mut resolving = first.clone().into_active_model();
    resolving.status = Set(ConversationStatus::Resolved);
    resolving.update(db).await.unwrap();
    let second = new_conversation(channel.id, None).insert(db).await.unwrap();
    assert!(matches!(
        sql_err(
            new_conversation(channel.id, Some(ConversationStatus::Pending))
                .insert(db)
                .await
        ),
        SqlErr::UniqueConstraintViolation(_)
    ));
    // Re-opening the resolved one while the second is open is rejected too.
    let mut reopening = first.clone().into_active_model();
    reopening.status = Set(ConversationStatus::Open);
    assert!(matches!(
        sql_err(reopening.update(db).await),
        SqlErr::UniqueConstraintViolation(_)
    ));

    // messages.wa_message_id is unique (NULLs excepted).
    let new_message = |wa_message_id: Option<&str>| message::ActiveModel {
        conversation_id: Set(second.id),
        channel_id: Set(channel.id),
        direction: Set(Direction::Inbound),
        sender_kind: Set(SenderKind::Customer),
        message_type: Set(MessageType::Text),
        body: Set(Some("hola".into())),
        wa_message_id: Set(wa_message_id.map(str::to_owned)),
        status: Set(DeliveryStatus::Received),
        created_at: Set(ts(1)),
        ..Default::default()
    };
    let inbound = new_message(Some("wamid.dup")).insert(db).await.unwrap();
    assert_eq!(inbound.sender_user_id, None);
    assert!(matches!(
        sql_err(new_message(Some("wamid.dup")).insert(db).await),
        SqlErr::UniqueConstraintViolation(_)
    ));
    new_message(None).insert(db).await.unwrap();
    new_message(None).insert(db).await.unwrap();
    assert_eq!(
        message::Entity::find()
            .filter(message::Column::ConversationId.eq(second.id))
            .count(db)
            .await
            .unwrap(),
        3
    );

    // Foreign keys are enforced (on SQLite too).
    let mut orphan = new_message(Some("wamid.orphan"));
    orphan.conversation_id = Set(987_654_321);
    assert!(matches!(
        sql_err(orphan.insert(db).await),
        SqlErr::ForeignKeyConstraintViolation(_)
    ));

    // Set null: deleting the assignee keeps the conversation.
    let mut assigning = second.clone().into_active_model();
    assigning.assignee_id = Set(Some(user.id));
    assigning.department_id = Set(Some(department.id));
    assigning.sla_policy_id = Set(Some(policy.id));
    assigning.update(db).await.unwrap();
    user::Entity::delete_by_id(user.id).exec(db).await.unwrap();
    let second = conversation::Entity::find_by_id(second.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.assignee_id, None);
    assert_eq!(second.department_id, Some(department.id));

    // Cascade: deleting the contact removes its conversations and their messages.
    contact::Entity::delete_by_id(contact.id)
        .exec(db)
        .await
        .unwrap();
    assert_eq!(
        conversation::Entity::find()
            .filter(conversation::Column::ContactId.eq(contact.id))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(message::Entity::find().count(db).await.unwrap(), 0);
}
