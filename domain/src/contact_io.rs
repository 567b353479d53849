//! Contacts in and out: import from CSV or JSON, validated row by row (a bad
//! row is reported with its line and reason, good rows still import, each row
//! is written in its own transaction so none is half-written); export of
//! contacts (a segment: tag, consent state, creation period) and of
//! conversations with their messages for a period, as CSV or JSON.
//!
//! Columns (CSV header names, or JSON keys; case and `_` ignored): `waId`,
//! `phone`, `name`, `language`, `priority`, `isVip`, `consent`, `externalId`,
//! `tags` (names separated by `;` in CSV, an array in JSON) and `fields` (a
//! JSON object; in CSV its JSON text). An existing contact is matched by
//! `externalId`, then by `waId`, and updated with the columns given; otherwise
//! a contact is created (it needs a `waId` or an `externalId`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{ConsentState, Priority, contact, contact_tag, conversation, message, tag};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait, Set, TransactionTrait,
};
use serde_json::{Map, Value, json};

use crate::audit::{self, Change};
use crate::webhooks_out::{self, WebhookEventType};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Largest import text accepted.
pub const MAX_IMPORT_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// Rows an export may hold; narrow the period beyond that.
pub const MAX_EXPORT_ROWS: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Csv,
    Json,
}

/// Why one row was not imported. `line` is the CSV line the row starts on
/// (the header is line 1), or the 1-based position in the JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub field: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub errors: Vec<RowError>,
}

