//! Auto-replies, keyword routing, handover, live variables and lead flows,
//! driven by signed webhooks against the real server, with the manual clock.

use chrono::{DateTime, Duration, Utc};
use entity::{
    DeliveryStatus, Direction, OutboxStatus, SenderKind, automation_hit, business_hours, contact,
    conversation, lead_flow_run, message, note, outbox, sla_policy,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};

use crate::cloud_api::CloudApi;
use crate::helpers::{Gql, TestApp, spawn_app_at};

pub const SECRET: &str = "automation-app-secret";

pub struct Desk {
    pub app: TestApp,
    pub cloud: CloudApi,
    #[allow(dead_code)]
    pub channel: i64,
    pub number: String,
}

/// A server with a signed webhook, a channel with a token, the Graph API
/// stand-in, and the clock on Wednesday 2 December 2026, 10:00 UTC.
pub async fn desk() -> Desk {
    desk_with(|_| {}).await
}

pub async fn desk_with(adjust: impl FnOnce(&mut api::Config)) -> Desk {
    let cloud = CloudApi::start().await;
    let url = cloud.base_url.clone();
    let mut app = spawn_app_at(utc("2026-12-02T10:00:00Z"), |c| {
        c.graph_base_url = url;
        // The clock jumps days ahead in these tests.
        c.access_token_ttl_secs = 400 * 24 * 3600;
        c.whatsapp_app_secret = Some(SECRET.into());
        adjust(c);
    })
    .await;
    app.admin_token = app
        .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    let number = format!("10{}", &uuid::Uuid::new_v4().as_u128().to_string()[..12]);
    let r = app
        .gql(
            &app.admin_token,
            "mutation($n:String!){ createChannel(input:{name:\"Boutique\", phoneNumberId:$n, accessToken:\"tok\"}) { id } }",
            json!({"n": number}),
        )
        .await;
    let channel = r.data()["createChannel"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    Desk {
        app,
        cloud,
        channel,
        number,
    }
}

pub fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn new_customer() -> String {
    format!("33{}", &uuid::Uuid::new_v4().as_u128().to_string()[..10])
}

impl Desk {
    /// Posts one signed delivery with `message` (a Cloud API message object
    /// without `from`, `id` and `timestamp`) from `from`.
    pub async fn inbound(&self, from: &str, message: Value) {
        self.inbound_all(from, vec![message]).await;
    }

    /// Posts one signed delivery holding all of `messages` from `from`, one
    /// second apart, the last one sent now.
    pub async fn inbound_all(&self, from: &str, messages: Vec<Value>) {
        self.inbound_many(
            messages
                .into_iter()
                .map(|m| (from.to_string(), m))
                .collect(),
        )
        .await;
    }

    /// Posts one signed delivery holding all of `messages`, each from its
    /// sender, one second apart, the last one sent now.
    pub async fn inbound_many(&self, messages: Vec<(String, Value)>) {
        let first = self.app.now().timestamp() + 1 - messages.len() as i64;
        let mut senders: Vec<String> = messages.iter().map(|(from, _)| from.clone()).collect();
        senders.sort();
        senders.dedup();
        let messages: Vec<Value> = messages
            .into_iter()
            .enumerate()
            .map(|(i, (from, mut message))| {
                message["from"] = json!(from);
                message["id"] = json!(format!("wamid.{}", uuid::Uuid::new_v4().simple()));
                message["timestamp"] = json!((first + i as i64).to_string());
                message
            })
            .collect();
        let contacts: Vec<Value> = senders
            .iter()
            .map(|from| json!({"profile": {"name": "Camille"}, "wa_id": from}))
            .collect();
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "33100000000", "phone_number_id": self.number},
            "contacts": contacts,
            "messages": messages,
        }}]}]})
        .to_string();
        let sig = api::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
        let resp = self
            .app
            .client
            .post(format!("{}/webhooks/whatsapp", self.app.address))
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.text().await.unwrap()
        );
    }

    pub async fn says(&self, from: &str, text: &str) {
        self.inbound(from, json!({"type": "text", "text": {"body": text}}))
            .await;
    }

    pub async fn taps(&self, from: &str, id: &str, title: &str) {
        self.inbound(
            from,
            json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}}),
        )
        .await;
    }

    pub async fn contact(&self, wa_id: &str) -> contact::Model {
        contact::Entity::find()
            .filter(contact::Column::WaId.eq(wa_id))
            .one(&self.app.domain.db)
            .await
            .unwrap()
            .expect("contact stored")
    }

    /// The customer's latest conversation.
    pub async fn conversation(&self, wa_id: &str) -> conversation::Model {
        let c = self.contact(wa_id).await;
        conversation::Entity::find()
            .filter(conversation::Column::ContactId.eq(c.id))
            .order_by_desc(conversation::Column::Id)
            .one(&self.app.domain.db)
            .await
            .unwrap()
            .expect("conversation")
    }

    /// Automated messages to the customer, oldest first.
    pub async fn bot_messages(&self, wa_id: &str) -> Vec<message::Model> {
        let c = self.contact(wa_id).await;
        let conversations: Vec<i64> = conversation::Entity::find()
            .filter(conversation::Column::ContactId.eq(c.id))
            .all(&self.app.domain.db)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        message::Entity::find()
            .filter(message::Column::ConversationId.is_in(conversations))
            .filter(message::Column::SenderKind.eq(SenderKind::Bot))
            .order_by_asc(message::Column::Id)
            .all(&self.app.domain.db)
            .await
            .unwrap()
    }

    pub async fn replies(&self, wa_id: &str) -> Vec<String> {
        self.bot_messages(wa_id)
            .await
            .into_iter()
            .map(|m| m.body.unwrap_or_default())
            .collect()
    }

    pub async fn rule(&self, input: Value) -> Gql {
        self.app
            .gql(
                &self.app.admin_token,
                "mutation($i: AutoReplyRuleCreateInput!){ createAutoReplyRule(input:$i){ rule { id triggerMode } warnings } }",
                json!({"i": input}),
            )
            .await
    }

    pub async fn rule_id(&self, input: Value) -> i64 {
        let r = self.rule(input).await;
        r.data()["createAutoReplyRule"]["rule"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub async fn handed_over(&self, wa_id: &str) -> bool {
        let conv = self.conversation(wa_id).await;
        automation_hit::Entity::find()
            .filter(automation_hit::Column::ConversationId.eq(conv.id))
            .filter(automation_hit::Column::Kind.eq("handover"))
            .one(&self.app.domain.db)
            .await
            .unwrap()
            .is_some()
    }
}

fn button_ids(m: &message::Model) -> Vec<String> {
    m.payload
        .as_ref()
        .and_then(|p| p.get("buttons"))
        .and_then(Value::as_array)
        .map(|bs| {
            bs.iter()
                .map(|b| b["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_welcome_is_in_the_outbox_when_the_webhook_is_answered_and_sent_once() {
    let d = desk().await;
    d.rule_id(json!({"name": "Welcome", "triggerMode": "FIRST_CONTACT",
        "variants": ["Bonjour {{name}} ! Votre demande n° {{conversation}} est bien reçue."]}))
        .await;
    let who = new_customer();
    d.says(&who, "Bonjour").await;
    // No waiting: the reply was queued in the ingest transaction.
    let bot = d.bot_messages(&who).await;
    assert_eq!(bot.len(), 1);
    let conv = d.conversation(&who).await;
    assert_eq!(
        bot[0].body.as_deref(),
        Some(
            format!(
                "Bonjour Camille ! Votre demande n° {} est bien reçue.",
                conv.id
            )
            .as_str()
        )
    );
    assert_eq!(bot[0].direction, Direction::Outbound);
    assert_eq!(bot[0].status, DeliveryStatus::Queued);
    let queued = outbox::Entity::find()
        .filter(outbox::Column::MessageId.eq(bot[0].id))
        .one(&d.app.domain.db)
        .await
        .unwrap()
        .expect("outbox row");
    assert_eq!(queued.status, OutboxStatus::Pending);
    let run = d.app.domain.run_outbox_once().await.unwrap();
    assert_eq!(run.sent, 1, "{run:?}");
    let sent = d.cloud.requests();
    assert_eq!(sent[0].body["to"], who.as_str());
    assert_eq!(sent[0].body["type"], "text");

    d.says(&who, "Vous êtes là ?").await;
    assert_eq!(
        d.bot_messages(&who).await.len(),
        1,
        "one welcome per conversation"
    );
}

#[tokio::test]
async fn a_keyword_rule_answers_with_quick_reply_buttons() {
    let d = desk().await;
    d.rule_id(json!({"name": "Stock", "triggerMode": "KEYWORD",
        "keywords": ["disponible", "disponibile", "in stock"],
        "variants": ["Oui, il est en stock."], "buttons": ["Buy now", "Check stock"]}))
        .await;
    let who = new_customer();
    d.says(&who, "Ce modèle est-il DISPONIBLE en 42 ?").await;
    let bot = d.bot_messages(&who).await;
    assert_eq!(bot.len(), 1);
    assert_eq!(button_ids(&bot[0]).len(), 2);
    d.app.domain.run_outbox_once().await.unwrap();
    let body = &d.cloud.requests()[0].body;
    assert_eq!(body["type"], "interactive");
    assert_eq!(body["interactive"]["type"], "button");
    let titles: Vec<&str> = body["interactive"]["action"]["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reply"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Buy now", "Check stock"]);

    let other = new_customer();
    d.says(&other, "indisponibles").await;
    assert!(d.bot_messages(&other).await.is_empty(), "whole words only");
}

#[tokio::test]
async fn offline_hours_follow_the_configured_time_zone() {
    let d = desk().await;
    d.rule_id(json!({"name": "Night", "triggerMode": "OFFLINE",
        "schedule": {"timezone": "Asia/Tokyo"},
        "variants": ["We are closed, back at 8:00."]}))
        .await;
    // 14:00 UTC is 23:00 in Tokyo: offline by the default 22:00–08:00.
    d.app.clock.set(utc("2026-12-02T14:00:00Z"));
    let night = new_customer();
    d.says(&night, "hello").await;
    assert_eq!(
        d.replies(&night).await,
        vec!["We are closed, back at 8:00."]
    );
    // 02:00 UTC is 11:00 in Tokyo.
    d.app.clock.set(utc("2026-12-03T02:00:00Z"));
    let day = new_customer();
    d.says(&day, "hello").await;
    assert!(d.replies(&day).await.is_empty());
}

#[tokio::test]
async fn offline_follows_a_business_hours_calendar_when_one_is_given() {
    let d = desk().await;
    let now = d.app.now();
    let open = json!([["09:00", "18:00"]]);
    let cal = business_hours::ActiveModel {
        name: Set("Rome office".into()),
        timezone: Set("Europe/Rome".into()),
        schedule: Set(json!({"mon": open, "tue": open, "wed": open, "thu": open, "fri": open})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&d.app.domain.db)
    .await
    .unwrap();
    d.rule_id(json!({"name": "Closed", "triggerMode": "OFFLINE",
        "schedule": {"businessHoursId": cal.id.to_string()},
        "variants": ["Siamo chiusi."]}))
        .await;
    // Wednesday 10:00 UTC = 11:00 in Rome: open.
    let weekday = new_customer();
    d.says(&weekday, "ciao").await;
    assert!(d.replies(&weekday).await.is_empty());
    // Saturday.
    d.app.clock.set(utc("2026-12-05T10:00:00Z"));
    let saturday = new_customer();
    d.says(&saturday, "ciao").await;
    assert_eq!(d.replies(&saturday).await, vec!["Siamo chiusi."]);
}

#[tokio::test]
async fn a_scheduled_window_answers_on_its_days_and_hours_only() {
    let d = desk().await;
    d.rule_id(json!({"name": "Lunch", "triggerMode": "SCHEDULED",
        "schedule": {"days": [1, 2, 3, 4, 5], "start": "11:30", "end": "13:00", "timezone": "Europe/Rome"},
        "variants": ["Menu del giorno: lasagne."]}))
        .await;
    let cases = [
        ("2026-12-02T11:00:00Z", true),  // Wednesday 12:00 in Rome
        ("2026-12-02T10:29:00Z", false), // 11:29
        ("2026-12-02T12:00:00Z", false), // 13:00, the end is exclusive
        ("2026-12-05T11:00:00Z", false), // Saturday
    ];
    for (at, expected) in cases {
        d.app.clock.set(utc(at));
        let who = new_customer();
        d.says(&who, "ciao").await;
        assert_eq!(!d.replies(&who).await.is_empty(), expected, "{at}");
    }
}

#[tokio::test]
async fn the_highest_priority_rule_wins_and_a_rule_in_the_customer_language_is_preferred() {
    let d = desk().await;
    d.rule_id(
        json!({"name": "Low", "triggerMode": "KEYWORD", "keywords": ["prix", "prezzo"],
        "variants": ["low"], "priority": 1}),
    )
    .await;
    d.rule_id(
        json!({"name": "High", "triggerMode": "KEYWORD", "keywords": ["prix"],
        "variants": ["high"], "priority": 5}),
    )
    .await;
    d.rule_id(json!({"name": "Welcome", "triggerMode": "FIRST_CONTACT",
        "variants": ["welcome"], "priority": 0}))
        .await;
    let who = new_customer();
    d.says(&who, "Quel est le prix ?").await;
    assert_eq!(d.replies(&who).await, vec!["high"]);

    d.rule_id(
        json!({"name": "Prezzo IT", "triggerMode": "KEYWORD", "keywords": ["prezzo"],
        "variants": ["prezzo in italiano"], "priority": 1, "language": "it"}),
    )
    .await;
    let italian = new_customer();
    d.says(&italian, "Ciao, vorrei sapere il prezzo di questo")
        .await;
    assert_eq!(
        d.conversation(&italian).await.language.as_deref(),
        Some("it")
    );
    assert_eq!(d.replies(&italian).await, vec!["prezzo in italiano"]);
}

#[tokio::test]
async fn replies_over_256_characters_are_refused_and_late_key_content_is_flagged() {
    let d = desk().await;
    let base = json!({"name": "FAQ", "triggerMode": "KEYWORD", "keywords": ["taille"]});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let r = d.rule(with(json!({"variants": ["é".repeat(257)]}))).await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "variants");
    let r = d.rule(with(json!({"variants": ["é".repeat(256)]}))).await;
    assert_eq!(r.data()["createAutoReplyRule"]["warnings"], json!([]));

    let late = format!("{} guide: https://shop.example/tailles", "x".repeat(150));
    let r = d
        .rule(with(
            json!({"variants": ["Guide: https://shop.example/tailles", late]}),
        ))
        .await;
    let warnings = r.data()["createAutoReplyRule"]["warnings"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains("variant 2"));
    assert!(warnings[0].as_str().unwrap().contains("URL"));

    for (extra, field) in [
        (
            json!({"variants": ["a", "b", "c", "d", "e", "f"]}),
            "variants",
        ),
        (
            json!({"variants": ["ok"], "buttons": ["1", "2", "3", "4"]}),
            "buttons",
        ),
        (
            json!({"variants": ["ok"], "buttons": ["This title is too long"]}),
            "buttons",
        ),
        (json!({"variants": ["ok"], "keywords": []}), "keywords"),
    ] {
        let r = d.rule(with(extra.clone())).await;
        r.assert_code("BAD_USER_INPUT");
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{extra}");
    }
    let r = d
        .rule(
            json!({"name": "Lunch", "triggerMode": "SCHEDULED", "variants": ["x"],
            "schedule": {"start": "11:30", "end": "25:00"}}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "schedule.end");

    let (_, editor) = d.app.staff("Eddie", "EDITOR").await;
    let r = d
        .app
        .gql(
            &editor,
            "mutation($i: AutoReplyRuleCreateInput!){ createAutoReplyRule(input:$i){ warnings } }",
            json!({"i": with(json!({"variants": ["ok"]}))}),
        )
        .await;
    r.assert_code("FORBIDDEN");
}

#[tokio::test]
async fn variants_rotate_and_never_repeat_for_a_contact() {
    let d = desk().await;
    d.rule_id(
        json!({"name": "Hours", "triggerMode": "KEYWORD", "keywords": ["horaires"],
        "variants": ["A", "B", "C"]}),
    )
    .await;
    let who = new_customer();
    let mut got = vec![];
    for _ in 0..8 {
        d.says(&who, "vos horaires ?").await;
        // Each in a new 24 h, so the daily limit never applies.
        d.app.clock.advance(Duration::hours(25));
        got = d.replies(&who).await;
    }
    assert_eq!(got.len(), 8, "{got:?}");
    for pair in got.windows(2) {
        assert_ne!(pair[0], pair[1], "{got:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert!(distinct.len() >= 2, "{got:?}");
}

#[tokio::test]
async fn three_automated_replies_a_day_then_a_human_takes_over() {
    let d = desk().await;
    d.rule_id(json!({"name": "Delivery", "triggerMode": "KEYWORD",
        "keywords": ["livraison"], "variants": ["Livraison en 48 h."], "buttons": ["Suivi"]}))
        .await;
    let who = new_customer();
    for _ in 0..3 {
        d.says(&who, "livraison ?").await;
        d.app.clock.advance(Duration::hours(1));
    }
    let bot = d.bot_messages(&who).await;
    assert_eq!(bot.len(), 3);
    assert!(!button_ids(&bot[0]).contains(&"auto:agent".to_string()));
    assert_eq!(
        button_ids(&bot[1]),
        vec![
            format!("auto:{}:0", bot[1].auto_rule_id.unwrap()),
            "auto:agent".into()
        ],
        "the second reply offers an agent"
    );
    assert!(!d.handed_over(&who).await);
    d.says(&who, "livraison ??").await;
    assert_eq!(d.bot_messages(&who).await.len(), 3, "no fourth");
    assert!(d.handed_over(&who).await);
    // Handed over: even a day later the bot stays quiet in this conversation.
    d.app.clock.advance(Duration::hours(30));
    d.says(&who, "livraison").await;
    assert_eq!(d.bot_messages(&who).await.len(), 3);
    let conv = d.conversation(&who).await;
    assert!(conv.assignee_id.is_none(), "waits in the queue for a human");

    let r = d
        .app
        .gql(
            &d.app.admin_token,
            "query($f:DateTime!,$t:DateTime!){ automationReport(from:$f,to:$t){ automatedReplies handovers keywordHits { keyword hits } } }",
            json!({"f": "2026-12-01T00:00:00Z", "t": "2026-12-10T00:00:00Z"}),
        )
        .await;
    let report = &r.data()["automationReport"];
    assert_eq!(report["automatedReplies"], 3);
    assert_eq!(report["handovers"], 1);
    assert_eq!(
        report["keywordHits"],
        json!([{"keyword": "livraison", "hits": 3}])
    );
}

/// Messages ingested together are automated one after the other: the cap,
/// the handover and the conversation's bookkeeping see the earlier ones.
#[tokio::test]
async fn messages_of_one_delivery_are_automated_in_order_under_the_daily_cap() {
    let d = desk().await;
    d.rule_id(json!({"name": "Delivery", "triggerMode": "KEYWORD",
        "keywords": ["livraison"], "variants": ["Livraison en 48 h."]}))
        .await;
    let who = new_customer();
    let text = |t: &str| json!({"type": "text", "text": {"body": t}});
    d.inbound_all(
        &who,
        (0..5).map(|i| text(&format!("livraison {i} ?"))).collect(),
    )
    .await;
    let bot = d.bot_messages(&who).await;
    assert_eq!(bot.len(), 3, "three replies, then a human");
    assert!(d.handed_over(&who).await);
    let conv = d.conversation(&who).await;
    let inbound = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conv.id))
        .filter(message::Column::Direction.eq(entity::Direction::Inbound))
        .order_by_asc(message::Column::Id)
        .all(&d.app.domain.db)
        .await
        .unwrap();
    let bodies: Vec<_> = inbound.iter().filter_map(|m| m.body.clone()).collect();
    assert_eq!(
        bodies,
        (0..5)
            .map(|i| format!("livraison {i} ?"))
            .collect::<Vec<_>>(),
        "all five in one conversation, in order"
    );
    assert!(
        bot[0].id > inbound[4].id,
        "replies come after what they answer"
    );
    let last = inbound[4].created_at;
    assert_eq!(conv.last_message_at, Some(last));
    assert_eq!(conv.last_inbound_at, Some(last));
    let contact = d.contact(&who).await;
    assert_eq!(contact.last_inbound_at, Some(last));
    assert_eq!(contact.profile_name.as_deref(), Some("Camille"));

    // The next delivery finds the same conversation and keeps the cap.
    d.inbound_all(&who, vec![text("livraison ?"), text("STOP")])
        .await;
    assert_eq!(d.bot_messages(&who).await.len(), 3);
    assert_eq!(d.conversation(&who).await.id, conv.id);
    assert_eq!(
        d.contact(&who).await.consent,
        entity::ConsentState::OptedOut
    );
}

/// The welcomes of one delivery are written together: each goes to its own
/// conversation, with its outbox row and its hit.
#[tokio::test]
async fn new_customers_of_one_delivery_each_get_their_own_welcome() {
    let d = desk().await;
    let rule = d
        .rule_id(json!({"name": "Welcome", "triggerMode": "FIRST_CONTACT",
            "variants": ["Bonjour {{name}}, dossier {{conversation}}."]}))
        .await;
    let who: Vec<String> = (0..4).map(|_| new_customer()).collect();
    let hello = json!({"type": "text", "text": {"body": "Bonjour"}});
    d.inbound_many(who.iter().map(|w| (w.clone(), hello.clone())).collect())
        .await;
    for w in &who {
        let conv = d.conversation(w).await;
        let bot = d.bot_messages(w).await;
        assert_eq!(bot.len(), 1, "one welcome for {w}");
        assert_eq!(bot[0].conversation_id, conv.id);
        assert_eq!(
            bot[0].body.as_deref(),
            Some(format!("Bonjour Camille, dossier {}.", conv.id).as_str())
        );
        assert_eq!(bot[0].auto_rule_id, Some(rule));
        assert_eq!(conv.last_message_at, Some(bot[0].created_at));
        let queued = outbox::Entity::find()
            .filter(outbox::Column::MessageId.eq(bot[0].id))
            .count(&d.app.domain.db)
            .await
            .unwrap();
        assert_eq!(queued, 1, "one outbox row for {w}");
        let hits = automation_hit::Entity::find()
            .filter(automation_hit::Column::MessageId.eq(bot[0].id))
            .all(&d.app.domain.db)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].conversation_id, conv.id);
        assert_eq!(hits[0].contact_id, conv.contact_id);
    }
}

#[tokio::test]
async fn talk_to_an_agent_hands_over_at_once_by_button_or_by_word() {
    let d = desk().await;
    d.rule_id(
        json!({"name": "Sizes", "triggerMode": "KEYWORD", "keywords": ["taglia", "taille"],
        "variants": ["Guida taglie: S, M, L."]}),
    )
    .await;
    let who = new_customer();
    d.says(&who, "che taglia?").await;
    d.says(&who, "e la taglia L?").await;
    let bot = d.bot_messages(&who).await;
    assert_eq!(button_ids(&bot[1]), vec!["auto:agent"]);
    d.taps(&who, "auto:agent", "Talk to an agent").await;
    assert!(d.handed_over(&who).await);
    d.says(&who, "taglia XL?").await;
    assert_eq!(d.bot_messages(&who).await.len(), 2);

    for words in [
        "Je veux parler à un HUMAIN",
        "operatore per favore",
        "an agent please",
    ] {
        let other = new_customer();
        d.says(&other, words).await;
        assert!(d.handed_over(&other).await, "{words}");
        d.says(&other, "taille ?").await;
        assert!(d.bot_messages(&other).await.is_empty(), "{words}");
    }
}

#[tokio::test]
async fn placeholders_and_live_variables_take_effect_at_once() {
    let d = desk().await;
    let now = d.app.now();
    sla_policy::ActiveModel {
        name: Set("Standard".into()),
        first_response_secs: Set(600),
        resolution_secs: Set(3600),
        warn_percent: Set(80),
        topic_tolerances: Set(json!({})),
        pause_when_pending: Set(false),
        escalation_kind: Set(Default::default()),
        notify_customer_on_breach: Set(false),
        is_default: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&d.app.domain.db)
    .await
    .unwrap();
    let set = |value: String| {
        let app = &d.app;
        async move {
            app.gql(
                &app.admin_token,
                "mutation($v:String!){ setAutomationVariable(key:\"stock_sku42\", value:$v){ key value } }",
                json!({"v": value}),
            )
            .await
        }
    };
    set("7".into()).await.data();
    d.rule_id(json!({"name": "Stock", "triggerMode": "KEYWORD", "keywords": ["sku42"],
        "variants": ["{{name}}, n. {{conversation}}: {{if stock_sku42 < 10}}limited pre-order{{else}}in stock{{end}}. Reply within {{sla_target}}."]}))
        .await;
    let first = new_customer();
    d.says(&first, "SKU42 ?").await;
    let conv = d.conversation(&first).await;
    assert_eq!(
        d.replies(&first).await,
        vec![format!(
            "Camille, n. {}: limited pre-order. Reply within 10 minutes.",
            conv.id
        )]
    );
    set("25".into()).await.data();
    let second = new_customer();
    d.says(&second, "sku42").await;
    assert!(d.replies(&second).await[0].contains(": in stock."));

    let r = set("x".repeat(5 * 1024 + 1)).await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "value");
    let (_, agent) = d.app.staff("Agnes", "AGENT").await;
    d.app
        .gql(
            &agent,
            "mutation{ setAutomationVariable(key:\"stock_sku42\", value:\"1\"){ key } }",
            json!({}),
        )
        .await
        .assert_code("FORBIDDEN");
    let audit = d
        .app
        .gql(
            &d.app.admin_token,
            "{ auditLog(filter:{action:\"automation_variable.set\"}) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit.data()["auditLog"]["edges"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn opted_out_contacts_get_nothing_automated() {
    let d = desk().await;
    d.rule_id(json!({"name": "Welcome", "triggerMode": "FIRST_CONTACT", "variants": ["Hi"]}))
        .await;
    d.rule_id(json!({"name": "FAQ", "triggerMode": "KEYWORD", "keywords": ["price"], "variants": ["10 €"]}))
        .await;
    let who = new_customer();
    d.says(&who, "STOP").await;
    d.says(&who, "price?").await;
    assert!(d.bot_messages(&who).await.is_empty());
    d.says(&who, "START").await;
    d.says(&who, "price?").await;
    assert_eq!(d.replies(&who).await, vec!["10 €"]);
}

#[tokio::test]
async fn keyword_routing_works_across_languages_and_accents_before_routing_runs() {
    let d = desk().await;
    let returns = d
        .app
        .gql(
            &d.app.admin_token,
            "mutation { createDepartment(input:{name:\"Resi\", keywords:[\"retour\",\"reso\",\"return\",\"devolución\",\"devolução\"]}) { id } }",
            json!({}),
        )
        .await
        .data()["createDepartment"]["id"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    let billing = d.app.department("Billing", "SMART").await;
    for (text, department, topic) in [
        ("RETOUR de colis", Some(returns), Some("return")),
        ("Vorrei fare un reso", Some(returns), Some("return")),
        ("I want to RETURN this", Some(returns), Some("return")),
        ("quiero una devolucion", Some(returns), Some("return")),
        ("Quero fazer uma DEVOLUÇÃO", Some(returns), Some("return")),
        ("Je vais retourner le colis", None, Some("logistics")),
        ("Où est ma facture ?", Some(billing), Some("billing")),
        ("¿Qué talla es?", None, Some("size")),
    ] {
        let who = new_customer();
        d.says(&who, text).await;
        let conv = d.conversation(&who).await;
        assert_eq!(conv.department_id, department, "{text}");
        assert_eq!(conv.topic.as_deref(), topic, "{text}");
    }
}

#[tokio::test]
async fn a_lead_flow_asks_its_questions_stores_the_answers_and_assigns_the_best_agent() {
    let d = desk().await;
    let sales = d.app.department("Vendite", "SMART").await;
    let (_kitchens, _) = d.app.agent("Kira", &["cucina"], &[sales], 3).await;
    let (bathrooms, _) = d
        .app
        .agent("Bruno", &["bagno", "Milano"], &[sales], 3)
        .await;
    let r = d
        .app
        .gql(
            &d.app.admin_token,
            "mutation($i: LeadFlowCreateInput!){ createLeadFlow(input:$i){ id questions { field } } }",
            json!({"i": {"name": "Preventivo", "departmentId": sales.to_string(),
                "triggerKeywords": ["preventivo", "devis", "quote"],
                "questions": [
                    {"field": "area", "question": "In che zona si trova?"},
                    {"field": "budget", "question": "Qual è il suo budget?"},
                    {"field": "room", "question": "Quale stanza?"},
                ]}}),
        )
        .await;
    assert_eq!(
        r.data()["createLeadFlow"]["questions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let who = new_customer();
    d.says(&who, "Buongiorno, vorrei un preventivo").await;
    assert_eq!(d.replies(&who).await, vec!["In che zona si trova?"]);
    d.says(&who, "Milano").await;
    d.says(&who, "5000 euro").await;
    assert_eq!(d.replies(&who).await.len(), 3);
    d.says(&who, "Il bagno").await;

    let conv = d.conversation(&who).await;
    assert_eq!(
        conv.assignee_id,
        Some(bathrooms),
        "skills bagno + Milano match best"
    );
    assert_eq!(conv.department_id, Some(sales));
    let fields = d.contact(&who).await.fields;
    assert_eq!(fields["area"], "Milano");
    assert_eq!(fields["budget"], "5000 euro");
    assert_eq!(fields["room"], "Il bagno");
    let notes = note::Entity::find()
        .filter(note::Column::ConversationId.eq(conv.id))
        .all(&d.app.domain.db)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].body,
        "Lead (Preventivo) | area: Milano | budget: 5000 euro | room: Il bagno"
    );
    let run = lead_flow_run::Entity::find()
        .filter(lead_flow_run::Column::ConversationId.eq(conv.id))
        .one(&d.app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, entity::FlowRunStatus::Completed);
    assert_eq!(
        d.replies(&who).await.len(),
        3,
        "no message after the last answer"
    );
}

#[tokio::test]
async fn canned_responses_fill_the_same_placeholders_and_variables_in_send_message() {
    let d = desk().await;
    let app = &d.app;
    app.gql(
        &app.admin_token,
        "mutation{ setAutomationVariable(key:\"stock\", value:\"3\"){ key } }",
        json!({}),
    )
    .await
    .data();
    let (_, editor) = app.staff("Edna", "EDITOR").await;
    let r = app
        .gql(
            &editor,
            "mutation{ createCannedResponse(input:{shortcut:\"stock\", title:\"Stock\", body:\"{{name}}: {{if stock < 10}}limited pre-order{{else}}in stock{{end}} (n. {{conversation}})\"}){ id } }",
            json!({}),
        )
        .await;
    r.data();
    let who = new_customer();
    d.says(&who, "Bonjour").await;
    let conv = d.conversation(&who).await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation($c:ID!){ sendMessage(input:{conversationId:$c, text:\"/stock\"}){ body } }",
            json!({"c": conv.id.to_string()}),
        )
        .await;
    assert_eq!(
        r.data()["sendMessage"]["body"],
        format!("Camille: limited pre-order (n. {})", conv.id)
    );
}

#[tokio::test]
async fn the_automation_rate_counts_conversations_closed_without_a_human() {
    let d = desk().await;
    let app = &d.app;
    d.rule_id(
        json!({"name": "Hours", "triggerMode": "KEYWORD", "keywords": ["orari"],
        "variants": ["Aperti 9-18."]}),
    )
    .await;
    let resolve = |id: i64| async move {
        app.gql(
            &app.admin_token,
            "mutation($c:ID!){ resolve(conversationId:$c){ status } }",
            json!({"c": id.to_string()}),
        )
        .await
        .data();
    };
    let bot_only = new_customer();
    d.says(&bot_only, "orari?").await;
    resolve(d.conversation(&bot_only).await.id).await;
    let human = new_customer();
    d.says(&human, "orari? e poi un'altra domanda").await;
    let conv = d.conversation(&human).await.id;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ sendMessage(input:{conversationId:$c, text:\"Ecco!\"}){ id } }",
        json!({"c": conv.to_string()}),
    )
    .await
    .data();
    resolve(conv).await;
    let r = app
        .gql(
            &app.admin_token,
            "{ automationReport(from:\"2026-12-01T00:00:00Z\", to:\"2026-12-03T00:00:00Z\"){ conversationsClosed closedWithoutHuman automationRate keywordHits { keyword hits } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["automationReport"],
        json!({"conversationsClosed": 2, "closedWithoutHuman": 1, "automationRate": 0.5,
            "keywordHits": [{"keyword": "orari", "hits": 2}]})
    );
    app.gql(
        &app.admin_token,
        "{ automationReport(from:\"2026-12-03T00:00:00Z\", to:\"2026-12-01T00:00:00Z\"){ automationRate } }",
        json!({}),
    )
    .await
    .assert_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn automated_messages_to_a_new_customer_stop_at_five_a_minute_and_resume_after_it() {
    let d = desk().await;
    d.rule_id(json!({"name": "Welcome", "triggerMode": "FIRST_CONTACT",
        "variants": ["Benvenuto!"]}))
        .await;
    let questions: Vec<Value> = (1..=7)
        .map(|i| json!({"field": format!("q{i}"), "question": format!("Domanda {i}?")}))
        .collect();
    d.app
        .gql(
            &d.app.admin_token,
            "mutation($i: LeadFlowCreateInput!){ createLeadFlow(input:$i){ id } }",
            json!({"i": {"name": "Preventivo", "triggerKeywords": ["preventivo"],
                "questions": questions}}),
        )
        .await
        .data();
    let who = new_customer();
    let start = d.app.now();
    // Six automated messages asked for within 30 seconds: the welcome, then
    // questions 1 to 5.
    for text in ["Buongiorno", "Vorrei un preventivo", "a1", "a2", "a3", "a4"] {
        d.says(&who, text).await;
        d.app.clock.advance(Duration::seconds(5));
    }
    let replies = d.replies(&who).await;
    assert_eq!(
        replies,
        vec![
            "Benvenuto!",
            "Domanda 1?",
            "Domanda 2?",
            "Domanda 3?",
            "Domanda 4?"
        ],
        "the sixth is held back"
    );
    let bot = d.bot_messages(&who).await;
    let queued = outbox::Entity::find()
        .filter(outbox::Column::MessageId.is_in(bot.iter().map(|m| m.id)))
        .all(&d.app.domain.db)
        .await
        .unwrap();
    assert_eq!(queued.len(), 5);
    let conv = d.conversation(&who).await;
    let inbound = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conv.id))
        .filter(message::Column::Direction.eq(Direction::Inbound))
        .all(&d.app.domain.db)
        .await
        .unwrap();
    assert_eq!(inbound.len(), 6, "every customer message is stored");
    assert_eq!(
        d.contact(&who).await.fields["q4"],
        "a4",
        "the answer is kept"
    );

    // A minute after the welcome, one more may go: the held question is
    // asked, and the message that made room is not taken as its answer.
    d.app.clock.set(start + Duration::seconds(61));
    d.says(&who, "?").await;
    let replies = d.replies(&who).await;
    assert_eq!(replies.len(), 6);
    assert_eq!(replies[5], "Domanda 5?");
    assert!(d.contact(&who).await.fields.get("q5").is_none());

    d.app.clock.set(start + Duration::seconds(130));
    d.says(&who, "a5").await;
    assert_eq!(d.replies(&who).await.last().unwrap(), "Domanda 6?");
    assert_eq!(d.contact(&who).await.fields["q5"], "a5");
}

#[tokio::test]
async fn conversations_only_the_faq_answered_are_resolved_after_an_hour_of_quiet() {
    let d = desk().await;
    let app = &d.app;
    d.rule_id(
        json!({"name": "Hours", "triggerMode": "KEYWORD", "keywords": ["orari"],
        "variants": ["Aperti 9-18."], "priority": 5}),
    )
    .await;
    d.rule_id(json!({"name": "Welcome", "triggerMode": "FIRST_CONTACT",
        "variants": ["Benvenuto!"], "priority": 0}))
        .await;
    let start = app.now();
    let faq = new_customer();
    d.says(&faq, "orari?").await;
    let welcome_only = new_customer();
    d.says(&welcome_only, "Buongiorno, il mio ordine non è arrivato")
        .await;
    let agent_answered = new_customer();
    d.says(&agent_answered, "orari?").await;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ sendMessage(input:{conversationId:$c, text:\"Ecco!\"}){ id } }",
        json!({"c": d.conversation(&agent_answered).await.id.to_string()}),
    )
    .await
    .data();
    let handed_over = new_customer();
    d.says(&handed_over, "orari?").await;
    d.says(&handed_over, "operatore per favore").await;
    assert!(d.handed_over(&handed_over).await);
    let wrote_again = new_customer();
    d.says(&wrote_again, "orari?").await;

    app.clock.set(start + Duration::minutes(30));
    d.says(&wrote_again, "e il sabato?").await;
    app.clock.set(start + Duration::minutes(59));
    assert!(
        app.domain
            .auto_close_bot_answered()
            .await
            .unwrap()
            .is_empty()
    );

    app.clock.set(start + Duration::minutes(61));
    let faq_conv = d.conversation(&faq).await;
    assert_eq!(
        app.domain.auto_close_bot_answered().await.unwrap(),
        vec![faq_conv.id],
        "only the conversation the FAQ answered and nobody else touched"
    );
    let closed = d.conversation(&faq).await;
    assert_eq!(closed.status, entity::ConversationStatus::Resolved);
    assert_eq!(closed.resolved_at, Some(app.now()));
    assert_eq!(
        d.replies(&faq).await,
        vec!["Aperti 9-18."],
        "no survey to a customer who went quiet"
    );
    for open in [&welcome_only, &agent_answered, &handed_over, &wrote_again] {
        assert_eq!(
            d.conversation(open).await.status,
            entity::ConversationStatus::Open
        );
    }
    assert!(
        app.domain
            .auto_close_bot_answered()
            .await
            .unwrap()
            .is_empty(),
        "resolved once"
    );
    let r = app
        .gql(
            &app.admin_token,
            "{ automationReport(from:\"2026-12-01T00:00:00Z\", to:\"2026-12-03T00:00:00Z\"){ conversationsClosed closedWithoutHuman } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["automationReport"],
        json!({"conversationsClosed": 1, "closedWithoutHuman": 1})
    );

    // The customer who wrote again is answered by no FAQ: a person takes it.
    app.clock.set(start + Duration::minutes(200));
    assert!(
        app.domain
            .auto_close_bot_answered()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn auto_close_can_be_turned_off() {
    let d = desk_with(|c| c.auto_close_minutes = 0).await;
    d.rule_id(
        json!({"name": "Hours", "triggerMode": "KEYWORD", "keywords": ["orari"],
        "variants": ["Aperti 9-18."]}),
    )
    .await;
    let who = new_customer();
    d.says(&who, "orari?").await;
    d.app.clock.advance(Duration::days(2));
    assert!(
        d.app
            .domain
            .auto_close_bot_answered()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        d.conversation(&who).await.status,
        entity::ConversationStatus::Open
    );
}
