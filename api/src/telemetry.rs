//! Structured logs through `tracing`; JSON when configured. Every line logged
//! while a request is handled carries the request's span (`request_id`,
//! method, path; see `startup::serve`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// `RUST_LOG` wins; the default keeps SQL statements out of info logs.
pub fn init(format: &str) {
    init_with_writer(format, std::io::stdout);
}

/// [`init`] writing to `writer` (tests capture the lines). Returns whether
/// this call installed the global subscriber: a second init (tests start
/// several apps) is harmless and keeps the first.
pub fn init_with_writer<W>(format: &str, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format == "json" {
        builder.json().try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    }
}
