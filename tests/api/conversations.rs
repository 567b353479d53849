//! Conversation lists (filters, Relay pagination), notes, tags, contacts.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn conversations_page_forward_with_cursors_and_filters() {
    let app = spawn_app().await;
    let (agent_id, _) = app.staff("Paolo", "AGENT").await;
    let channel = app.seed_channel().await;
    let mut ids = vec![];
    for i in 0..5 {
        app.clock.advance(chrono::Duration::seconds(1));
        ids.push(
            app.seed_conversation(channel, (i % 2 == 0).then_some(agent_id))
                .await,
        );
    }
    let page = |after: Option<String>| {
        app.gql(
            &app.admin_token,
            "query($a:String){ conversations(first:2, after:$a, order:CREATED_AT_DESC){ edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({"a": after}),
        )
    };
    let mut seen = vec![];
    let mut after = None;
    loop {
        let r = page(after.clone()).await;
        let conn = r.data()["conversations"].clone();
        for e in conn["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().parse::<i64>().unwrap());
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");

    let queue = app
        .gql(
            &app.admin_token,
            "{ conversations(filter:{unassigned:true}){ edges { node { id assignee { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        queue.data()["conversations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let bad = app
        .gql(
            &app.admin_token,
            "{ conversations(first:2, after:\"nope\"){ edges { cursor } } }",
            json!({}),
        )
        .await;
    bad.assert_code("BAD_USER_INPUT");
    assert_eq!(bad.body["errors"][0]["extensions"]["field"], "after");
}

#[tokio::test]
async fn search_finds_a_conversation_by_contact_name_case_insensitively() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await;
    app.seed_conversation(channel, None).await;
    let contact = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ contact { id } } }",
            json!({"id": id.to_string()}),
        )
        .await
        .data()["conversation"]["contact"]["id"]
        .clone();
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ updateContact(id:$id, input:{name:\"Giulia Rossi\", fields:{address:\"Via Roma 1\"}}){ id } }",
        json!({"id": contact}),
    )
    .await
    .data();
    let r = app
        .gql(&app.admin_token, "{ conversations(filter:{search:\"giulia\"}){ edges { node { id contact { displayName fields } } } } }", json!({}))
        .await;
    let edges = r.data()["conversations"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["id"], id.to_string());
    assert_eq!(edges[0]["node"]["contact"]["displayName"], "Giulia Rossi");
    assert_eq!(
        edges[0]["node"]["contact"]["fields"]["address"],
        "Via Roma 1"
    );
}

#[tokio::test]
async fn notes_are_internal_capped_at_300_characters_and_listed_in_order() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    let add = |body: String| {
        app.gql(
            &app.admin_token,
            "mutation($id:ID!,$b:String!){ addNote(conversationId:$id, body:$b){ id body author { email } } }",
            json!({"id": id, "b": body}),
        )
    };
    let too_long = add("a".repeat(301)).await;
    too_long.assert_code("BAD_USER_INPUT");
    assert_eq!(too_long.body["errors"][0]["extensions"]["field"], "body");
    add("10:40 | return | asked for order number".into())
        .await
        .data();
    add("a".repeat(300)).await.data();
    let r = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ notes { body author { email } } } }",
            json!({"id": id}),
        )
        .await;
    let notes = r.data()["conversation"]["notes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["body"], "10:40 | return | asked for order number");
    assert_eq!(notes[0]["author"]["email"], "admin@test.example");
}

