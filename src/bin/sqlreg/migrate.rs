//! `sqlreg migrate`: the schema migrations of a config's database — list
//! them, apply them, revert them, or start a new one.

use std::path::PathBuf;
use std::process::ExitCode;

use sqlreg::{
    MigrationState, MigrationStatus, Migrations, MigrationsConfig, SqlConnectionRegistry,
};

use crate::Failure;
use crate::inputs::Inputs;

/// Arguments of `sqlreg migrate`.
#[derive(clap::Args)]
pub struct Args {
    /// The database section to use, as a dotted path.
    #[arg(long, default_value = "core_lib.db")]
    path: String,
    /// `up`: apply up to and including this version; `down`: revert every
    /// migration newer than it (default: only the newest).
    #[arg(long)]
    to: Option<i64>,
    /// [CONFIG] (default: $SQLREG_CONFIG, else ./config.yaml), then
    /// status | up | down | new NAME, then overrides such as
    /// core_lib.db.migrations.path=db/migrations.
    #[arg(value_name = "[CONFIG] status|up|down|new NAME", required = true)]
    args: Vec<String>,
}

/// What was asked: a new migration file, or work on the database.
enum Request {
    New(String),
    OnDatabase(Action),
}

/// What to do on the database.
enum Action {
    Status,
    Up,
    Down,
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    let inputs = Inputs::sort(args.args.clone());
    let (file, request) = parse(&inputs.plain)?;
    let action = match request {
        Request::OnDatabase(action) => action,
        Request::New(name) => return new(&inputs, file, &args.path, &name),
    };
    let (_, config) = inputs.load(file)?;
    let mut db = config.at(&args.path)?;
    let dir = directory(db.migrations.take());
    let migrations = Migrations::from_dir(&dir)?;
    // Without its `migrations` block, connecting never migrates by itself.
    let registry = SqlConnectionRegistry::connect(db).await?;
    let outcome = match action {
        Action::Status => status(&migrations, &registry).await,
        Action::Up => up(&migrations, &registry, args.to).await,
        Action::Down => down(&migrations, &registry, args.to).await,
    };
    registry.close().await;
    outcome
}

/// Writes a new reversible migration pair; needs no database.
fn new(
    inputs: &Inputs,
    file: Option<&str>,
    section: &str,
    name: &str,
) -> Result<ExitCode, Failure> {
    let dir = match inputs.load(file) {
        Ok((_, config)) => directory(config.at(section)?.migrations),
        // No config at all is fine for writing files: the default directory.
        Err(_) if file.is_none() => MigrationsConfig::default().path,
        Err(err) => return Err(err.into()),
    };
    for path in Migrations::create(&dir, name)? {
        println!("created {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn parse(plain: &[String]) -> Result<(Option<&str>, Request), Failure> {
    let (file, rest) = match plain.first().map(String::as_str) {
        Some("status" | "up" | "down" | "new") => (None, plain),
        Some(file) => (Some(file), &plain[1..]),
        None => (None, plain),
    };
    let request = match rest {
        [one] if one == "status" => Request::OnDatabase(Action::Status),
        [one] if one == "up" => Request::OnDatabase(Action::Up),
        [one] if one == "down" => Request::OnDatabase(Action::Down),
        [new, name] if new == "new" => Request::New(name.clone()),
        [new] if new == "new" => {
            return Err("`new` needs a NAME, e.g. `sqlreg migrate new add_users`".into());
        }
        other => {
            return Err(
                format!("expected [CONFIG] status | up | down | new NAME, got {other:?}").into(),
            );
        }
    };
    Ok((file, request))
}

fn directory(block: Option<MigrationsConfig>) -> PathBuf {
    block.unwrap_or_default().path
}

/// One line per migration; a changed, missing or half-applied one is then
/// explained and makes the command fail.
async fn status(migrations: &Migrations, db: &SqlConnectionRegistry) -> Result<ExitCode, Failure> {
    let statuses = migrations.status(db).await?;
    let applied = statuses
        .iter()
        .filter(|s| s.state == MigrationState::Applied)
        .count();
    let pending = statuses
        .iter()
        .filter(|s| s.state == MigrationState::Pending)
        .count();
    println!(
        "migrations {} on {}: {applied} applied, {pending} pending",
        migrations.dir().display(),
        db.url()
    );
    println!(
        "{:<16} {:<8} {:<17} description",
        "version", "state", "checksum"
    );
    for migration in &statuses {
        println!(
            "{:<16} {:<8} {:<17} {}",
            migration.version,
            migration.state.to_string(),
            short_checksum(migration),
            migration.description
        );
    }
    let problems: Vec<String> = statuses
        .iter()
        .filter_map(MigrationStatus::problem)
        .collect();
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The first 16 hex digits of the SHA-384 checksum.
fn short_checksum(migration: &MigrationStatus) -> String {
    let hex: String = migration
        .checksum
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}…")
}

async fn up(
    migrations: &Migrations,
    db: &SqlConnectionRegistry,
    to: Option<i64>,
) -> Result<ExitCode, Failure> {
    let applied = migrations.up(db, to).await?;
    if applied.is_empty() {
        println!("nothing to apply");
    } else {
        println!("applied {}", versions(&applied));
    }
    Ok(ExitCode::SUCCESS)
}

async fn down(
    migrations: &Migrations,
    db: &SqlConnectionRegistry,
    to: Option<i64>,
) -> Result<ExitCode, Failure> {
    let reverted = migrations.down(db, to).await?;
    if reverted.is_empty() {
        println!("nothing to revert");
    } else {
        println!("reverted {}", versions(&reverted));
    }
    Ok(ExitCode::SUCCESS)
}

fn versions(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
