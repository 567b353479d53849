//! The command line: `helpdesk [serve|migrate|print-schema|create-user|demo]`.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use domain::events::NoEvents;
use domain::staff::StaffForCreate;
use domain::{Actor, SystemClock};
use entity::Role;
use migration::{Migrator, MigratorTrait};

use crate::config::Config;
use crate::startup::{Application, open_domain};
use crate::{db, telemetry};

#[derive(Parser)]
#[command(
    name = "helpdesk",
    version,
    about = "WhatsApp Business customer-service helpdesk"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending migrations (or roll back with --down).
    Migrate {
        /// Roll back this many migrations instead.
        #[arg(long)]
        down: Option<u32>,
    },
    /// Print the GraphQL schema (SDL).
    PrintSchema,
    /// Create a staff user.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role, default_value = "agent")]
        role: Role,
        /// Read from HELPDESK_NEW_USER_PASSWORD when not given.
        #[arg(long, env = "HELPDESK_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Roll up the metrics of every completed hour now (after an upgrade or
    /// a bulk import) instead of leaving it to the servers' workers.
    Rollup,
    /// Fill the database with a realistic demo desk.
    Demo {
        /// How many conversations to generate.
        #[arg(long, default_value_t = 300)]
        conversations: u32,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s.to_ascii_lowercase().as_str() {
        "admin" => Ok(Role::Admin),
        "editor" => Ok(Role::Editor),
        "agent" => Ok(Role::Agent),
        "analyst" => Ok(Role::Analyst),
        _ => Err("one of admin, editor, agent, analyst".into()),
    }
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", crate::graphql::sdl());
        return Ok(());
    }
    let config = Config::load()?;
    telemetry::init(&config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate { down } => {
            let (db, _) = db::connect(&config.database_url, 1).await?;
            match down {
                Some(steps) => Migrator::down(&db, Some(steps)).await?,
                None => Migrator::up(&db, None).await?,
            }
            println!("migrations done");
        }
        Command::CreateUser {
            email,
            name,
            role,
            password,
        } => {
            let (domain, _) =
                open_domain(&config, Arc::new(SystemClock), Arc::new(NoEvents)).await?;
            let user = domain
                .create_staff(
                    &Actor::system(),
                    StaffForCreate {
                        email,
                        name,
                        password,
                        role,
                        skills: vec![],
                        max_concurrent: None,
                        department_ids: vec![],
                    },
                )
                .await?;
            println!(
                "created user {} ({:?}) id {}",
                user.email, user.role, user.id
            );
        }
        Command::Demo { conversations } => {
            let (domain, _) =
                open_domain(&config, Arc::new(SystemClock), Arc::new(NoEvents)).await?;
            // A fresh demo database gets its admin like a first start does.
            if let Some(password) = domain
                .ensure_initial_admin(&config.admin_email, config.admin_password.as_deref())
                .await?
            {
                println!(
                    "created the first admin {} with password {password}",
                    config.admin_email
                );
            }
            let summary = crate::demo::run(&domain, conversations).await?;
            println!("{summary}");
        }
        Command::Rollup => {
            let (domain, _) =
                open_domain(&config, Arc::new(SystemClock), Arc::new(NoEvents)).await?;
            let started = std::time::Instant::now();
            let mut hours = 0;
            loop {
                let n = domain
                    .refresh_metrics_rollups(24 * 7, crate::workers::ROLLUP_SETTLE)
                    .await?;
                if n == 0 {
                    break;
                }
                hours += n;
            }
            println!(
                "rolled up {hours} hours in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::PrintSchema => {}
    }
    Ok(())
}