#[tokio::test]
async fn tags_are_added_and_removed_and_filter_the_list() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    app.seed_conversation(channel, None).await;
    let tag = app
        .gql(
            &app.admin_token,
            "mutation { createTag(name:\"VIP\") { id name } }",
            json!({}),
        )
        .await;
    assert_eq!(tag.data()["createTag"]["name"], "vip");
    let tag_id = tag.data()["createTag"]["id"].clone();
    let set = app
        .gql(&app.admin_token, "mutation($c:ID!,$t:ID!){ setConversationTags(conversationId:$c, add:[$t]){ tags { name } } }", json!({"c": id, "t": tag_id}))
        .await;
    assert_eq!(
        set.data()["setConversationTags"]["tags"],
        json!([{"name": "vip"}])
    );
    let filtered = app
        .gql(
            &app.admin_token,
            "query($t:ID!){ conversations(filter:{tagId:$t}){ edges { node { id } } } }",
            json!({"t": tag_id}),
        )
        .await;
    assert_eq!(
        filtered.data()["conversations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let removed = app
        .gql(&app.admin_token, "mutation($c:ID!,$t:ID!){ setConversationTags(conversationId:$c, remove:[$t]){ tags { name } } }", json!({"c": id, "t": tag_id}))
        .await;
    assert_eq!(removed.data()["setConversationTags"]["tags"], json!([]));
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ setConversationTags(conversationId:$c, add:[\"424242\"]){ id } }",
        json!({"c": id}),
    )
    .await
    .assert_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn channel_secrets_are_never_readable() {
    let app = spawn_app().await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation { createChannel(input:{name:\"IT\", phoneNumberId:\"1234567\", appSecret:\"s3cret\", accessToken:\"EAAG\"}) { hasAppSecret hasAccessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["createChannel"],
        json!({"hasAppSecret": true, "hasAccessToken": true})
    );
    let schema = api::graphql::sdl();
    let channel_type = schema
        .split("type Channel {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    assert!(!channel_type.contains("appSecret") && !channel_type.contains("accessToken"));
    let audit = app
        .gql(
            &app.admin_token,
            "{ auditLog(filter:{entityType:\"channel\"}){ edges { node { after } } } }",
            json!({}),
        )
        .await;
    assert!(!audit.body.to_string().contains("s3cret"));
}

/// Seeds `n` inbound messages one minute apart, the last one newest.
async fn seed_messages(app: &crate::helpers::TestApp, channel: i64, conversation: i64, n: i64) {
    use chrono::Duration;
    use entity::{DeliveryStatus, Direction, MessageType, SenderKind, message};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let start = app.now() - Duration::minutes(n);
    let rows = (0..n).map(|i| message::ActiveModel {
        conversation_id: Set(conversation),
        channel_id: Set(channel),
        direction: Set(Direction::Inbound),
        sender_kind: Set(SenderKind::Customer),
        message_type: Set(MessageType::Text),
        body: Set(Some(format!("m{i}"))),
        status: Set(DeliveryStatus::Received),
        created_at: Set(start + Duration::minutes(i)),
        ..Default::default()
    });
    if n > 0 {
        message::Entity::insert_many(rows)
            .exec(&app.domain.db)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_queue_page_shows_each_conversations_newest_messages() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let mut expected = vec![];
    for n in [7, 2, 0] {
        let c = app.seed_conversation(channel, None).await;
        seed_messages(&app, channel, c, n).await;
        let newest: Vec<String> = (0..n).rev().take(5).map(|i| format!("m{i}")).collect();
        expected.push((c.to_string(), newest));
    }
    let r = app
        .gql(
            &app.admin_token,
            "{ conversations(first: 10){ edges { node { id recentMessages { body } } } } }",
            json!({}),
        )
        .await;
    let mut seen: Vec<(String, Vec<String>)> = r.data()["conversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let texts = e["node"]["recentMessages"].as_array().unwrap();
            let texts = texts
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_string());
            (
                e["node"]["id"].as_str().unwrap().to_string(),
                texts.collect(),
            )
        })
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);

    let two = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ recentMessages(last: 2){ body } } }",
            json!({"id": expected.iter().find(|(_, m)| m.len() == 5).unwrap().0}),
        )
        .await;
    assert_eq!(
        two.data()["conversation"]["recentMessages"],
        json!([{"body": "m6"}, {"body": "m5"}])
    );
    let zero = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ recentMessages(last: 0){ body } } }",
            json!({"id": expected[0].0}),
        )
        .await;
    zero.assert_code("BAD_USER_INPUT");
    assert_eq!(zero.body["errors"][0]["extensions"]["field"], "last");
}
