//! Operations: `/metrics` after some traffic, request ids, and graceful
//! shutdown of the real binary (SIGTERM with a request in flight and a
//! WebSocket open).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::spawn_app;

#[tokio::test]
async fn metrics_show_the_listed_series_after_traffic() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let department = app.department("Returns", "SMART").await;
    app.seed_queued(channel, Some(department), entity::Priority::Normal, None)
        .await;
    app.gql(&app.admin_token, "query Me { me { id } }", json!({}))
        .await
        .data();
    app.gql(&app.admin_token, "query Broken { nope }", json!({}))
        .await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.headers().get("x-request-id").unwrap(),
        "req-abc-123",
        "a caller's request id is echoed"
    );
    let generated = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert!(generated.headers().get("x-request-id").is_some());
    // A webhook delivery that fails (not JSON).
    app.client
        .post(format!("{}/webhooks/whatsapp", app.address))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    // An open WebSocket.
    let mut req = format!("ws://127.0.0.1:{}/graphql", app.port)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (_ws, _) = connect_async(req).await.expect("websocket handshake");

    let scrape = || async {
        let resp = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        resp.text().await.unwrap()
    };
    // The workers' first ticks come asynchronously after start-up.
    app.eventually("the workers' first ticks", || async {
        let text = scrape().await;
        text.contains("helpdesk_worker_ticks_total{worker=\"locks\"}")
            && text.contains("helpdesk_worker_lag_seconds{worker=\"presence\"}")
    })
    .await;
    let text = scrape().await;
    for series in [
        "helpdesk_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2",
        "helpdesk_http_request_duration_seconds_bucket{route=\"/graphql\",le=\"+Inf\"}",
        "helpdesk_graphql_requests_total{operation=\"Me\",result=\"ok\"} 1",
        "helpdesk_graphql_requests_total{operation=\"Broken\",result=\"error\"} 1",
        "helpdesk_graphql_request_duration_seconds_count{operation=\"Me\"} 1",
        "helpdesk_webhook_ingest_total{result=\"failed\"} 1",
        "helpdesk_webhook_ingest_total{result=\"ok\"} 0",
        &format!("helpdesk_queue_length{{department=\"{department}\"}} 1"),
        "helpdesk_open_locks 0",
        "helpdesk_worker_ticks_total{worker=\"locks\"}",
        "helpdesk_worker_errors_total{worker=\"locks\"} 0",
        "helpdesk_worker_lag_seconds{worker=\"presence\"}",
        "helpdesk_events_published_total",
        "helpdesk_events_delivered_total",
        "helpdesk_outbox_backlog 0",
        "helpdesk_webhook_delivery_backlog 0",
        "helpdesk_websocket_connections 1",
        "# TYPE helpdesk_graphql_request_duration_seconds histogram",
    ] {
        assert!(text.contains(series), "missing `{series}` in:\n{text}");
    }
}

/// The binary, on a fresh SQLite file, port chosen by the OS.
struct Server {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_binary() -> Server {
    let dir = std::env::temp_dir().join(format!("helpdesk-op-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/hd.db?mode=rwc", dir.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HELPDESK_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", db)
        .env(
            "HELPDESK_JWT_SECRET",
            "a-test-secret-that-is-long-enough-1234",
        )
        .env("HELPDESK_ADMIN_PASSWORD", "admin-password-1")
        .env("HELPDESK_LOG_FORMAT", "json")
        .env("HELPDESK_SHUTDOWN_GRACE_SECS", "10")
        .env("HELPDESK_GRAPH_BASE_URL", "http://127.0.0.1:9")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the helpdesk binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["fields"]["message"] == "helpdesk listening"
                && let Some(port) = v["fields"]["port"].as_u64()
            {
                let _ = tx.send(port as u16);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the binary logs its port");
    Server {
        child,
        port,
        _dir: TempDir(dir),
    }
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_closes_sockets_and_exits_0() {
    let mut server = start_binary();
    let port = server.port;

    // A WebSocket that must be told the server is going away.
    let mut req = format!("ws://127.0.0.1:{port}/graphql")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = connect_async(req).await.expect("websocket handshake");
    ws.send(Message::Ping(vec![1].into())).await.unwrap();

    // A request whose body is only half sent when the signal comes.
    let body = json!({"query": "{ __typename }"}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        conn,
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The socket is closed with 1001 (going away).
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = ws.next().await {
            if let Ok(Message::Close(frame)) = msg {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the server closes the socket");
    assert_eq!(close, Some(1001));

    // The in-flight request completes.
    conn.write_all(tail.as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"__typename\":\"QueryRoot\""),
        "{response}"
    );

    // And the process exits 0 within the grace period.
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}