/// Which contacts to export.
#[derive(Debug, Clone, Default)]
pub struct ContactSegment {
    pub tag_id: Option<i64>,
    pub consent: Option<ConsentState>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// One validated row.
#[derive(Debug, Clone, Default)]
struct ContactRow {
    wa_id: Option<String>,
    phone: Option<String>,
    name: Option<String>,
    language: Option<String>,
    priority: Option<Priority>,
    is_vip: Option<bool>,
    consent: Option<ConsentState>,
    external_id: Option<String>,
    tag_ids: Option<Vec<i64>>,
    fields: Option<Value>,
}

type RowResult<T> = std::result::Result<T, (Option<String>, String)>;

fn bad<T>(field: &str, reason: impl Into<String>) -> RowResult<T> {
    Err((Some(field.to_string()), reason.into()))
}

fn normalise_key(k: &str) -> String {
    k.trim()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A cell as text (JSON scalars accepted); empty means absent.
fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    (!s.is_empty()).then_some(s)
}

fn parse_row(raw: &Map<String, Value>, tags: &HashMap<String, i64>) -> RowResult<ContactRow> {
    let mut row = ContactRow::default();
    for (key, value) in raw {
        let k = normalise_key(key);
        match k.as_str() {
            "waid" => {
                if let Some(v) = text(value) {
                    let digits: String = v
                        .chars()
                        .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')'))
                        .collect();
                    if !(6..=15).contains(&digits.len())
                        || !digits.chars().all(|c| c.is_ascii_digit())
                    {
                        return bad("waId", "must be a phone number in international format");
                    }
                    row.wa_id = Some(digits);
                }
            }
            "phone" => {
                if let Some(v) = text(value) {
                    if v.chars().count() > 32 {
                        return bad("phone", "at most 32 characters");
                    }
                    row.phone = Some(v);
                }
            }
            "name" => {
                if let Some(v) = text(value) {
                    if v.chars().count() > 200 {
                        return bad("name", "at most 200 characters");
                    }
                    row.name = Some(v);
                }
            }
            "language" => {
                if let Some(v) = text(value) {
                    let v = v.to_lowercase();
                    if !(2..=8).contains(&v.len()) {
                        return bad("language", "an ISO 639 code such as fr or it");
                    }
                    row.language = Some(v);
                }
            }
            "priority" => {
                if let Some(v) = text(value) {
                    row.priority = Some(match v.to_lowercase().as_str() {
                        "low" => Priority::Low,
                        "normal" => Priority::Normal,
                        "high" => Priority::High,
                        "urgent" => Priority::Urgent,
                        _ => return bad("priority", "one of low, normal, high, urgent"),
                    });
                }
            }
            "isvip" | "vip" => {
                if let Some(v) = text(value) {
                    row.is_vip = Some(match v.to_lowercase().as_str() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => return bad("isVip", "true or false"),
                    });
                }
            }
            "consent" => {
                if let Some(v) = text(value) {
                    row.consent = Some(match normalise_key(&v).as_str() {
                        "unknown" => ConsentState::Unknown,
                        "optedin" | "optin" => ConsentState::OptedIn,
                        "optedout" | "optout" => ConsentState::OptedOut,
                        _ => return bad("consent", "one of unknown, opted_in, opted_out"),
                    });
                }
            }
            "externalid" => {
                if let Some(v) = text(value) {
                    if v.chars().count() > 128 {
                        return bad("externalId", "at most 128 characters");
                    }
                    row.external_id = Some(v);
                }
            }
            "tags" => {
                let names: Vec<String> = match value {
                    Value::Array(items) => items.iter().filter_map(text).collect(),
                    other => text(other)
                        .map(|s| {
                            s.split(';')
                                .map(|t| t.trim().to_string())
                                .filter(|t| !t.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                let mut ids = Vec::with_capacity(names.len());
                for name in names {
                    match tags.get(&name.to_lowercase()) {
                        Some(id) => ids.push(*id),
                        None => return bad("tags", format!("unknown tag {name:?}")),
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                row.tag_ids = Some(ids);
            }
            "fields" => {
                let parsed = match value {
                    Value::Null => None,
                    Value::Object(_) => Some(value.clone()),
                    Value::String(s) if s.trim().is_empty() => None,
                    Value::String(s) => match serde_json::from_str::<Value>(s) {
                        Ok(v @ Value::Object(_)) => Some(v),
                        _ => return bad("fields", "must be a JSON object"),
                    },
                    _ => return bad("fields", "must be a JSON object"),
                };
                if let Some(v) = &parsed
                    && v.to_string().len() > crate::contacts::MAX_FIELDS_BYTES
                {
                    return bad("fields", "too large");
                }
                row.fields = parsed;
            }
            // Export columns that are not imported.
            "id" | "profilename" | "createdat" | "updatedat" => {}
            _ => return bad(key, "unknown column"),
        }
    }
    if row.wa_id.is_none() && row.external_id.is_none() {
        return Err((None, "a row needs a waId or an externalId".into()));
    }
    Ok(row)
}

/// RFC 4180 records with the line each starts on (quotes, doubled quotes,
/// line breaks inside quotes, CRLF, a leading BOM).
pub fn parse_csv(input: &str) -> std::result::Result<Vec<(usize, Vec<String>)>, RowError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = input.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].trim().is_empty()) {
                    records.push((start_line, std::mem::take(&mut record)));
                }
                record.clear();
                line += 1;
                start_line = line;
                any = false;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(RowError {
            line: start_line,
            field: None,
            reason: "a quoted value is not closed".into(),
        });
    }
    if any {
        record.push(field);
        if !(record.len() == 1 && record[0].trim().is_empty()) {
            records.push((start_line, record));
        }
    }
    Ok(records)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn enum_text(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Raw rows with their line numbers.
fn raw_rows(format: DataFormat, data: &str) -> Result<Vec<(usize, Map<String, Value>)>> {
    match format {
        DataFormat::Json => {
            let value: Value = serde_json::from_str(data).map_err(|e| {
                DomainError::invalid("data", format!("not valid JSON (line {})", e.line()))
            })?;
            let Value::Array(items) = value else {
                return Err(DomainError::invalid(
                    "data",
                    "must be a JSON array of objects",
                ));
            };
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => (i + 1, m),
                    // Reported as a row error below.
                    _ => (i + 1, Map::from_iter([("\u{0}".to_string(), Value::Null)])),
                })
                .collect())
        }
        DataFormat::Csv => {
            let records = parse_csv(data).map_err(|e| {
                DomainError::invalid("data", format!("line {}: {}", e.line, e.reason))
            })?;
            let mut it = records.into_iter();
            let Some((_, header)) = it.next() else {
                return Err(DomainError::invalid("data", "the CSV has no header line"));
            };
            let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
            Ok(it
                .map(|(line, cells)| {
                    let mut m = Map::new();
                    if cells.len() != header.len() {
                        m.insert("\u{1}".into(), json!(cells.len()));
                    }
                    for (h, c) in header.iter().zip(cells) {
                        m.insert(h.clone(), Value::String(c));
                    }
                    (line, m)
                })
                .collect())
        }
    }
}

