//! Reading a statement's text for what it does beyond its rows: the
//! statements in it one by one, each one's leading words, and whether a
//! function name appears anywhere. Readings err on the side of "it may": a
//! string literal holding `;` or a keyword only makes a connection count as
//! changed when it was not, never the other way round.

/// The statements in `sql`, split at semicolons.
pub(super) fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';')
        .filter(|statement| !statement.trim().is_empty())
}

/// The words of one statement (runs of letters, digits and `_`), past any
/// leading comments: `SET LOCAL x = 1` gives `SET`, `LOCAL`, `x`, `1`.
pub(super) fn words(statement: &str) -> impl Iterator<Item = &str> {
    past_comments(statement)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
}

/// Whether `sql` holds `needle` (ASCII, any case) anywhere. It runs on
/// every statement: candidates are found by a SIMD search for the first
/// byte in either case, not by a byte-by-byte walk.
pub(super) fn mentions(sql: &str, needle: &str) -> bool {
    let (haystack, needle) = (sql.as_bytes(), needle.as_bytes());
    let Some(&first) = needle.first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, haystack).any(|at| {
        haystack
            .get(at..at + needle.len())
            .is_some_and(|candidate| candidate.eq_ignore_ascii_case(needle))
    })
}

/// Whether `word` is `keyword`, in any case.
pub(super) fn is(word: Option<&str>, keyword: &str) -> bool {
    word.is_some_and(|word| word.eq_ignore_ascii_case(keyword))
}

/// Whether `word` is one of `keywords`, in any case.
pub(super) fn is_any(word: Option<&str>, keywords: &[&str]) -> bool {
    keywords.iter().any(|keyword| is(word, keyword))
}

/// `statement` without leading blanks and `--` / `/* */` comments.
fn past_comments(statement: &str) -> &str {
    let mut rest = statement.trim_start();
    loop {
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest;
        }
        rest = rest.trim_start();
    }
}

/// Whether `sql` may write: anything but statements that only read
/// (`SELECT` without `INTO`, `SHOW`, `EXPLAIN` without `ANALYZE`,
/// `VALUES`, `TABLE`). A function called by a `SELECT` that writes is
/// invisible here.
pub(crate) fn may_write(sql: &str) -> bool {
    statements(sql).any(|statement| {
        let first = words(statement).next();
        let reads = is_any(first, &["SELECT", "SHOW", "VALUES", "TABLE"])
            || (is(first, "EXPLAIN") && !mentions(statement, "ANALYZE"));
        !reads || mentions(statement, "INTO")
    })
}

/// A short name for a statement in messages: its first words up to the
/// object it names, never a literal (`CREATE TABLE IF NOT EXISTS audit`).
pub(crate) fn summary(sql: &str) -> String {
    let statement = past_comments(sql);
    let mut summary = String::new();
    for word in statement.split_whitespace().take(6) {
        if word.contains(['\'', '"', '`', '(', '$', ';']) {
            break;
        }
        if !summary.is_empty() {
            summary.push(' ');
        }
        summary.push_str(word);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_leading_comments() {
        let found: Vec<_> = words("/* a */ -- b\n  SET LOCAL x = 1").collect();
        assert_eq!(found, ["SET", "LOCAL", "x", "1"]);
    }

    #[test]
    fn statements_split_at_semicolons() {
        let found: Vec<_> = statements("SELECT 1; SET x = 2;  ").collect();
        assert_eq!(found, ["SELECT 1", " SET x = 2"]);
    }

    #[test]
    fn mentions_ignores_case() {
        assert!(mentions("select PG_ADVISORY_LOCK(1)", "pg_advisory_lock"));
        assert!(!mentions(
            "select pg_advisory_xact_lock(1)",
            "advisory_lock"
        ));
        assert!(mentions("SELECT 1 INTO", "into"));
        assert!(!mentions("SELECT 1 INT", "into"));
        assert!(mentions("SET @x := 1", ":="));
        assert!(!mentions("", "x"));
    }

    #[test]
    fn summary_stops_before_literals() {
        assert_eq!(
            summary("CREATE TABLE IF NOT EXISTS audit (id int)"),
            "CREATE TABLE IF NOT EXISTS audit"
        );
        assert_eq!(summary("SET @x = 'secret'"), "SET @x =");
    }

    #[test]
    fn reads_are_told_from_what_may_write() {
        assert!(!super::may_write(
            "SELECT 1; /* c */ show tables; VALUES (1)"
        ));
        assert!(super::may_write("SELECT 1 INTO t"));
        assert!(super::may_write("INSERT INTO t VALUES (1)"));
        assert!(super::may_write(
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"
        ));
        assert!(super::may_write("EXPLAIN ANALYZE DELETE FROM t"));
    }
}
