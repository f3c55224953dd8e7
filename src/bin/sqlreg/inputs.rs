//! The positional arguments every subcommand shares: an optional config
//! file, Hydra-style overrides, and (for `exec`) the SQL — told apart by shape.

use std::path::PathBuf;

use sqlreg::Config;

/// The config file used when none is named and `SQLREG_CONFIG` is unset.
const DEFAULT_CONFIG: &str = "config.yaml";

/// Positional arguments sorted into plain values and overrides.
pub struct Inputs {
    /// Arguments that are not overrides, in order (config file, SQL).
    pub plain: Vec<String>,
    overrides: Vec<String>,
}

impl Inputs {
    /// Sorts `args`: `key=value`, `+key=value`, `++key=value` and `~key`
    /// (a dotted key of letters, digits, `_` and `-`) are overrides.
    pub fn sort(args: Vec<String>) -> Self {
        let (overrides, plain) = args.into_iter().partition(|arg| is_override(arg));
        Self { plain, overrides }
    }

    /// Loads `file` (else `$SQLREG_CONFIG`, else `./config.yaml`) and applies
    /// the overrides before anything is validated.
    pub fn load(&self, file: Option<&str>) -> sqlreg::Result<(PathBuf, Config)> {
        let path = file
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("SQLREG_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let config = Config::from_yaml_file(&path)?.with_overrides(&self.overrides)?;
        Ok((path, config))
    }
}

/// Arguments for an error message, each cut at its first `:` or `=`: a
/// misspelled override (`db.url.password:…`) may carry a secret after it.
pub fn shown(args: &[String]) -> String {
    args.iter()
        .map(|arg| match arg.find([':', '=']) {
            Some(cut) => format!("`{}…`", &arg[..cut]),
            None => format!("`{arg}`"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_override(arg: &str) -> bool {
    let (key, has_value) = match arg.strip_prefix('~') {
        Some(key) => (key, true),
        None => {
            let arg = arg.trim_start_matches('+');
            match arg.split_once('=') {
                Some((key, _)) => (key, true),
                None => (arg, false),
            }
        }
    };
    has_value
        && !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::{is_override, shown};

    #[test]
    fn values_are_cut_from_echoed_arguments() {
        let args = ["a.yaml".to_owned(), "db.url.password:hunter2".to_owned()];
        assert_eq!(shown(&args), "`a.yaml`, `db.url.password…`");
    }

    #[test]
    fn overrides_are_told_from_files_and_sql() {
        for arg in [
            "core_lib.db.log_queries=true",
            "+a.b=1",
            "++a=",
            "~core_lib.db.create_db",
        ] {
            assert!(is_override(arg), "{arg}");
        }
        for arg in [
            "config.yaml",
            "./x=y.yaml",
            "UPDATE t SET a=1",
            "SELECT 1",
            "~",
        ] {
            assert!(!is_override(arg), "{arg}");
        }
    }
}
