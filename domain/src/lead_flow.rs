//! Lead pre-qualification flows: a message with one of a flow's trigger
//! keywords (e.g. "devis", "preventivo", "quote") starts it; the customer is
//! asked each question in order (e.g. area, budget, size, timing), each
//! answer is stored on the run and on the contact's structured fields under
//! the question's `field`; after the last one the conversation goes to the
//! flow's department and is assigned to the agent whose skills best match
//! the answers (then least loaded, among those with room), with a summary
//! note. A flow runs once per conversation; its questions do not count
//! against the auto-reply limit, but do against the new-customer sending
//! limit: a question held back by it is asked at the customer's next message.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{
    AssignmentKind, FlowRunStatus, Presence, Role, contact, conversation, department, lead_flow,
    lead_flow_run, note, user,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::assignment::{AssignExtra, assign_if, assignment_state, record_history};
use crate::audit::{self, Change};
use crate::autoreply::engine::Automated;
use crate::autoreply::parse_keywords;
use crate::events::{EventPayload, Scope};
use crate::keywords::{Words, fold};
use crate::outbound::automated::{self, Origin};
use crate::{Actor, Capability, Domain, DomainError, Result};

pub const MAX_QUESTIONS: usize = 10;
pub const MAX_QUESTION_CHARS: usize = 1024;
pub const MAX_ANSWER_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// The contact field the answer is stored under, e.g. `budget`.
    pub field: String,
    pub question: String,
}

#[derive(Debug, Clone, Default)]
pub struct LeadFlowInput {
    pub name: Option<String>,
    /// `Some(None)` clears the department.
    pub department_id: Option<Option<i64>>,
    pub trigger_keywords: Option<Vec<String>>,
    pub questions: Option<Vec<Question>>,
    pub is_active: Option<bool>,
}

pub fn questions_of(flow: &lead_flow::Model) -> Vec<Question> {
    serde_json::from_value(flow.questions.clone()).unwrap_or_default()
}

fn parse_questions(list: &[Question]) -> Result<Vec<Question>> {
    if list.is_empty() || list.len() > MAX_QUESTIONS {
        return Err(DomainError::invalid(
            "questions",
            format!("1 to {MAX_QUESTIONS} questions"),
        ));
    }
    let mut fields = BTreeSet::new();
    list.iter()
        .map(|q| {
            let field = q.field.trim().to_lowercase();
            let ok = !field.is_empty()
                && field.len() <= 40
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(DomainError::invalid(
                    "questions.field",
                    "1 to 40 letters, digits or _ (e.g. budget)",
                ));
            }
            if !fields.insert(field.clone()) {
                return Err(DomainError::invalid(
                    "questions.field",
                    format!("{field} is asked twice"),
                ));
            }
            let n = q.question.trim().chars().count();
            if n == 0 || n > MAX_QUESTION_CHARS {
                return Err(DomainError::invalid(
                    "questions.question",
                    format!("1 to {MAX_QUESTION_CHARS} characters"),
                ));
            }
            Ok(Question {
                field,
                question: q.question.trim().to_string(),
            })
        })
        .collect()
}

fn parse_name(v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 80 {
        return Err(DomainError::invalid("name", "must be 1 to 80 characters"));
    }
    Ok(v.to_string())
}

fn apply(row: &mut lead_flow::ActiveModel, input: LeadFlowInput) -> Result<()> {
    if let Some(v) = &input.name {
        row.name = Set(parse_name(v)?);
    }
    if let Some(v) = input.department_id {
        row.department_id = Set(v);
    }
    if let Some(v) = &input.trigger_keywords {
        let k = parse_keywords("triggerKeywords", v)?;
        if k.is_empty() {
            return Err(DomainError::invalid(
                "triggerKeywords",
                "at least one keyword starts the flow",
            ));
        }
        row.trigger_keywords = Set(json!(k));
    }
    if let Some(v) = &input.questions {
        row.questions = Set(json!(parse_questions(v)?));
    }
    if let Some(v) = input.is_active {
        row.is_active = Set(v);
    }
    Ok(())
}

/// How well an agent's skills match the answers and the department: the
/// number of its skills found among their words.
pub fn skill_score(skills: &[String], words: &Words) -> usize {
    skills.iter().filter(|s| words.contains(s)).count()
}

