//! What a statement leaves behind on its connection, read from its text:
//! server state that outlives the transaction (so the connection must be
//! reset or closed before another session gets it), and, on MySQL and
//! MariaDB, whether it commits the open transaction by itself.
//!
//! State changed inside a server-side function or procedure is not in the
//! statement's text and stays invisible here (documented in the README).

use super::sql_text::{is, is_any, mentions, statements, words};

/// What a session may have left on its connection for the next session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Residue {
    /// Nothing beyond the transaction.
    None,
    /// State the backend's reset statement undoes (PostgreSQL's
    /// `DISCARD`-like reset); a backend without one closes the connection.
    Resettable,
    /// State no reset undoes without also dropping what the driver keeps
    /// for itself (its prepared statements): the connection is closed.
    Permanent,
}

const TEMPORARY: &[&str] = &["TEMP", "TEMPORARY"];

/// PostgreSQL: a plain `SET` (not `SET LOCAL`), `RESET`, `set_config(..)`,
/// `LISTEN`, a cursor `WITH HOLD`, a temporary table, a session advisory
/// lock leave resettable state; SQL-level `PREPARE` / `DEALLOCATE`,
/// `DISCARD` and `LOAD` would touch the driver's own statements or the
/// server process, so they close the connection.
pub(super) fn postgres(sql: &str) -> Residue {
    let functions = ["set_config", "advisory_lock", "pg_temp"];
    let mut residue = if functions.iter().any(|name| mentions(sql, name)) {
        Residue::Resettable
    } else {
        Residue::None
    };
    for statement in statements(sql) {
        let mut words = words(statement);
        let first = words.next();
        let this = if is(first, "SET") {
            if is_any(words.next(), &["LOCAL", "TRANSACTION", "CONSTRAINTS"]) {
                Residue::None
            } else {
                Residue::Resettable
            }
        } else if is_any(first, &["RESET", "LISTEN", "UNLISTEN"])
            || (is(first, "DECLARE") && mentions(statement, "hold"))
            || (is(first, "CREATE") && creates_temporary(words))
            || into_temporary(statement)
        {
            Residue::Resettable
        } else if is_any(first, &["PREPARE", "DEALLOCATE", "DISCARD", "LOAD"]) {
            Residue::Permanent
        } else {
            Residue::None
        };
        residue = residue.max(this);
    }
    residue
}

/// MySQL / MariaDB: any `SET` but `SET TRANSACTION` (next transaction
/// only), a user variable assigned (`:=`, `INTO @v`), a temporary table,
/// `PREPARE`, `USE`, `LOCK TABLES`, a named lock (`GET_LOCK`). Resettable
/// only with `COM_RESET_CONNECTION`, which sqlx does not send: such a
/// connection is closed.
pub(super) fn mysql(sql: &str) -> Residue {
    let assigns = mentions(sql, ":=") || (mentions(sql, "@") && mentions(sql, "into"));
    if assigns || mentions(sql, "get_lock") {
        return Residue::Resettable;
    }
    resettable_if(statements(sql).any(|statement| {
        let mut words = words(statement);
        let first = words.next();
        if is(first, "SET") {
            !is(words.next(), "TRANSACTION")
        } else {
            is_any(first, &["PREPARE", "USE", "LOCK", "HANDLER"])
                || (is(first, "CREATE") && creates_temporary(words))
        }
    }))
}

/// SQLite: a `PRAGMA` that sets something (`= value`, or a call other than
/// the read-only `*_info` / `*_list` / `*_check` ones), `ATTACH` /
/// `DETACH`, a temporary table. Closing the connection undoes them.
pub(super) fn sqlite(sql: &str) -> Residue {
    resettable_if(statements(sql).any(|statement| {
        let mut words = words(statement);
        let first = words.next();
        if is(first, "PRAGMA") {
            let name = words.next().unwrap_or_default().to_ascii_lowercase();
            let reads = ["_info", "_list", "_check"]
                .iter()
                .any(|suffix| name.ends_with(suffix));
            statement.contains('=') || (statement.contains('(') && !reads)
        } else {
            is_any(first, &["ATTACH", "DETACH"])
                || (is(first, "CREATE") && creates_temporary(words))
        }
    }))
}

/// [`Residue::Resettable`] when a statement changed state, else none.
fn resettable_if(changes: bool) -> Residue {
    if changes {
        Residue::Resettable
    } else {
        Residue::None
    }
}

