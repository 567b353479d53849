//! `loadgen`: drives a running helpdesk the way production does and reports
//! throughput and latency percentiles (HDR histogram), as text or JSON.
//!
//! - `webhook`: signed WhatsApp deliveries, flat out or at a fixed rate;
//! - `assign`: inbound message to assignment event, at a fixed rate;
//! - `welcome`: inbound message from a new customer to its welcome in the outbox;
//! - `subscribers`: sockets held, memory per socket, publish-to-receive latency.
//!
//! See BENCHMARKS.md for the commands and the figures.

mod assign;
mod client;
mod subscribers;
mod webhook;
mod welcome;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadgen", about = "Load generator for the helpdesk")]
struct Cli {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    setup: Setup,
    #[command(subcommand)]
    scenario: Scenario,
}

/// The admin login and the load channel every scenario uses.
#[derive(Args)]
struct Setup {
    #[arg(long, default_value = "admin@example.com", global = true)]
    admin_email: String,
    /// Not global: clap refuses a required global argument.
    #[arg(long, env = "HELPDESK_ADMIN_PASSWORD")]
    admin_password: String,
    /// App secret the deliveries are signed with (set on the channel).
    #[arg(long, default_value = "loadgen-app-secret", global = true)]
    secret: String,
    #[arg(long, default_value = "700000000000001", global = true)]
    phone_number_id: String,
}

#[derive(Subcommand)]
enum Scenario {
    /// Signed webhook deliveries, one inbound text message each.
    Webhook {
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Deliveries to send in all.
        #[arg(long, default_value_t = 20_000)]
        messages: u64,
        /// Distinct customers the messages come from.
        #[arg(long, default_value_t = 5_000)]
        customers: u64,
        /// Deliveries per second in all (0: as fast as the server answers).
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// Messages from new customers at a fixed rate, timed to their assignment.
    Assign {
        #[arg(long, default_value_t = 500)]
        rate: u64,
        #[arg(long, default_value_t = 6)]
        seconds: u64,
        /// Online agents to route to (created when missing).
        #[arg(long, default_value_t = 160)]
        agents: u32,
        /// Simultaneous conversations per agent.
        #[arg(long, default_value_t = 20)]
        capacity: u32,
    },
    /// Messages from new customers at a fixed rate, timed until their welcome
    /// reply is in the outbox (a first-contact rule is created when missing).
    Welcome {
        #[arg(long, default_value_t = 500)]
        rate: u64,
        #[arg(long, default_value_t = 6)]
        seconds: u64,
    },
    /// WebSocket subscribers to one conversation's lock events.
    Subscribers {
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        /// `renewLock` calls per second (0: only hold the sockets).
        #[arg(long, default_value_t = 100)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the events are caused (default: --url).
        #[arg(long)]
        publish_url: Option<String>,
        /// The process id of the server behind --url, to read its memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let Setup {
        admin_email,
        admin_password,
        secret,
        phone_number_id,
    } = cli.setup;
    let admin_token = client::login(&client, &cli.url, &admin_email, &admin_password).await?;
    client::ensure_channel(&client, &cli.url, &admin_token, &phone_number_id, &secret).await?;

    let result = match cli.scenario {
        Scenario::Webhook {
            concurrency,
            messages,
            customers,
            rate,
        } => {
            let params = webhook::Params {
                url: cli.url,
                secret,
                phone_number_id,
                concurrency,
                messages,
                customers,
                rate,
            };
            webhook::run(client, params).await?
        }
        Scenario::Assign {
            rate,
            seconds,
            agents,
            capacity,
        } => {
            let params = assign::Params {
                url: cli.url,
                admin_token,
                secret,
                phone_number_id,
                rate,
                seconds,
                agents,
                capacity,
            };
            assign::run(client, params).await?
        }
        Scenario::Welcome { rate, seconds } => {
            let params = welcome::Params {
                url: cli.url,
                admin_token,
                secret,
                phone_number_id,
                rate,
                seconds,
            };
            welcome::run(client, params).await?
        }
        Scenario::Subscribers {
            subscribers,
            rate,
            seconds,
            publish_url,
            server_pid,
        } => {
            let params = subscribers::Params {
                publish_url: publish_url.unwrap_or_else(|| cli.url.clone()),
                url: cli.url,
                admin_token,
                secret,
                phone_number_id,
                subscribers,
                rate,
                seconds,
                server_pid,
            };
            subscribers::run(client, params).await?
        }
    };
    if cli.json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}