impl Domain {
    /// Imports contacts; see the module docs for the columns and rules.
    pub async fn import_contacts(
        &self,
        actor: &Actor,
        format: DataFormat,
        data: &str,
    ) -> Result<ImportReport> {
        actor.require(Capability::ManageContacts)?;
        if data.len() > MAX_IMPORT_BYTES {
            return Err(DomainError::invalid(
                "data",
                format!("at most {MAX_IMPORT_BYTES} bytes"),
            ));
        }
        let rows = raw_rows(format, data)?;
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(DomainError::invalid(
                "data",
                format!("at most {MAX_IMPORT_ROWS} rows"),
            ));
        }
        let tags: HashMap<String, i64> = tag::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.name.to_lowercase(), t.id))
            .collect();
        let mut report = ImportReport::default();
        for (line, raw) in rows {
            let err = |field: Option<String>, reason: String| RowError {
                line,
                field,
                reason,
            };
            if raw.contains_key("\u{0}") {
                report
                    .errors
                    .push(err(None, "must be a JSON object".into()));
                continue;
            }
            if let Some(n) = raw.get("\u{1}") {
                report.errors.push(err(
                    None,
                    format!("has {n} values, the header has a different number"),
                ));
                continue;
            }
            let row = match parse_row(&raw, &tags) {
                Ok(row) => row,
                Err((field, reason)) => {
                    report.errors.push(err(field, reason));
                    continue;
                }
            };
            match self.import_row(actor, row).await {
                Ok(true) => report.created += 1,
                Ok(false) => report.updated += 1,
                Err(DomainError::Conflict(_)) => report.errors.push(err(
                    Some("waId".into()),
                    "another contact has this waId or externalId".into(),
                )),
                Err(DomainError::InvalidInput { field, message }) => {
                    report.errors.push(err(Some(field), message))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// One row in one transaction (contact, tags, audit, webhook). Returns
    /// whether it created a contact.
    async fn import_row(&self, actor: &Actor, row: ContactRow) -> Result<bool> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let mut existing = None;
        if let Some(ext) = &row.external_id {
            existing = contact::Entity::find()
                .filter(contact::Column::ExternalId.eq(ext.as_str()))
                .one(&txn)
                .await?;
        }
        if existing.is_none()
            && let Some(wa) = &row.wa_id
        {
            existing = contact::Entity::find()
                .filter(contact::Column::WaId.eq(wa.as_str()))
                .one(&txn)
                .await?;
        }
        if existing.as_ref().is_some_and(|c| c.erased_at.is_some()) {
            return Err(DomainError::invalid("waId", "this contact was erased"));
        }
        let created = existing.is_none();
        let mut am: contact::ActiveModel = match &existing {
            Some(c) => c.clone().into(),
            None => contact::ActiveModel {
                priority: Set(Priority::Normal),
                is_vip: Set(false),
                consent: Set(ConsentState::Unknown),
                fields: Set(json!({})),
                created_at: Set(now),
                ..Default::default()
            },
        };
        if let Some(v) = row.wa_id {
            am.wa_id = Set(Some(v));
        }
        if let Some(v) = row.phone {
            am.phone = Set(Some(v));
        }
        if let Some(v) = row.name {
            am.name = Set(Some(v));
        }
        if let Some(v) = row.language {
            am.language = Set(Some(v));
        }
        if let Some(v) = row.priority {
            am.priority = Set(v);
        }
        if let Some(v) = row.is_vip {
            am.is_vip = Set(v);
        }
        if let Some(v) = row.consent
            && existing.as_ref().is_none_or(|c| c.consent != v)
        {
            am.consent = Set(v);
            am.consent_changed_at = Set(Some(now));
        }
        if let Some(v) = row.external_id {
            am.external_id = Set(Some(v));
        }
        if let Some(Value::Object(patch)) = row.fields {
            let mut merged = existing
                .as_ref()
                .and_then(|c| c.fields.as_object().cloned())
                .unwrap_or_default();
            merged.extend(patch);
            am.fields = Set(Value::Object(merged));
        }
        am.updated_at = Set(now);
        let after = if created {
            am.insert(&txn).await?
        } else {
            am.update(&txn).await?
        };
        if let Some(tag_ids) = &row.tag_ids {
            contact_tag::Entity::delete_many()
                .filter(contact_tag::Column::ContactId.eq(after.id))
                .exec(&txn)
                .await?;
            if !tag_ids.is_empty() {
                contact_tag::Entity::insert_many(tag_ids.iter().map(|&tag_id| {
                    contact_tag::ActiveModel {
                        contact_id: Set(after.id),
                        tag_id: Set(tag_id),
                    }
                }))
                .exec(&txn)
                .await?;
            }
        }
        let mut change = Change::new("contact.import", "contact", after.id).after(&after);
        if let Some(before) = &existing {
            change = change.before(before);
        }
        if let Some(tag_ids) = &row.tag_ids {
            change = change.with_extra("tagIds", tag_ids);
        }
        audit::record(&txn, actor, now, change).await?;
        if !created {
            self.enqueue_webhook(
                &txn,
                WebhookEventType::ContactUpdated,
                Some(webhooks_out::contact_key(after.id)),
                webhooks_out::contact_data(&after),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(created)
    }

    /// A segment of contacts (not erased), oldest first, as CSV or JSON.
    pub async fn export_contacts(
        &self,
        actor: &Actor,
        format: DataFormat,
        segment: ContactSegment,
    ) -> Result<String> {
        actor.require(Capability::ManageContacts)?;
        let mut q = contact::Entity::find().filter(contact::Column::ErasedAt.is_null());
        if let Some(tag_id) = segment.tag_id {
            q = q
                .join(JoinType::InnerJoin, contact::Relation::ContactTags.def())
                .filter(contact_tag::Column::TagId.eq(tag_id));
        }
        if let Some(c) = segment.consent {
            q = q.filter(contact::Column::Consent.eq(c));
        }
        if let Some(from) = segment.from {
            q = q.filter(contact::Column::CreatedAt.gte(from));
        }
        if let Some(to) = segment.to {
            q = q.filter(contact::Column::CreatedAt.lt(to));
        }
        let contacts = q
            .order_by_asc(contact::Column::Id)
            .limit(MAX_EXPORT_ROWS as u64 + 1)
            .all(&self.db)
            .await?;
        if contacts.len() > MAX_EXPORT_ROWS {
            return Err(DomainError::invalid(
                "to",
                format!("more than {MAX_EXPORT_ROWS} contacts: narrow the period"),
            ));
        }
        let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for chunk in contacts.chunks(500) {
            let ids: Vec<i64> = chunk.iter().map(|c| c.id).collect();
            let rows: Vec<(i64, String)> = contact_tag::Entity::find()
                .select_only()
                .column(contact_tag::Column::ContactId)
                .column(tag::Column::Name)
                .join(JoinType::InnerJoin, contact_tag::Relation::Tag.def())
                .filter(contact_tag::Column::ContactId.is_in(ids))
                .order_by_asc(tag::Column::Name)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (id, name) in rows {
                tags.entry(id).or_default().push(name);
            }
        }
        let no_tags = Vec::new();
        Ok(match format {
            DataFormat::Json => {
                let rows: Vec<Value> = contacts
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id.to_string(),
                            "waId": c.wa_id,
                            "phone": c.phone,
                            "name": c.name,
                            "profileName": c.profile_name,
                            "language": c.language,
                            "priority": c.priority,
                            "isVip": c.is_vip,
                            "consent": c.consent,
                            "externalId": c.external_id,
                            "tags": tags.get(&c.id).unwrap_or(&no_tags),
                            "fields": c.fields,
                            "createdAt": c.created_at.to_rfc3339(),
                            "updatedAt": c.updated_at.to_rfc3339(),
                        })
                    })
                    .collect();
                Value::Array(rows).to_string()
            }
            DataFormat::Csv => {
                let header = [
                    "id",
                    "waId",
                    "phone",
                    "name",
                    "profileName",
                    "language",
                    "priority",
                    "isVip",
                    "consent",
                    "externalId",
                    "tags",
                    "fields",
                    "createdAt",
                    "updatedAt",
                ];
                let mut out = csv_line(&header.map(String::from));
                for c in &contacts {
                    let o = |v: &Option<String>| v.clone().unwrap_or_default();
                    out.push_str(&csv_line(&[
                        c.id.to_string(),
                        o(&c.wa_id),
                        o(&c.phone),
                        o(&c.name),
                        o(&c.profile_name),
                        o(&c.language),
                        enum_text(&c.priority),
                        c.is_vip.to_string(),
                        enum_text(&c.consent),
                        o(&c.external_id),
                        tags.get(&c.id).unwrap_or(&no_tags).join(";"),
                        c.fields.to_string(),
                        c.created_at.to_rfc3339(),
                        c.updated_at.to_rfc3339(),
                    ]));
                }
                out
            }
        })
    }

    /// Conversations created in `[from, to)` with their messages: JSON
    /// (conversations with a `messages` array) or CSV (one line per
    /// message, the conversation's columns repeated).
    pub async fn export_conversations(
        &self,
        actor: &Actor,
        format: DataFormat,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<String> {
        actor.require(Capability::ManageContacts)?;
        if to <= from {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        let convs = conversation::Entity::find()
            .filter(conversation::Column::CreatedAt.gte(from))
            .filter(conversation::Column::CreatedAt.lt(to))
            .order_by_asc(conversation::Column::Id)
            .limit(MAX_EXPORT_ROWS as u64 + 1)
            .all(&self.db)
            .await?;
        if convs.len() > MAX_EXPORT_ROWS {
            return Err(DomainError::invalid(
                "to",
                format!("more than {MAX_EXPORT_ROWS} conversations: narrow the period"),
            ));
        }
        let mut messages: BTreeMap<i64, Vec<message::Model>> = BTreeMap::new();
        let mut total = 0usize;
        for chunk in convs.chunks(500) {
            let ids: Vec<i64> = chunk.iter().map(|c| c.id).collect();
            for m in message::Entity::find()
                .filter(message::Column::ConversationId.is_in(ids))
                .order_by_asc(message::Column::Id)
                .all(&self.db)
                .await?
            {
                total += 1;
                messages.entry(m.conversation_id).or_default().push(m);
            }
            if total > MAX_EXPORT_ROWS * 4 {
                return Err(DomainError::invalid(
                    "to",
                    "too many messages: narrow the period",
                ));
            }
        }
        let none = Vec::new();
        Ok(match format {
            DataFormat::Json => {
                let rows: Vec<Value> = convs
                    .iter()
                    .map(|c| {
                        let mut v = webhooks_out::conversation_data(c);
                        v["closedAt"] = json!(c.closed_at.map(|t| t.to_rfc3339()));
                        v["messages"] = Value::Array(
                            messages
                                .get(&c.id)
                                .unwrap_or(&none)
                                .iter()
                                .map(webhooks_out::message_data)
                                .collect(),
                        );
                        v
                    })
                    .collect();
                Value::Array(rows).to_string()
            }
            DataFormat::Csv => {
                let header = [
                    "conversationId",
                    "contactId",
                    "status",
                    "priority",
                    "topic",
                    "conversationCreatedAt",
                    "messageId",
                    "direction",
                    "senderKind",
                    "type",
                    "text",
                    "messageCreatedAt",
                ];
                let mut out = csv_line(&header.map(String::from));
                for c in &convs {
                    let conv = [
                        c.id.to_string(),
                        c.contact_id.to_string(),
                        enum_text(&c.status),
                        enum_text(&c.priority),
                        c.topic.clone().unwrap_or_default(),
                        c.created_at.to_rfc3339(),
                    ];
                    let ms = messages.get(&c.id).unwrap_or(&none);
                    if ms.is_empty() {
                        let mut cells = conv.to_vec();
                        cells.extend(std::iter::repeat_n(String::new(), 6));
                        out.push_str(&csv_line(&cells));
                    }
                    for m in ms {
                        let mut cells = conv.to_vec();
                        cells.extend([
                            m.id.to_string(),
                            enum_text(&m.direction),
                            enum_text(&m.sender_kind),
                            enum_text(&m.message_type),
                            m.body.clone().unwrap_or_default(),
                            m.created_at.to_rfc3339(),
                        ]);
                        out.push_str(&csv_line(&cells));
                    }
                }
                out
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_and_line_breaks() {
        let rows = parse_csv("a,b\r\n\"x, y\",\"say \"\"hi\"\"\nthere\"\nlast,1").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            (2, vec!["x, y".into(), "say \"hi\"\nthere".into()])
        );
        assert_eq!(rows[2], (4, vec!["last".into(), "1".into()]));
    }

    #[test]
    fn an_unclosed_quote_names_its_line() {
        let err = parse_csv("a\n\"open").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn csv_cells_round_trip() {
        let line = csv_line(&["a,b".into(), "q\"".into(), "plain".into()]);
        let parsed = parse_csv(&line).unwrap();
        assert_eq!(parsed[0].1, vec!["a,b", "q\"", "plain"]);
    }

    #[test]
    fn a_row_without_identity_is_refused() {
        let raw = Map::from_iter([("name".to_string(), json!("Ada"))]);
        assert!(parse_row(&raw, &HashMap::new()).is_err());
        let raw = Map::from_iter([("wa_id".to_string(), json!("+39 333 1234567"))]);
        assert_eq!(
            parse_row(&raw, &HashMap::new()).unwrap().wa_id.as_deref(),
            Some("393331234567")
        );
    }
}
