//! `helpdesk`: starts the api (see `helpdesk --help`).

// GraphQL resolution allocates many small, short-lived objects; under load
// glibc's malloc and free were a third of the server's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a default TLS provider: install ring's once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    api::cli::run().await
}
