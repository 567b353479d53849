//! `helpdesk`: starts the api (see `helpdesk --help`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a default TLS provider: install ring's once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    api::cli::run().await
}
