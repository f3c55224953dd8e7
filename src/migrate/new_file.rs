//! `migrate new NAME`: an empty reversible migration, versioned by the UTC
//! time so migrations written on different branches do not collide.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(super) fn create(dir: &Path, name: &str) -> Result<[PathBuf; 2]> {
    let fail = |message: String| Error::Migration {
        version: None,
        file: Some(dir.to_owned()),
        message,
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(fail(format!(
            "`{name}` is not a migration name: use letters, digits and `_` (e.g. add_users)"
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|err| fail(format!("cannot create {}: {err}", dir.display())))?;
    let version = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let up = dir.join(format!("{version}_{name}.up.sql"));
    let down = dir.join(format!("{version}_{name}.down.sql"));
    for (path, text) in [
        (&up, "-- The schema change.\n"),
        (&down, "-- Undoes the .up.sql file of the same version.\n"),
    ] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
            .map_err(|err| fail(format!("cannot write {}: {err}", path.display())))?;
    }
    Ok([up, down])
}
