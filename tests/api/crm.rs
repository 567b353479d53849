//! A local stand-in for a CRM's webhook endpoint: records every request
//! (headers and raw body) and answers with scripted statuses (the next one
//! in the list, then the default).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<u16>>,
    default_status: Mutex<u16>,
}

pub struct Crm {
    pub url: String,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<State>>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    lock(&state.received).push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = lock(&state.script)
        .pop_front()
        .unwrap_or(*lock(&state.default_status));
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    )
    .body("")
}

impl Crm {
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        *lock(&state.default_status) = 200;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the CRM stand-in");
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
            url: format!("http://127.0.0.1:{port}/hooks/helpdesk"),
            state,
        }
    }

    /// The next answers, in order; afterwards the default.
    pub fn answer(&self, statuses: &[u16]) {
        lock(&self.state.script).extend(statuses.iter().copied());
    }

    pub fn answer_always(&self, status: u16) {
        *lock(&self.state.default_status) = status;
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}
