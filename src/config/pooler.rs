//! What stands between sqlreg and a PostgreSQL server (`session.pooler`):
//! nothing, or a connection pooler — PgBouncer, RDS Proxy, Supavisor,
//! PgCat — which changes what sqlreg may rely on.

use super::keyword::keywords;

/// The connection pooler in front of the server, if any (`session.pooler`).
///
/// Every pooler refuses the `options` startup parameter, which sqlreg uses
/// on a direct connection for `default_transaction_read_only` and
/// `statement_timeout`; behind one, sqlreg sets them otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pooler {
    /// A direct connection (the default): sqlreg owns each server session.
    #[default]
    None,
    /// A pooler in session mode (PgBouncer `pool_mode = session`): each
    /// client connection keeps one server connection while it is open, so
    /// sqlreg sets its settings once per connection, with `SET`.
    Session,
    /// A pooler in transaction mode (PgBouncer `pool_mode = transaction`,
    /// RDS Proxy, Supavisor, PgCat): between transactions the next
    /// statement may run on another server connection, shared with other
    /// clients. sqlreg then relies on nothing outside the current
    /// transaction: every session runs in one (read sessions in `BEGIN READ
    /// ONLY`), settings go into it (`SET LOCAL`), statements are never
    /// named prepared statements, and statements that would change the
    /// server connection for other clients (`SET`, temporary tables,
    /// session locks, `LISTEN`) are refused.
    Transaction,
}

impl Pooler {
    const NAMES: [(&'static str, Self); 3] = [
        ("none", Self::None),
        ("session", Self::Session),
        ("transaction", Self::Transaction),
    ];
}

keywords!(Pooler);

#[cfg(test)]
mod tests {
    use super::Pooler;

    #[test]
    fn names_parse_and_a_typo_lists_them() {
        assert_eq!("Transaction".parse(), Ok(Pooler::Transaction));
        assert_eq!("session".parse(), Ok(Pooler::Session));
        let err = "transactions".parse::<Pooler>().unwrap_err();
        assert!(err.contains("none, session, transaction"), "{err}");
    }
}
