//! What `migrate status` reports for each migration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::{Migrations, failure};
use crate::driver::Recorded;

/// Where one migration stands on a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The version, from the file name.
    pub version: i64,
    /// The name part of the file name, `_` shown as spaces.
    pub description: String,
    /// The up (or simple) migration file; `None` when it is missing here.
    pub file: Option<PathBuf>,
    /// The SHA-384 checksum of the file (of the applied script when the
    /// file is missing).
    pub checksum: Vec<u8>,
    /// Applied, pending, or in trouble.
    pub state: MigrationState,
}

/// The state of one migration on a database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationState {
    /// Applied, and the file still has the checksum it was applied with.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file changed since (sqlx refuses to migrate on).
    Changed {
        /// The checksum recorded when it was applied.
        applied_checksum: Vec<u8>,
    },
    /// Failed half-way on a backend without transactional DDL (MariaDB);
    /// needs fixing by hand before anything else migrates.
    Dirty,
    /// Recorded as applied, but no file has its version.
    Missing,
}

impl MigrationStatus {
    /// What is wrong with this migration and how to recover, when its state
    /// stops `migrate up` until someone acts (changed, dirty, missing).
    #[must_use]
    pub fn problem(&self) -> Option<String> {
        let name = match &self.file {
            Some(file) => format!("migration {} ({})", self.version, file.display()),
            None => format!("migration {}", self.version),
        };
        match self.state {
            MigrationState::Applied | MigrationState::Pending => None,
            MigrationState::Changed { .. } => Some(format!(
                "{name} was changed after it was applied; restore the file and put the change in a new migration"
            )),
            MigrationState::Dirty => Some(format!(
                "{name} failed half-way and left changes behind (MariaDB commits each DDL statement); {}",
                failure::recovery(self.version)
            )),
            MigrationState::Missing => Some(format!(
                "{name} is applied to the database but its file is missing"
            )),
        }
    }
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Changed { .. } => "CHANGED",
            Self::Dirty => "DIRTY",
            Self::Missing => "MISSING",
        })
    }
}

/// The files and the migrations table side by side, by version.
pub(super) fn list(migrations: &Migrations, recorded: &Recorded) -> Vec<MigrationStatus> {
    let applied: BTreeMap<i64, &[u8]> = recorded
        .applied
        .iter()
        .map(|m| (m.version, &*m.checksum))
        .collect();
    let mut statuses: Vec<MigrationStatus> = migrations
        .ups()
        .map(|m| {
            let state = match applied.get(&m.version) {
                _ if recorded.dirty == Some(m.version) => MigrationState::Dirty,
                None => MigrationState::Pending,
                Some(sum) if *sum == &*m.checksum => MigrationState::Applied,
                Some(sum) => MigrationState::Changed {
                    applied_checksum: sum.to_vec(),
                },
            };
            MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                file: migrations.file(m.version).cloned(),
                checksum: m.checksum.to_vec(),
                state,
            }
        })
        .collect();
    for (version, checksum) in applied {
        if !migrations.files.contains_key(&(version, false)) {
            statuses.push(MigrationStatus {
                version,
                description: String::new(),
                file: None,
                checksum: checksum.to_vec(),
                state: if recorded.dirty == Some(version) {
                    MigrationState::Dirty
                } else {
                    MigrationState::Missing
                },
            });
        }
    }
    statuses.sort_by_key(|s| s.version);
    statuses
}
