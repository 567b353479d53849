//! Every log line of a request carries its request id: the lines the real
//! subscriber (`api::telemetry`, JSON format) writes while a request is
//! handled are captured and read back.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::helpers::spawn_app;

/// The process-wide log capture: the global subscriber is installed once,
/// and every test's lines land here (each test looks for its own ids).
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        assert!(
            api::telemetry::init_with_writer("json", move || Sink(sink.clone())),
            "no other subscriber is installed in the test binary"
        );
        lines
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured JSON lines whose message is `message`.
fn lines_saying(message: &str) -> Vec<Value> {
    let bytes = captured().lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

async fn post_malformed(app: &crate::helpers::TestApp, request_id: Option<&str>) -> String {
    let mut req = app
        .client
        .post(format!("{}/webhooks/whatsapp", app.address))
        .header("content-type", "application/json")
        .body("not json");
    if let Some(id) = request_id {
        req = req.header("X-Request-Id", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    resp.headers()
        .get("x-request-id")
        .expect("a request id header")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_line_logged_while_handling_a_request_carries_its_request_id() {
    captured();
    let app = spawn_app().await;
    let given = format!("req-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(post_malformed(&app, Some(&given)).await, given);
    let generated = post_malformed(&app, None).await;
    assert_ne!(generated, given);

    let lines = lines_saying("webhook: malformed delivery");
    for id in [&given, &generated] {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "one line with request id {id} in {lines:?}");
        let line = mine[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["span"]["name"], "request");
        assert_eq!(line["span"]["path"], "/webhooks/whatsapp");
        // The request span encloses the handler's spans too.
        assert_eq!(line["spans"][0]["request_id"], id.as_str());
    }
}
