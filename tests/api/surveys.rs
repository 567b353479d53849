//! CSAT / NPS surveys on resolution: sent as a list over WhatsApp, answered
//! by choice or free text, recorded on the conversation and the agent, one
//! per resolution, expiring when unanswered.

use chrono::Duration;
use entity::{SurveyKind, SurveyStatus, conversation, survey};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::automation::{Desk, desk, desk_with, new_customer};

/// A customer whose conversation an agent handled and resolved; returns the
/// conversation id and the agent's id.
async fn resolved(d: &Desk, who: &str) -> (i64, i64) {
    d.says(who, "Bonjour, où est mon colis ?").await;
    let conv = d.conversation(who).await;
    let (agent, _) = d
        .app
        .staff(&format!("Agent{}", &who[who.len() - 6..]), "AGENT")
        .await;
    d.app
        .gql(
            &d.app.admin_token,
            "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
            json!({"c": conv.id.to_string(), "a": agent.to_string()}),
        )
        .await
        .data();
    d.app
        .gql(
            &d.app.admin_token,
            "mutation($c:ID!){ resolve(conversationId:$c){ status } }",
            json!({"c": conv.id.to_string()}),
        )
        .await
        .data();
    (conv.id, agent)
}

async fn surveys_of(d: &Desk, conversation_id: i64) -> Vec<survey::Model> {
    survey::Entity::find()
        .filter(survey::Column::ConversationId.eq(conversation_id))
        .order_by_asc(survey::Column::Id)
        .all(&d.app.domain.db)
        .await
        .unwrap()
}

async fn conversation_row(d: &Desk, id: i64) -> conversation::Model {
    conversation::Entity::find_by_id(id)
        .one(&d.app.domain.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn resolution_sends_a_csat_list_of_five_and_one_survey_per_resolution() {
    let d = desk().await;
    let who = new_customer();
    let (conv, agent) = resolved(&d, &who).await;
    let surveys = surveys_of(&d, conv).await;
    assert_eq!(surveys.len(), 1);
    assert_eq!(surveys[0].kind, SurveyKind::Csat);
    assert_eq!(surveys[0].status, SurveyStatus::Sent);
    assert_eq!(surveys[0].agent_id, Some(agent));
    d.app.domain.run_outbox_once().await.unwrap();
    let sent = d.cloud.requests();
    let body = &sent.last().unwrap().body;
    assert_eq!(body["interactive"]["type"], "list");
    let rows: Vec<&str> = body["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rows, vec!["csat:5", "csat:4", "csat:3", "csat:2", "csat:1"]);

    // Reopened and resolved again: a new round, a new survey; never two per round.
    for m in ["reopen", "resolve"] {
        d.app
            .gql(
                &d.app.admin_token,
                &format!("mutation($c:ID!){{ {m}(conversationId:$c){{ status }} }}"),
                json!({"c": conv.to_string()}),
            )
            .await
            .data();
    }
    let surveys = surveys_of(&d, conv).await;
    assert_eq!(surveys.len(), 2);
    assert_eq!(surveys[1].round, 1);
}

#[tokio::test]
async fn answers_are_recorded_in_every_form_on_the_conversation_and_the_agent() {
    let d = desk().await;
    let answers: [(Value, i32); 5] = [
        (json!({"type": "text", "text": {"body": "5"}}), 5),
        (json!({"type": "text", "text": {"body": "cinq"}}), 5),
        (json!({"type": "text", "text": {"body": "⭐⭐⭐⭐"}}), 4),
        (json!({"type": "text", "text": {"body": "2/5"}}), 2),
        (
            json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "csat:3", "title": "⭐⭐⭐ 3"}}}),
            3,
        ),
    ];
    for (answer, score) in answers {
        let who = new_customer();
        let (conv, agent) = resolved(&d, &who).await;
        d.inbound(&who, answer.clone()).await;
        let s = &surveys_of(&d, conv).await[0];
        assert_eq!(s.status, SurveyStatus::Answered, "{answer}");
        assert_eq!(s.score, Some(score), "{answer}");
        assert_eq!(s.agent_id, Some(agent));
        let row = conversation_row(&d, conv).await;
        assert_eq!(row.csat, Some(score), "{answer}");
        assert_eq!(
            d.conversation(&who).await.id,
            conv,
            "the answer opens no new conversation"
        );
    }
}

#[tokio::test]
async fn an_expired_survey_takes_no_answer_and_other_messages_open_a_new_conversation() {
    let d = desk_with(|c| c.survey_expiry_hours = 2).await;
    let who = new_customer();
    let (conv, _) = resolved(&d, &who).await;
    d.says(&who, "Merci, mais j'ai une autre question").await;
    assert_ne!(d.conversation(&who).await.id, conv, "not an answer");
    assert_eq!(surveys_of(&d, conv).await[0].status, SurveyStatus::Sent);

    d.app.clock.advance(Duration::hours(3));
    assert_eq!(d.app.domain.expire_surveys().await.unwrap(), 1);
    d.says(&who, "5").await;
    let s = &surveys_of(&d, conv).await[0];
    assert_eq!(s.status, SurveyStatus::Expired);
    assert_eq!(s.score, None);
    assert_eq!(conversation_row(&d, conv).await.csat, None);
}

#[tokio::test]
async fn nps_follows_the_csat_answer_when_configured() {
    let d = desk_with(|c| c.nps_survey = true).await;
    let who = new_customer();
    let (conv, _) = resolved(&d, &who).await;
    d.says(&who, "⭐⭐⭐⭐⭐").await;
    let surveys = surveys_of(&d, conv).await;
    assert_eq!(surveys.len(), 2);
    assert_eq!(surveys[1].kind, SurveyKind::Nps);
    d.says(&who, "dieci").await;
    let row = conversation_row(&d, conv).await;
    assert_eq!((row.csat, row.nps), (Some(5), Some(10)));
    let r = d
        .app
        .gql(
            &d.app.admin_token,
            "query($c:ID!){ surveys(conversationId:$c){ kind status score } }",
            json!({"c": conv.to_string()}),
        )
        .await;
    assert_eq!(
        r.data()["surveys"],
        json!([{"kind": "CSAT", "status": "ANSWERED", "score": 5}, {"kind": "NPS", "status": "ANSWERED", "score": 10}])
    );
}

#[tokio::test]
async fn opted_out_customers_get_no_survey() {
    let d = desk().await;
    let who = new_customer();
    d.says(&who, "STOP").await;
    let (conv, _) = resolved(&d, &who).await;
    assert!(surveys_of(&d, conv).await.is_empty());
}

#[tokio::test]
async fn an_answer_is_queued_for_crm_webhooks_subscribed_to_it() {
    let d = desk_with(|c| {
        c.webhooks_allow_http = true;
        c.webhooks_worker = false;
    })
    .await;
    d.app
        .gql(
            &d.app.admin_token,
            "mutation { createWebhookSubscription(input:{name:\"CRM\", url:\"http://127.0.0.1:9/hook\", eventTypes:[SURVEY_ANSWERED]}) { secret } }",
            json!({}),
        )
        .await
        .data();
    let who = new_customer();
    let (conv, agent) = resolved(&d, &who).await;
    d.inbound(&who, json!({"type": "text", "text": {"body": "4"}}))
        .await;
    let rows = entity::webhook_delivery::Entity::find()
        .all(&d.app.domain.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].event_type, "survey.answered");
    let data = &rows[0].payload["data"];
    assert_eq!(data["conversationId"], conv.to_string());
    assert_eq!(data["agentId"], agent.to_string());
    assert_eq!(data["score"], 4);
}
