//! `loadgen`: drives a running helpdesk the way production does and reports
//! throughput and latency percentiles (HDR histogram), as text or JSON.
//!
//! - `webhook`: signed WhatsApp deliveries, flat out or at a fixed rate;
//! - `assign`: inbound message to assignment event, at a fixed rate;
//! - `welcome`: inbound message from a new customer to its welcome in the outbox;
//! - `subscribers`: sockets held, memory per socket, publish-to-receive latency;
//! - `reads`: GraphQL queue page and conversation reads (or a plain endpoint's);
//! - `locks`: lock acquire latency with many staff racing for few conversations;
//! - `agents`: agents opening, replying to and releasing conversations;
//! - `metrics`: dashboard queries through GraphQL;
//! - `redis-pubsub`: raw Redis publish-to-receive latency, the subscribers' baseline.
//!
//! See BENCHMARKS.md for the commands and the figures.

mod agents;
mod assign;
mod client;
mod locks;
mod metrics;
mod reads;
mod redis_pubsub;
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
    /// Needed by every scenario that talks to the server.
    #[arg(long, env = "HELPDESK_ADMIN_PASSWORD", global = true)]
    admin_password: Option<String>,
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
        /// Rotate message types (text, photo, location, button reply,
        /// reaction) instead of text only.
        #[arg(long)]
        mix: bool,
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
    /// GraphQL reads flat out: the queue page or one conversation.
    Reads {
        #[arg(long, value_enum)]
        read: reads::Read,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Conversations read in turn by `--read conversation`: FIRST-LAST.
        #[arg(long, default_value = "1-1", value_parser = id_range)]
        ids: (i64, i64),
        /// Read the same rows from the plain endpoint at this URL instead.
        #[arg(long)]
        plain_url: Option<String>,
    },
    /// Staff racing for the locks of a few conversations.
    Locks {
        #[arg(long, default_value_t = 32)]
        editors: u32,
        #[arg(long, default_value_t = 4)]
        conversations: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Milliseconds a taken lock is held before its release.
        #[arg(long, default_value_t = 2)]
        hold_ms: u64,
    },
    /// Agents opening, replying to and releasing conversations.
    Agents {
        #[arg(long, default_value_t = 16)]
        agents: u32,
        /// Conversations in all (new customers: at most 5 replies a minute each).
        #[arg(long, default_value_t = 320)]
        conversations: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Dashboard queries (core KPIs, daily series, per-agent KPIs) flat out.
    Metrics {
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The range: the last DAYS days.
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
    /// Raw Redis PUBLISH / SUBSCRIBE latency (needs no server).
    RedisPubsub {
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 100)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

fn id_range(s: &str) -> Result<(i64, i64), String> {
    let (a, b) = s.split_once('-').ok_or("expected FIRST-LAST")?;
    let (a, b) = (
        a.parse().map_err(|_| "FIRST: not a number")?,
        b.parse().map_err(|_| "LAST: not a number")?,
    );
    if a > b {
        return Err("FIRST must not exceed LAST".into());
    }
    Ok((a, b))
}

fn print(result: &serde_json::Value, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(result)?);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Scenario::RedisPubsub {
        redis_url,
        subscribers,
        rate,
        seconds,
    } = cli.scenario
    {
        let params = redis_pubsub::Params {
            redis_url,
            subscribers,
            rate,
            seconds,
        };
        return print(&redis_pubsub::run(params).await?, cli.json);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let Setup {
        admin_email,
        admin_password,
        secret,
        phone_number_id,
    } = cli.setup;
    let admin_password = admin_password.ok_or_else(|| {
        anyhow::anyhow!("--admin-password (or HELPDESK_ADMIN_PASSWORD) is required")
    })?;
    let admin_token = client::login(&client, &cli.url, &admin_email, &admin_password).await?;
    // Dashboard readers (an Analyst) send nothing and may not manage channels.
    if !matches!(cli.scenario, Scenario::Metrics { .. }) {
        client::ensure_channel(&client, &cli.url, &admin_token, &phone_number_id, &secret).await?;
    }

    let result = match cli.scenario {
        Scenario::Webhook {
            concurrency,
            messages,
            customers,
            rate,
            mix,
        } => {
            let params = webhook::Params {
                url: cli.url,
                secret,
                phone_number_id,
                concurrency,
                messages,
                customers,
                rate,
                mix,
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
        Scenario::Reads {
            read,
            concurrency,
            seconds,
            ids: (first, last),
            plain_url,
        } => {
            let params = reads::Params {
                url: cli.url,
                admin_token,
                read,
                concurrency,
                seconds,
                ids: (first..=last).collect(),
                plain_url,
            };
            reads::run(client, params).await?
        }
        Scenario::Locks {
            editors,
            conversations,
            seconds,
            hold_ms,
        } => {
            let params = locks::Params {
                url: cli.url,
                admin_token,
                secret,
                phone_number_id,
                editors,
                conversations,
                seconds,
                hold: std::time::Duration::from_millis(hold_ms),
            };
            locks::run(client, params).await?
        }
        Scenario::Agents {
            agents,
            conversations,
            seconds,
        } => {
            let params = locks::Params {
                url: cli.url,
                admin_token,
                secret,
                phone_number_id,
                editors: agents,
                conversations,
                seconds,
                hold: std::time::Duration::ZERO,
            };
            agents::run(client, params).await?
        }
        Scenario::Metrics {
            concurrency,
            seconds,
            days,
        } => {
            let params = metrics::Params {
                url: cli.url,
                admin_token,
                concurrency,
                seconds,
                days,
            };
            metrics::run(client, params).await?
        }
        Scenario::RedisPubsub { .. } => unreachable!("run before the login"),
    };
    print(&result, cli.json)
}
