//! The role matrix: every role against every operation, allowed or FORBIDDEN.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

struct Fixture {
    tokens: Vec<(&'static str, String)>,
    agent_id: i64,
    mine: i64,
    other: i64,
    contact_of_mine: i64,
    department: i64,
    // Assignment: throw-away conversations, so that every role can try.
    editor_id: i64,
    /// A department the agent belongs to.
    sales: i64,
    sales_queued: i64,
    returns_queued: i64,
    for_assign: i64,
    for_transfer: i64,
    /// Assigned to the editor.
    for_unassign: i64,
    for_resolve: i64,
}

async fn fixture(app: &TestApp) -> Fixture {
    let (editor_id, editor) = app.staff("Eddie", "EDITOR").await;
    let (agent_id, agent) = app.staff("Agnes", "AGENT").await;
    let (_, analyst) = app.staff("Ana", "ANALYST").await;
    let channel = app.seed_channel().await;
    let mine = app.seed_conversation(channel, Some(agent_id)).await;
    let other = app.seed_conversation(channel, None).await;
    let contact_of_mine = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ contact { id } } }",
            json!({"id": mine.to_string()}),
        )
        .await
        .data()["conversation"]["contact"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let department = app
        .gql(
            &app.admin_token,
            "mutation { createDepartment(input:{name:\"Returns\"}) { id } }",
            json!({}),
        )
        .await
        .data()["createDepartment"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sales = app.department("Sales", "SMART").await;
    app.gql(
        &app.admin_token,
        "mutation($id:ID!,$d:ID!){ updateStaff(id:$id, input:{departmentIds:[$d]}){ id } }",
        json!({"id": agent_id.to_string(), "d": sales.to_string()}),
    )
    .await
    .data();
    let normal = entity::Priority::Normal;
    let sales_queued = app.seed_queued(channel, Some(sales), normal, None).await;
    let returns_queued = app
        .seed_queued(channel, Some(department), normal, None)
        .await;
    let for_assign = app.seed_queued(channel, None, normal, None).await;
    let for_transfer = app.seed_queued(channel, None, normal, None).await;
    let for_unassign = app.seed_conversation(channel, Some(editor_id)).await;
    let for_resolve = app.seed_queued(channel, None, normal, None).await;
    Fixture {
        tokens: vec![
            ("ADMIN", app.admin_token.clone()),
            ("EDITOR", editor),
            ("AGENT", agent),
            ("ANALYST", analyst),
        ],
        agent_id,
        mine,
        other,
        contact_of_mine,
        department,
        editor_id,
        sales,
        sales_queued,
        returns_queued,
        for_assign,
        for_transfer,
        for_unassign,
        for_resolve,
    }
}

/// (operation, query, variables, roles allowed). Mutations that would change
/// shared fixtures use throw-away names so that every role can try them.
fn operations(
    f: &Fixture,
    role: &str,
) -> Vec<(&'static str, String, Value, &'static [&'static str])> {
    const ALL: &[&str] = &["ADMIN", "EDITOR", "AGENT", "ANALYST"];
    const STAFF: &[&str] = &["ADMIN", "EDITOR", "AGENT"];
    const MANAGERS: &[&str] = &["ADMIN", "EDITOR"];
    const ADMIN: &[&str] = &["ADMIN"];
    const REPORTS: &[&str] = &["ADMIN", "EDITOR", "ANALYST"];
    let mine = f.mine.to_string();
    let other = f.other.to_string();
    vec![
        ("me", "{ me { id } }".into(), json!({}), ALL),
        ("departments", "{ departments { id } }".into(), json!({}), ALL),
        ("tags", "{ tags { id } }".into(), json!({}), ALL),
        ("channels", "{ channels { id } }".into(), json!({}), ALL),
        ("staff", "{ staff { id } }".into(), json!({}), STAFF),
        ("conversations", "{ conversations { edges { node { id } } } }".into(), json!({}), STAFF),
        ("conversation (own)", "query($id:ID!){ conversation(id:$id){ id } }".into(), json!({"id": mine}), STAFF),
        ("conversation (other)", "query($id:ID!){ conversation(id:$id){ id } }".into(), json!({"id": other}), MANAGERS),
        ("messages (other)", "query($id:ID!){ messages(conversationId:$id){ edges { cursor } } }".into(), json!({"id": other}), MANAGERS),
        ("contacts", "{ contacts { edges { node { id } } } }".into(), json!({}), MANAGERS),
        ("contact (served)", "query($id:ID!){ contact(id:$id){ id } }".into(), json!({"id": f.contact_of_mine.to_string()}), STAFF),
        ("updateContact (served)", "mutation($id:ID!){ updateContact(id:$id, input:{fields:{size:\"M\"}}){ id } }".into(), json!({"id": f.contact_of_mine.to_string()}), STAFF),
        ("auditLog", "{ auditLog { edges { node { id } } } }".into(), json!({}), MANAGERS),
        ("apiTokens", "{ apiTokens { id } }".into(), json!({}), ADMIN),
        ("addNote (own)", "mutation($id:ID!){ addNote(conversationId:$id, body:\"10:42 | return | label sent\"){ id } }".into(), json!({"id": mine}), STAFF),
        ("addNote (other)", "mutation($id:ID!){ addNote(conversationId:$id, body:\"x\"){ id } }".into(), json!({"id": other}), MANAGERS),
        ("openConversation (other)", "mutation($id:ID!){ openConversation(id:$id){ id } }".into(), json!({"id": other}), MANAGERS),
        ("releaseLock (other)", "mutation($id:ID!){ releaseLock(id:$id){ id } }".into(), json!({"id": other}), MANAGERS),
        ("createTag", format!("mutation {{ createTag(name:\"t-{role}\") {{ id }} }}"), json!({}), MANAGERS),
        ("createDepartment", format!("mutation {{ createDepartment(input:{{name:\"D-{role}\"}}) {{ id }} }}"), json!({}), ADMIN),
        ("updateDepartment", "mutation($id:ID!){ updateDepartment(id:$id, input:{keywords:[\"retour\"]}){ id } }".into(), json!({"id": f.department.to_string()}), ADMIN),
        ("createChannel", format!("mutation {{ createChannel(input:{{name:\"C\", phoneNumberId:\"99{}\"}}) {{ id }} }}", role.len()), json!({}), ADMIN),
        ("createStaff", format!("mutation {{ createStaff(input:{{email:\"new-{role}@test.example\", name:\"N\", password:\"long-password\", role:AGENT}}) {{ id }} }}"), json!({}), ADMIN),
        ("updateStaff", "mutation($id:ID!){ updateStaff(id:$id, input:{maxConcurrent:3}){ id } }".into(), json!({"id": f.agent_id.to_string()}), ADMIN),
        ("createApiToken", "mutation { createApiToken(name:\"BI\") { secret } }".into(), json!({}), ADMIN),
        ("deleteConversation", "mutation($id:ID!){ deleteConversation(id:$id) }".into(), json!({"id": "999999"}), ADMIN),
        // Messaging: the customer never wrote, so an allowed text ends in OUTSIDE_WINDOW.
        ("sendMessage (own)", "mutation($id:ID!){ sendMessage(input:{conversationId:$id, text:\"Ciao\"}){ id } }".into(), json!({"id": mine}), STAFF),
        ("sendMessage (other)", "mutation($id:ID!){ sendMessage(input:{conversationId:$id, text:\"Ciao\"}){ id } }".into(), json!({"id": other}), MANAGERS),
        ("billing", "{ billing(from:\"2026-01-01T00:00:00Z\", to:\"2027-01-01T00:00:00Z\"){ totals { totalMicros } } }".into(), json!({}), REPORTS),
        ("metrics", "{ metrics(range:{from:\"2026-01-01T00:00:00Z\", to:\"2026-02-01T00:00:00Z\"}){ overview { conversations } funnel { layers { count } } } }".into(), json!({}), REPORTS),
        ("markConverted", "mutation($id:ID!){ markConverted(conversationId:$id, amount: 10){ conversationId } }".into(), json!({"id": other}), MANAGERS),
        ("cannedResponses", "{ cannedResponses { id } }".into(), json!({}), ALL),
        ("createCannedResponse", format!("mutation {{ createCannedResponse(input:{{shortcut:\"c-{role}\", title:\"T\", body:\"B\"}}) {{ id }} }}"), json!({}), MANAGERS),
        ("updateCannedResponse", "mutation { updateCannedResponse(id:\"999999\", input:{title:\"T\"}) { id } }".into(), json!({}), MANAGERS),
        ("deleteCannedResponse", "mutation { deleteCannedResponse(id:\"999999\") { id } }".into(), json!({}), MANAGERS),
        // Presence, queues and assignment. An allowed operation may still be
        // refused for what it asks (CONFLICT, BAD_USER_INPUT): only FORBIDDEN counts.
        ("heartbeat", "mutation { heartbeat { id presence } }".into(), json!({}), STAFF),
        ("typing (own)", "mutation($id:ID!){ typing(conversationId:$id){ id } }".into(), json!({"id": mine}), STAFF),
        ("typing (other)", "mutation($id:ID!){ typing(conversationId:$id){ id } }".into(), json!({"id": other}), MANAGERS),
        ("queue", "{ queue { edges { node { id } } } }".into(), json!({}), STAFF),
        ("queue (own department)", "query($d:ID){ queue(departmentId:$d){ edges { cursor } } }".into(), json!({"d": f.sales.to_string()}), STAFF),
        ("queue (other department)", "query($d:ID){ queue(departmentId:$d){ edges { cursor } } }".into(), json!({"d": f.department.to_string()}), MANAGERS),
        ("assignmentHistory (own)", "query($id:ID!){ assignmentHistory(conversationId:$id){ id } }".into(), json!({"id": mine}), STAFF),
        ("assignmentHistory (other)", "query($id:ID!){ assignmentHistory(conversationId:$id){ id } }".into(), json!({"id": other}), MANAGERS),
        ("onlineTime (own)", "{ onlineTime(from:\"2026-01-01T00:00:00Z\", to:\"2026-01-02T00:00:00Z\"){ totalOnlineSeconds } }".into(), json!({}), ALL),
        ("onlineTime (someone else)", "query($u:ID){ onlineTime(userId:$u, from:\"2026-01-01T00:00:00Z\", to:\"2026-01-02T00:00:00Z\"){ totalOnlineSeconds } }".into(), json!({"u": f.editor_id.to_string()}), REPORTS),
        ("assign", "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }".into(), json!({"c": f.for_assign.to_string(), "a": f.editor_id.to_string()}), MANAGERS),
        ("claim (own department)", "mutation($c:ID!){ claim(conversationId:$c){ id } }".into(), json!({"c": f.sales_queued.to_string()}), STAFF),
        ("claim (other department)", "mutation($c:ID!){ claim(conversationId:$c){ id } }".into(), json!({"c": f.returns_queued.to_string()}), MANAGERS),
        ("transfer (own)", "mutation($c:ID!,$a:ID){ transfer(conversationId:$c, toAgentId:$a){ id } }".into(), json!({"c": mine, "a": f.agent_id.to_string()}), STAFF),
        ("transfer (other)", "mutation($c:ID!,$d:ID){ transfer(conversationId:$c, toDepartmentId:$d, reason:\"wrong desk\"){ id } }".into(), json!({"c": f.for_transfer.to_string(), "d": f.department.to_string()}), MANAGERS),
        ("unassign (other)", "mutation($c:ID!){ unassign(conversationId:$c){ id } }".into(), json!({"c": f.for_unassign.to_string()}), MANAGERS),
        ("resolve (own)", "mutation($c:ID!){ resolve(conversationId:$c){ id } }".into(), json!({"c": mine}), STAFF),
        ("reopen (own)", "mutation($c:ID!){ reopen(conversationId:$c){ id } }".into(), json!({"c": mine}), STAFF),
        ("resolve (other)", "mutation($c:ID!){ resolve(conversationId:$c){ id } }".into(), json!({"c": f.for_resolve.to_string()}), MANAGERS),
        ("setPriority (own)", "mutation($c:ID!){ setPriority(conversationId:$c, priority:HIGH){ id } }".into(), json!({"c": mine}), STAFF),
        ("setTopic (other)", "mutation($c:ID!){ setTopic(conversationId:$c, topic:\"billing\"){ id } }".into(), json!({"c": other}), MANAGERS),
        // SLA: policies and business hours are settings; reports for managers and analysts.
        ("slaPolicies", "{ slaPolicies { id } }".into(), json!({}), ALL),
        ("businessHours", "{ businessHours { id } }".into(), json!({}), ALL),
        ("createSlaPolicy", format!("mutation {{ createSlaPolicy(input:{{name:\"P-{role}\", firstResponseSeconds:600, resolutionSeconds:3600}}) {{ id }} }}"), json!({}), ADMIN),
        ("updateSlaPolicy", "mutation { updateSlaPolicy(id:\"999999\", input:{name:\"P\", firstResponseSeconds:600, resolutionSeconds:3600}) { id } }".into(), json!({}), ADMIN),
        ("deleteSlaPolicy", "mutation { deleteSlaPolicy(id:\"999999\") }".into(), json!({}), ADMIN),
        ("createBusinessHours", format!("mutation {{ createBusinessHours(input:{{name:\"H-{role}\", timeZone:\"Europe/Rome\", schedule:[{{day:MONDAY, open:\"09:00\", close:\"18:00\"}}]}}) {{ id }} }}"), json!({}), ADMIN),
        ("updateBusinessHours", "mutation { updateBusinessHours(id:\"999999\", input:{name:\"H\", timeZone:\"Europe/Rome\", schedule:[{day:MONDAY, open:\"09:00\", close:\"18:00\"}]}) { id } }".into(), json!({}), ADMIN),
        ("slaState (own)", "query($id:ID!){ slaState(conversationId:$id){ paused } }".into(), json!({"id": mine}), STAFF),
        ("slaState (other)", "query($id:ID!){ slaState(conversationId:$id){ paused } }".into(), json!({"id": other}), MANAGERS),
        ("slaAtRisk", "{ slaAtRisk { kind } }".into(), json!({}), STAFF),
        ("slaReport", "{ slaReport(from:\"2026-01-01T00:00:00Z\", to:\"2027-01-01T00:00:00Z\", groupBy:AGENT){ conversations } }".into(), json!({}), REPORTS),
        ("slaQuarterlyReview", "{ slaQuarterlyReview(year:2026, quarter:4){ overall { conversations } } }".into(), json!({}), REPORTS),
        ("setWaitingOnCustomer (own)", "mutation($c:ID!){ setWaitingOnCustomer(conversationId:$c, waiting:true){ id } }".into(), json!({"c": mine}), STAFF),
        ("setWaitingOnCustomer (other)", "mutation($c:ID!){ setWaitingOnCustomer(conversationId:$c, waiting:false){ id } }".into(), json!({"c": other}), MANAGERS),
        // Integration and data governance.
        ("webhookSubscriptions", "{ webhookSubscriptions { id } }".into(), json!({}), ADMIN),
        ("webhookDeliveries", "{ webhookDeliveries { edges { cursor } } }".into(), json!({}), ADMIN),
        ("createWebhookSubscription", "mutation { createWebhookSubscription(input:{name:\"CRM\", url:\"https://crm.example.com/hook\", eventTypes:[CONTACT_UPDATED]}) { secret } }".into(), json!({}), ADMIN),
        ("updateWebhookSubscription", "mutation { updateWebhookSubscription(id:\"999999\", input:{isActive:true}) { id } }".into(), json!({}), ADMIN),
        ("deleteWebhookSubscription", "mutation { deleteWebhookSubscription(id:\"999999\") }".into(), json!({}), ADMIN),
        ("redeliverWebhook", "mutation { redeliverWebhook(id:\"999999\") { id } }".into(), json!({}), ADMIN),
        ("importContacts", "mutation { importContacts(format:JSON, data:\"[]\") { created } }".into(), json!({}), MANAGERS),
        ("exportContacts", "{ exportContacts(format:CSV) }".into(), json!({}), MANAGERS),
        ("exportConversations", "{ exportConversations(format:JSON, from:\"2026-01-01T00:00:00Z\", to:\"2026-01-02T00:00:00Z\") }".into(), json!({}), MANAGERS),
        ("applyRetention", "mutation { applyRetention(olderThanDays:3650, mode:ARCHIVE) }".into(), json!({}), ADMIN),
        ("exportContactData", "mutation { exportContactData(contactId:\"999999\") }".into(), json!({}), ADMIN),
        ("eraseContact", "mutation { eraseContact(contactId:\"999999\") { messages } }".into(), json!({}), ADMIN),
        // Automation: rules, variables and flows are settings (Admin); the report is a metric.
        ("autoReplyRules", "{ autoReplyRules { id } }".into(), json!({}), ADMIN),
        ("createAutoReplyRule", format!("mutation {{ createAutoReplyRule(input:{{name:\"R-{role}\", triggerMode:KEYWORD, keywords:[\"x{role}\"], variants:[\"Hi\"]}}) {{ rule {{ id }} }} }}"), json!({}), ADMIN),
        ("updateAutoReplyRule", "mutation { updateAutoReplyRule(id:\"999999\", input:{priority:1}) { rule { id } } }".into(), json!({}), ADMIN),
        ("deleteAutoReplyRule", "mutation { deleteAutoReplyRule(id:\"999999\") { id } }".into(), json!({}), ADMIN),
        ("automationVariables", "{ automationVariables { key } }".into(), json!({}), ADMIN),
        ("setAutomationVariable", format!("mutation {{ setAutomationVariable(key:\"v-{role}\", value:\"1\") {{ key }} }}"), json!({}), ADMIN),
        ("deleteAutomationVariable", "mutation { deleteAutomationVariable(key:\"missing\") { key } }".into(), json!({}), ADMIN),
        ("leadFlows", "{ leadFlows { id } }".into(), json!({}), ADMIN),
        ("createLeadFlow", format!("mutation {{ createLeadFlow(input:{{name:\"F-{role}\", triggerKeywords:[\"devis\"], questions:[{{field:\"area\", question:\"Where?\"}}]}}) {{ id }} }}"), json!({}), ADMIN),
        ("updateLeadFlow", "mutation { updateLeadFlow(id:\"999999\", input:{isActive:false}) { id } }".into(), json!({}), ADMIN),
        ("deleteLeadFlow", "mutation { deleteLeadFlow(id:\"999999\") { id } }".into(), json!({}), ADMIN),
        ("automationReport", "{ automationReport(from:\"2026-01-01T00:00:00Z\", to:\"2027-01-01T00:00:00Z\"){ automationRate } }".into(), json!({}), REPORTS),
        ("surveys (own)", "query($c:ID!){ surveys(conversationId:$c){ id } }".into(), json!({"c": mine}), STAFF),
        ("surveys (other)", "query($c:ID!){ surveys(conversationId:$c){ id } }".into(), json!({"c": other}), MANAGERS),
    ]
}

#[tokio::test]
async fn every_role_is_allowed_or_forbidden_as_the_spec_says() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let mut failures = vec![];
    for (role, token) in &f.tokens {
        for (name, query, vars, allowed) in operations(&f, role) {
            let r = app.gql(token, &query, vars).await;
            let code = r.body["errors"][0]["extensions"]["code"]
                .as_str()
                .map(str::to_string);
            let expect_allowed = allowed.contains(role);
            let ok = if expect_allowed {
                // Allowed: anything but a permission error (deleteConversation of a
                // missing id answers NOT_FOUND after the check passed).
                !matches!(code.as_deref(), Some("FORBIDDEN" | "UNAUTHENTICATED"))
            } else {
                code.as_deref() == Some("FORBIDDEN")
            };
            if !ok {
                failures.push(format!(
                    "{role} {name}: expected {}, got {}",
                    if expect_allowed {
                        "allowed"
                    } else {
                        "FORBIDDEN"
                    },
                    r.body
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn an_agent_lists_only_its_own_conversations() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let agent = &f.tokens[2].1;
    let r = app
        .gql(
            agent,
            "{ conversations { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&str> = r.data()["conversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![f.mine.to_string()]);
}
