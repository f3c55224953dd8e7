//! libpq's two query parameters that say which of a URL's hosts a
//! connection may use — `target_session_attrs` and `load_balance_hosts` —
//! read when the URL is parsed, so a misspelling fails at startup, and kept
//! out of the query, because sqlreg applies them itself (for MySQL/MariaDB
//! too) and no driver must see them.

use std::fmt;

/// Which kind of server a connection wants, libpq's `target_session_attrs`.
/// With several hosts, sqlreg tries them in turn (in the order written, or
/// shuffled under `load_balance_hosts=random`) until one qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetSessionAttrs {
    /// `any`: whichever server answers first (libpq's default).
    Any,
    /// `read-write`: a server that accepts writes by default — not in
    /// recovery and with `default_transaction_read_only` off.
    ReadWrite,
    /// `read-only`: a server that refuses writes by default — in recovery,
    /// or with `default_transaction_read_only` on.
    ReadOnly,
    /// `primary`: a server not in recovery (whatever its default read-only
    /// setting).
    Primary,
    /// `standby`: a server in recovery (a hot standby).
    Standby,
    /// `prefer-standby`: a standby if any listed host is one that answers,
    /// else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    const ALL: [Self; 6] = [
        Self::Any,
        Self::ReadWrite,
        Self::ReadOnly,
        Self::Primary,
        Self::Standby,
        Self::PreferStandby,
    ];

    /// libpq's spelling.
    fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
            Self::Primary => "primary",
            Self::Standby => "standby",
            Self::PreferStandby => "prefer-standby",
        }
    }

    fn from_libpq(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|attrs| attrs.as_str() == text)
            .ok_or_else(|| {
                let valid: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown target_session_attrs `{text}`; valid values: {}",
                    valid.join(", ")
                )
            })
    }
}

impl fmt::Display for TargetSessionAttrs {
    /// libpq's spelling: `any`, `read-write`, `read-only`, `primary`,
    /// `standby`, `prefer-standby`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const TARGET: &str = "target_session_attrs";
const LOAD_BALANCE: &str = "load_balance_hosts";

/// How a URL's hosts are chosen from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct HostChoice {
    /// `target_session_attrs`, when given.
    pub(super) target: Option<TargetSessionAttrs>,
    /// `load_balance_hosts=random` (`disable`, the default, is `false`).
    pub(super) random: bool,
}

impl HostChoice {
    /// Takes both parameters out of the query; when one is repeated, the
    /// last wins, as in libpq.
    pub(super) fn take(query: &mut Vec<(String, String)>) -> Result<Self, String> {
        let mut choice = Self::default();
        for (key, value) in query.iter() {
            match key.as_str() {
                TARGET => choice.target = Some(TargetSessionAttrs::from_libpq(value)?),
                LOAD_BALANCE => {
                    choice.random = match value.as_str() {
                        "disable" => false,
                        "random" => true,
                        other => {
                            return Err(format!(
                                "unknown load_balance_hosts `{other}`; valid values: disable, random"
                            ));
                        }
                    };
                }
                _ => {}
            }
        }
        query.retain(|(key, _)| key != TARGET && key != LOAD_BALANCE);
        Ok(choice)
    }

    /// The parameters as the URL shows them (none for the defaults).
    pub(super) fn params(self) -> Vec<(String, String)> {
        let target = self.target.map(|t| (TARGET.to_owned(), t.to_string()));
        let random = self
            .random
            .then(|| (LOAD_BALANCE.to_owned(), "random".to_owned()));
        target.into_iter().chain(random).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn all_six_spellings_read_back() {
        for attrs in TargetSessionAttrs::ALL {
            let mut q = query(&[(TARGET, &attrs.to_string())]);
            assert_eq!(HostChoice::take(&mut q).unwrap().target, Some(attrs));
            assert!(q.is_empty());
        }
    }

    #[test]
    fn both_leave_the_query_and_show_again() {
        let mut q = query(&[
            ("sslmode", "disable"),
            (LOAD_BALANCE, "random"),
            (TARGET, "prefer-standby"),
        ]);
        let choice = HostChoice::take(&mut q).unwrap();
        assert_eq!(q, query(&[("sslmode", "disable")]));
        assert_eq!(
            choice.params(),
            query(&[(TARGET, "prefer-standby"), (LOAD_BALANCE, "random")])
        );
        let mut q = query(&[(LOAD_BALANCE, "disable")]);
        assert_eq!(HostChoice::take(&mut q).unwrap(), HostChoice::default());
        assert!(HostChoice::default().params().is_empty());
    }

    #[test]
    fn unknown_values_list_the_valid_ones() {
        let err = HostChoice::take(&mut query(&[(TARGET, "master")])).unwrap_err();
        assert_eq!(
            err,
            "unknown target_session_attrs `master`; valid values: \
             any, read-write, read-only, primary, standby, prefer-standby"
        );
        let err = HostChoice::take(&mut query(&[(LOAD_BALANCE, "yes")])).unwrap_err();
        assert!(err.contains("disable, random"), "{err}");
    }
}