/// Whether a MySQL / MariaDB statement commits the open transaction by
/// itself (the server's "statements that cause an implicit commit"): DDL
/// other than on temporary tables, account and lock statements, table
/// maintenance, and transaction control run as plain SQL.
pub(super) fn mysql_commits_implicitly(sql: &str) -> bool {
    const COMMITTING: &[&str] = &[
        "ALTER",
        "RENAME",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "LOCK",
        "UNLOCK",
        "BEGIN",
        "START",
        "COMMIT",
        "ANALYZE",
        "OPTIMIZE",
        "REPAIR",
        "CHECK",
        "CACHE",
        "FLUSH",
        "INSTALL",
        "UNINSTALL",
        "XA",
    ];
    statements(sql).any(|statement| {
        let mut words = words(statement);
        let first = words.next();
        if is_any(first, &["CREATE", "DROP"]) {
            !creates_temporary(words)
        } else if is(first, "ROLLBACK") {
            // ROLLBACK [WORK] TO SAVEPOINT stays inside the transaction.
            !words.take(2).any(|word| word.eq_ignore_ascii_case("TO"))
        } else if is(first, "SET") {
            is_any(words.next(), &["autocommit", "PASSWORD"])
        } else if is(first, "LOAD") {
            is(words.next(), "INDEX")
        } else {
            is_any(first, COMMITTING)
        }
    })
}

/// After `CREATE` / `DROP`: whether the object is temporary
/// (`[OR REPLACE] [GLOBAL | LOCAL] TEMP[ORARY]`).
fn creates_temporary<'a>(words: impl Iterator<Item = &'a str>) -> bool {
    words
        .take(4)
        .find(|word| !is_any(Some(word), &["OR", "REPLACE", "GLOBAL", "LOCAL"]))
        .is_some_and(|word| is_any(Some(word), TEMPORARY))
}

/// PostgreSQL's `SELECT … INTO TEMP[ORARY] name`.
fn into_temporary(statement: &str) -> bool {
    if !mentions(statement, "temp") {
        return false;
    }
    let mut previous = None;
    words(statement).any(|word| {
        let found = is(previous, "INTO") && is_any(Some(word), TEMPORARY);
        previous = Some(word);
        found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_session_state() {
        for sql in [
            "SET search_path TO tenant_a",
            "set role app_admin",
            "SELECT set_config('app.tenant', 'a', false)",
            "SELECT pg_advisory_lock(1)",
            "LISTEN events",
            "CREATE TEMP TABLE t (id int)",
            "create global temporary table t (id int)",
            "SELECT 1 INTO TEMP t",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "SELECT 1; RESET ALL",
        ] {
            assert_eq!(postgres(sql), Residue::Resettable, "{sql}");
        }
        for sql in ["PREPARE p AS SELECT 1", "DISCARD ALL", "DEALLOCATE p"] {
            assert_eq!(postgres(sql), Residue::Permanent, "{sql}");
        }
        for sql in [
            "SET LOCAL search_path TO tenant_a",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SELECT pg_advisory_xact_lock(1)",
            "INSERT INTO item (name) VALUES ($1)",
            "CREATE TABLE temperature (id int)",
            "SELECT * FROM item WHERE settings = $1",
        ] {
            assert_eq!(postgres(sql), Residue::None, "{sql}");
        }
    }

    #[test]
    fn mysql_session_state() {
        for sql in [
            "SET @tenant = 'a'",
            "SET SESSION sql_mode = ''",
            "SELECT @n := 1",
            "SELECT 1 INTO @n",
            "SELECT GET_LOCK('x', 0)",
            "CREATE TEMPORARY TABLE t (id int)",
            "USE other",
        ] {
            assert_eq!(mysql(sql), Residue::Resettable, "{sql}");
        }
        for sql in [
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SELECT @@in_transaction",
            "INSERT INTO item (name) VALUES (?)",
        ] {
            assert_eq!(mysql(sql), Residue::None, "{sql}");
        }
    }

    #[test]
    fn sqlite_session_state() {
        assert_eq!(sqlite("PRAGMA foreign_keys = OFF"), Residue::Resettable);
        assert_eq!(sqlite("pragma foreign_keys(0)"), Residue::Resettable);
        assert_eq!(sqlite("PRAGMA table_info(item)"), Residue::None);
        assert_eq!(sqlite("PRAGMA foreign_keys"), Residue::None);
        assert_eq!(sqlite("CREATE TEMP TABLE t (id)"), Residue::Resettable);
        assert_eq!(sqlite("SELECT 1"), Residue::None);
    }

    #[test]
    fn mysql_implicit_commits() {
        for sql in [
            "CREATE TABLE IF NOT EXISTS audit (id int)",
            "drop table audit",
            "ALTER TABLE item ADD COLUMN x int",
            "TRUNCATE item",
            "COMMIT",
            "ROLLBACK",
            "START TRANSACTION",
            "LOCK TABLES item WRITE",
            "SET autocommit = 1",
            "INSERT INTO a VALUES (1); CREATE INDEX i ON a (id)",
        ] {
            assert!(mysql_commits_implicitly(sql), "{sql}");
        }
        for sql in [
            "CREATE TEMPORARY TABLE t (id int)",
            "DROP TEMPORARY TABLE t",
            "ROLLBACK TO SAVEPOINT s",
            "ROLLBACK WORK TO SAVEPOINT s",
            "INSERT INTO created (name) VALUES (?)",
            "SELECT * FROM item",
            "SET @x = 1",
        ] {
            assert!(!mysql_commits_implicitly(sql), "{sql}");
        }
    }
}
