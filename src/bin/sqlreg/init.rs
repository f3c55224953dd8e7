//! `sqlreg init`: a commented starter `config.yaml` in core-lib's shape.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Failure;

const SQLITE: &str = include_str!("templates/sqlite.yaml");
const POSTGRES: &str = include_str!("templates/postgres.yaml");
const MARIADB: &str = include_str!("templates/mariadb.yaml");

/// Arguments of `sqlreg init`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory to write config.yaml into (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// A PostgreSQL template, credentials from ${oc.env:…}.
    #[arg(long, conflicts_with = "mariadb")]
    postgres: bool,
    /// A MariaDB / MySQL template, credentials from ${oc.env:…}.
    #[arg(long)]
    mariadb: bool,
    /// Overwrite an existing config.yaml.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &Args) -> Result<ExitCode, Failure> {
    let (template, kind) = if args.postgres {
        (POSTGRES, "PostgreSQL")
    } else if args.mariadb {
        (MARIADB, "MariaDB")
    } else {
        (SQLITE, "SQLite")
    };
    let file = args.dir.join("config.yaml");
    if file.exists() && !args.force {
        return Err(format!(
            "{} already exists; pass --force to overwrite it",
            file.display()
        )
        .into());
    }
    std::fs::create_dir_all(&args.dir)
        .and_then(|()| std::fs::write(&file, template))
        .map_err(|err| format!("cannot write {}: {err}", file.display()))?;
    println!(
        "wrote {} ({kind}); next: sqlreg check {}",
        file.display(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}
