//! The HTTP client of outbound webhooks (the rules live in
//! `domain::webhooks_out`): one POST per attempt, redirects not followed.

use std::time::Duration;

use async_trait::async_trait;
use domain::webhooks_out::{WebhookRequest, WebhookSender};

/// Below the delivery claim (30 s), so a live sender never loses its claim.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    http: reqwest::Client,
}

impl HttpWebhookSender {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("helpdesk-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    #[tracing::instrument(skip_all)]
    async fn post(&self, request: &WebhookRequest) -> Result<u16, String> {
        let mut req = self.http.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        match req.send().await {
            Ok(resp) => Ok(resp.status().as_u16()),
            Err(e) if e.is_timeout() => Err("the endpoint did not answer in time".into()),
            Err(e) if e.is_connect() => Err("cannot connect to the endpoint".into()),
            Err(_) => Err("network error talking to the endpoint".into()),
        }
    }
}
