//! Structured logs through `tracing`; JSON when configured.

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` wins; the default keeps SQL statements out of info logs.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests start several apps) is harmless: keep the first.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
