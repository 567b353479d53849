//! A local stand-in for the Cloud API's send endpoint: an actix-web server on
//! an ephemeral port that records every request (path, `Authorization`
//! header, JSON body) and answers as scripted: success with a generated
//! wamid, a transient error N times then success, or a permanent Meta error.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Debug, Clone)]
enum Script {
    Succeed,
    Transient {
        remaining: u32,
        status: u16,
        code: Option<i64>,
    },
    Permanent {
        status: u16,
        code: i64,
        title: String,
    },
}

#[derive(Debug)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<Script>,
    delay: Mutex<Option<Duration>>,
    /// wamids handed out, in order.
    wamids: Mutex<Vec<String>>,
}

pub struct CloudApi {
    /// What `graph_base_url` should be.
    pub base_url: String,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<State>>) -> HttpResponse {
    let recorded = Recorded {
        path: req.path().to_string(),
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let to = recorded.body["to"].clone();
    lock(&state.requests).push(recorded);
    let delay = *lock(&state.delay);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let answer = {
        let mut script = lock(&state.script);
        match &mut *script {
            Script::Transient {
                remaining,
                status,
                code,
            } if *remaining > 0 => {
                *remaining -= 1;
                Some((*status, *code, "Temporary failure".to_string()))
            }
            Script::Permanent {
                status,
                code,
                title,
            } => Some((*status, Some(*code), title.clone())),
            _ => None,
        }
    };
    match answer {
        None => {
            let wamid = format!("wamid.{}", uuid::Uuid::new_v4().simple());
            lock(&state.wamids).push(wamid.clone());
            HttpResponse::Ok().json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            }))
        }
        Some((status, code, title)) => {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            match code {
                Some(code) => HttpResponse::build(status).json(json!({
                    "error": {
                        "message": format!("(#{code}) {title}"),
                        "type": "OAuthException",
                        "code": code,
                        "error_data": {"messaging_product": "whatsapp", "details": format!("{title} (details)")},
                        "fbtrace_id": "AbCdEf",
                    }
                })),
                None => HttpResponse::build(status).body("upstream unavailable"),
            }
        }
    }
}

impl CloudApi {
    pub async fn start() -> Self {
        let state = Arc::new(State {
            requests: Mutex::new(vec![]),
            script: Mutex::new(Script::Succeed),
            delay: Mutex::new(None),
            wamids: Mutex::new(vec![]),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("port").port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Every request answers success with a new wamid (the default).
    pub fn succeed(&self) {
        *lock(&self.state.script) = Script::Succeed;
    }

    /// The next `times` requests fail with `status` (and Meta `code` when
    /// given); later ones succeed.
    pub fn fail_transient(&self, times: u32, status: u16, code: Option<i64>) {
        *lock(&self.state.script) = Script::Transient {
            remaining: times,
            status,
            code,
        };
    }

    /// Every request fails with this Meta error (HTTP 400).
    pub fn fail_permanently(&self, code: i64, title: &str) {
        *lock(&self.state.script) = Script::Permanent {
            status: 400,
            code,
            title: title.to_string(),
        };
    }

    /// Each request waits this long before answering.
    pub fn delay(&self, by: Duration) {
        *lock(&self.state.delay) = Some(by);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    pub fn wamids(&self) -> Vec<String> {
        lock(&self.state.wamids).clone()
    }
}