/// "Lead | area: Milano | budget: 5000 €": at most 300 characters (a note).
pub fn summary(flow_name: &str, questions: &[Question], answers: &Value) -> String {
    let mut s = format!("Lead ({flow_name})");
    for q in questions {
        if let Some(a) = answers.get(&q.field).and_then(Value::as_str) {
            s.push_str(&format!(" | {}: {a}", q.field));
        }
    }
    if s.chars().count() > crate::notes::MAX_NOTE_CHARS {
        s = s
            .chars()
            .take(crate::notes::MAX_NOTE_CHARS - 1)
            .collect::<String>();
        s.push('…');
    }
    s
}

impl Domain {
    pub async fn lead_flows(&self, actor: &Actor) -> Result<Vec<lead_flow::Model>> {
        actor.require(Capability::Configure)?;
        Ok(lead_flow::Entity::find()
            .order_by_asc(lead_flow::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn create_lead_flow(
        &self,
        actor: &Actor,
        input: LeadFlowInput,
    ) -> Result<lead_flow::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        if input.trigger_keywords.is_none() {
            return Err(DomainError::invalid("triggerKeywords", "required"));
        }
        if input.questions.is_none() {
            return Err(DomainError::invalid("questions", "required"));
        }
        let mut row = lead_flow::ActiveModel {
            name: Set(parse_name(input.name.as_deref().unwrap_or_default())?),
            department_id: Set(None),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        apply(&mut row, input)?;
        let txn = self.db.begin().await?;
        let created = row.insert(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("lead_flow.create", "lead_flow", created.id).after(&created),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_lead_flow(
        &self,
        actor: &Actor,
        id: i64,
        input: LeadFlowInput,
    ) -> Result<lead_flow::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = lead_flow::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("lead flow", id))?;
        let mut row: lead_flow::ActiveModel = before.clone().into();
        apply(&mut row, input)?;
        row.updated_at = Set(now);
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("lead_flow.update", "lead_flow", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    pub async fn delete_lead_flow(&self, actor: &Actor, id: i64) -> Result<lead_flow::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = lead_flow::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("lead flow", id))?;
        lead_flow::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("lead_flow.delete", "lead_flow", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }

    /// Starts the first active flow whose trigger keyword is in the message
    /// (once per conversation); asks its first question.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start_lead_flow(
        &self,
        txn: &DatabaseTransaction,
        reference: &crate::reference::Reference,
        contact: &contact::Model,
        conversation: &conversation::Model,
        words: &Words,
        now: DateTime<Utc>,
        done: &mut Automated,
    ) -> Result<bool> {
        let flows = reference.lead_flows(txn).await?;
        let Some(flow) = flows.iter().find(|f| {
            let k: Vec<String> =
                serde_json::from_value(f.trigger_keywords.clone()).unwrap_or_default();
            words.first_of(&k).is_some()
        }) else {
            return Ok(false);
        };
        let ran = lead_flow_run::Entity::find()
            .filter(lead_flow_run::Column::ConversationId.eq(conversation.id))
            .filter(lead_flow_run::Column::FlowId.eq(flow.id))
            .count(txn)
            .await?
            > 0;
        let questions = questions_of(flow);
        let Some(first) = questions.first() else {
            return Ok(false);
        };
        if ran {
            return Ok(false);
        }
        let asked = self
            .ask(txn, contact, conversation, &first.question, now, done)
            .await?;
        lead_flow_run::ActiveModel {
            flow_id: Set(flow.id),
            conversation_id: Set(conversation.id),
            step: Set(0),
            answers: Set(json!({})),
            status: Set(FlowRunStatus::Active),
            question_held: Set(!asked),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(true)
    }

    /// Queues a question; `false` when the new-customer limit held it back.
    async fn ask(
        &self,
        txn: &DatabaseTransaction,
        contact: &contact::Model,
        conversation: &conversation::Model,
        question: &str,
        now: DateTime<Utc>,
        done: &mut Automated,
    ) -> Result<bool> {
        let content = automated::text(question.to_string())?;
        let Some((_, event)) = self
            .queue_automated(txn, contact, conversation, content, Origin::default(), now)
            .await?
        else {
            return Ok(false);
        };
        done.events.push(event);
        done.queued = true;
        Ok(true)
    }

    /// Takes the customer's message as the answer to the running flow's
    /// current question, if a flow is running. A deactivated flow stops asking.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn advance_lead_flow(
        &self,
        txn: &DatabaseTransaction,
        reference: &crate::reference::Reference,
        contact: &contact::Model,
        conversation: &conversation::Model,
        text: &str,
        now: DateTime<Utc>,
        done: &mut Automated,
    ) -> Result<bool> {
        let flows = reference.lead_flows(txn).await?;
        if flows.is_empty() {
            return Ok(false);
        }
        let Some(run) = lead_flow_run::Entity::find()
            .filter(lead_flow_run::Column::ConversationId.eq(conversation.id))
            .filter(lead_flow_run::Column::Status.eq(FlowRunStatus::Active))
            .one(txn)
            .await?
        else {
            return Ok(false);
        };
        let Some(flow) = flows.iter().find(|f| f.id == run.flow_id) else {
            return Ok(false);
        };
        let questions = questions_of(flow);
        let step = usize::try_from(run.step).unwrap_or(usize::MAX);
        let Some(current) = questions.get(step) else {
            return Ok(false);
        };
        if run.question_held {
            // The customer never saw this question: ask it now rather than
            // take this message as its answer.
            if self
                .ask(txn, contact, conversation, &current.question, now, done)
                .await?
            {
                let mut row: lead_flow_run::ActiveModel = run.into();
                row.question_held = Set(false);
                row.updated_at = Set(now);
                row.update(txn).await?;
            }
            return Ok(true);
        }
        let answer: String = text.trim().chars().take(MAX_ANSWER_CHARS).collect();
        if answer.is_empty() {
            return Ok(true);
        }
        let mut answers = run.answers.clone();
        if !answers.is_object() {
            answers = json!({});
        }
        answers[current.field.as_str()] = json!(answer);
        // The answer also lands on the contact's structured fields.
        let fresh = contact::Entity::find_by_id(contact.id).one(txn).await?;
        if let Some(c) = fresh {
            let mut fields = c.fields.clone();
            if !fields.is_object() {
                fields = json!({});
            }
            fields[current.field.as_str()] = json!(answer);
            let mut row: contact::ActiveModel = c.into();
            row.fields = Set(fields);
            row.updated_at = Set(now);
            row.update(txn).await?;
        }
        let next = step + 1;
        let mut row: lead_flow_run::ActiveModel = run.clone().into();
        row.answers = Set(answers.clone());
        row.step = Set(next as i32);
        row.updated_at = Set(now);
        if let Some(q) = questions.get(next) {
            let asked = self
                .ask(txn, contact, conversation, &q.question, now, done)
                .await?;
            row.question_held = Set(!asked);
            row.update(txn).await?;
            return Ok(true);
        }
        row.status = Set(FlowRunStatus::Completed);
        row.update(txn).await?;
        self.hand_lead_to_agent(txn, flow, &questions, &answers, conversation, now, done)
            .await?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn hand_lead_to_agent(
        &self,
        txn: &DatabaseTransaction,
        flow: &lead_flow::Model,
        questions: &[Question],
        answers: &Value,
        conversation: &conversation::Model,
        now: DateTime<Utc>,
        done: &mut Automated,
    ) -> Result<()> {
        let mut text = String::new();
        for q in questions {
            if let Some(a) = answers.get(&q.field).and_then(Value::as_str) {
                text.push_str(a);
                text.push(' ');
            }
        }
        if let Some(d) = flow.department_id
            && let Some(dep) = department::Entity::find_by_id(d).one(txn).await?
        {
            text.push_str(&dep.name);
        }
        let words = Words::of(&text);
        let agents = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Agent))
            .filter(user::Column::IsActive.eq(true))
            .all(txn)
            .await?;
        let ids: Vec<i64> = agents.iter().map(|a| a.id).collect();
        let loads = loads_in(txn, &ids).await?;
        let mut ranked: Vec<(usize, bool, i64, i64)> = agents
            .iter()
            .filter(|a| loads.get(&a.id).copied().unwrap_or(0) < i64::from(a.max_concurrent))
            .map(|a| {
                let skills: Vec<String> = serde_json::from_value::<Vec<String>>(a.skills.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| fold(&s))
                    .filter(|s| !s.is_empty())
                    .collect();
                (
                    skill_score(&skills, &words),
                    a.presence == Presence::Online,
                    loads.get(&a.id).copied().unwrap_or(0),
                    a.id,
                )
            })
            .collect();
        ranked.sort_by(|x, y| {
            y.0.cmp(&x.0)
                .then(y.1.cmp(&x.1))
                .then(x.2.cmp(&y.2))
                .then(x.3.cmp(&y.3))
        });
        let before = conversation::Entity::find_by_id(conversation.id)
            .one(txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", conversation.id))?;
        let extra = AssignExtra {
            department: flow.department_id.map(Some),
            count_transfer: false,
        };
        let mut assigned = None;
        if before.assignee_id.is_none() {
            for (_, _, _, agent) in ranked.into_iter().take(5) {
                if assign_if(txn, before.id, agent, None, now, extra).await? {
                    assigned = Some(agent);
                    break;
                }
            }
        }
        let Some(agent) = assigned else {
            if let Some(d) = flow.department_id {
                conversation::Entity::update_many()
                    .col_expr(
                        conversation::Column::DepartmentId,
                        sea_orm::sea_query::Expr::value(d),
                    )
                    .filter(conversation::Column::Id.eq(before.id))
                    .exec(txn)
                    .await?;
            }
            return Ok(());
        };
        let after = conversation::Entity::find_by_id(before.id)
            .one(txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", before.id))?;
        let system = Actor::system();
        record_history(
            txn,
            &system,
            &before,
            &after,
            AssignmentKind::Auto,
            Some("lead qualified".into()),
            now,
        )
        .await?;
        audit::record(
            txn,
            &system,
            now,
            Change::new("conversation.assign", "conversation", after.id)
                .before(&assignment_state(&before))
                .after(&assignment_state(&after)),
        )
        .await?;
        let created = note::ActiveModel {
            conversation_id: Set(after.id),
            author_id: Set(agent),
            body: Set(summary(&flow.name, questions, answers)),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let scope = Scope::from(&after);
        done.events.push(EventPayload::ConversationUpdated {
            scope,
            status: after.status,
            priority: after.priority,
            change: "assigned".into(),
        });
        done.events.push(EventPayload::NoteAdded {
            scope,
            note_id: created.id,
        });
        Ok(())
    }
}

/// Open and pending conversations of each agent, read in the caller's transaction.
async fn loads_in(txn: &DatabaseTransaction, agents: &[i64]) -> Result<HashMap<i64, i64>> {
    if agents.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Option<i64>, i64)> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::AssigneeId)
        .column_as(conversation::Column::Id.count(), "load")
        .filter(conversation::Column::AssigneeId.is_in(agents.to_vec()))
        .filter(conversation::Column::Status.is_in(crate::assignment::ACTIVE))
        .group_by(conversation::Column::AssigneeId)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(a, n)| a.map(|a| (a, n)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_the_answers_in_question_order() {
        let qs = vec![
            Question {
                field: "area".into(),
                question: "Where?".into(),
            },
            Question {
                field: "budget".into(),
                question: "Budget?".into(),
            },
        ];
        let s = summary(
            "Wholesale",
            &qs,
            &json!({"budget": "5000", "area": "Milano"}),
        );
        assert_eq!(s, "Lead (Wholesale) | area: Milano | budget: 5000");
        let long = summary("W", &qs, &json!({"area": "x".repeat(400)}));
        assert_eq!(long.chars().count(), 300);
    }

    #[test]
    fn questions_need_distinct_field_names() {
        let q = |f: &str| Question {
            field: f.into(),
            question: "?".into(),
        };
        assert!(parse_questions(&[q("area"), q("budget")]).is_ok());
        assert!(parse_questions(&[q("area"), q("Area")]).is_err());
        assert!(parse_questions(&[q("no spaces")]).is_err());
        assert!(parse_questions(&[]).is_err());
    }

    #[test]
    fn skills_found_in_the_answers_score() {
        let w = Words::of("Milano 5000 logistica cucina");
        assert_eq!(skill_score(&["logistica".into(), "cucina".into()], &w), 2);
        assert_eq!(skill_score(&["tech".into()], &w), 0);
    }
}
