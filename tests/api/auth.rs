//! Login, refresh, token checks and API tokens.

use chrono::Duration;
use jsonwebtoken_free::forge_hs512;
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, spawn_app};

mod jsonwebtoken_free {
    //! A token signed with HS512 by hand, to prove other algorithms are refused.
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha512;

    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    pub fn forge_hs512(secret: &str, claims: &serde_json::Value) -> String {
        let head = b64(br#"{"alg":"HS512","typ":"JWT"}"#);
        let body = b64(claims.to_string().as_bytes());
        let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{head}.{body}").as_bytes());
        format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
    }
}

#[tokio::test]
async fn login_gives_a_token_that_identifies_the_user() {
    let app = spawn_app().await;
    let me = app
        .gql(&app.admin_token, "{ me { email role } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["email"], ADMIN_EMAIL);
    assert_eq!(me.data()["me"]["role"], "ADMIN");
}

#[tokio::test]
async fn a_wrong_password_is_unauthenticated() {
    let app = spawn_app().await;
    let r = app
        .gql(
            "",
            "mutation { login(email:\"admin@test.example\", password:\"nope-nope\") { accessToken } }",
            json!({}),
        )
        .await;
    r.assert_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn without_a_token_protected_fields_are_unauthenticated() {
    let app = spawn_app().await;
    app.gql("", "{ me { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql("garbage", "{ me { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn an_access_token_expires_and_the_refresh_token_renews_it() {
    let app = spawn_app().await;
    let r = app
        .gql(
            "",
            "mutation { login(email:\"admin@test.example\", password:\"admin-password-1\") { accessToken refreshToken } }",
            json!({}),
        )
        .await;
    let access = r.data()["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = r.data()["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    app.clock.advance(Duration::minutes(16));
    app.gql(&access, "{ me { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    // A refresh token is not an access token.
    app.gql(&refresh, "{ me { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    let renewed = app
        .gql(
            "",
            "mutation($t:String!){ refreshToken(refreshToken:$t){ accessToken } }",
            json!({"t": refresh}),
        )
        .await;
    let fresh = renewed.data()["refreshToken"]["accessToken"]
        .as_str()
        .unwrap();
    app.gql(fresh, "{ me { id } }", json!({})).await.data();
}

#[tokio::test]
async fn a_token_signed_with_another_algorithm_is_refused() {
    let app = spawn_app().await;
    let now = app.now().timestamp();
    let forged = forge_hs512(
        "a-test-secret-that-is-long-enough-1234",
        &json!({"sub":"1","role":"admin","kind":"access","ver":0,"iss":"helpdesk",
                "aud":"helpdesk-api","iat":now,"exp":now+600}),
    );
    app.gql(&forged, "{ me { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn deactivating_a_user_revokes_its_tokens() {
    let app = spawn_app().await;
    let (id, token) = app.staff("Lea", "AGENT").await;
    app.gql(&token, "{ me { id } }", json!({})).await.data();
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ updateStaff(id:$id, input:{isActive:false}){ isActive } }",
        json!({"id": id.to_string()}),
    )
    .await
    .data();
    app.gql(&token, "{ me { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    let relogin = app
        .gql(
            "",
            "mutation($p:String!){ login(email:\"lea@test.example\", password:$p){ accessToken } }",
            json!({"p": PASSWORD}),
        )
        .await;
    relogin.assert_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn an_api_token_reads_reference_data_but_cannot_write_or_read_conversations() {
    let app = spawn_app().await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation { createApiToken(name:\"BI\") { secret token { id role } } }",
            json!({}),
        )
        .await;
    let secret = r.data()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r.data()["createApiToken"]["token"]["role"], "ANALYST");
    app.gql(&secret, "{ departments { id } }", json!({}))
        .await
        .data();
    app.gql(
        &secret,
        "{ conversations { edges { node { id } } } }",
        json!({}),
    )
    .await
    .assert_code("FORBIDDEN");
    app.gql(
        &secret,
        "mutation { createTag(name:\"x\") { id } }",
        json!({}),
    )
    .await
    .assert_code("FORBIDDEN");
    let id = r.data()["createApiToken"]["token"]["id"].clone();
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ revokeApiToken(id:$id){ revokedAt } }",
        json!({"id": id}),
    )
    .await
    .data();
    app.gql(&secret, "{ departments { id } }", json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
}
