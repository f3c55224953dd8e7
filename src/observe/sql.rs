//! Reading SQL text for spans and labels: every literal replaced by `?`
//! (bound values never reach the text, but literals written into it can
//! hold anything), the statement's keyword, and the table it works on.

/// What a statement does, as the statement histogram's `operation` label:
/// a fixed set, so the label never grows with the application's SQL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Operation {
    Select,
    Insert,
    Update,
    Delete,
    Other,
}

impl Operation {
    pub(super) const ALL: [Self; 5] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Other,
    ];

    /// The operation of `sql`, by its first word.
    pub(crate) fn of(sql: &str) -> Self {
        let word = first_word(sql);
        Self::ALL[..4]
            .iter()
            .copied()
            .find(|op| word.eq_ignore_ascii_case(op.label()))
            .unwrap_or(Self::Other)
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Other => "OTHER",
        }
    }
}

/// The statement's first word, past blanks and opening parentheses.
fn first_word(sql: &str) -> &str {
    let rest = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// `db.operation.name`: the first keyword of `sanitized`, upper-cased.
pub(super) fn operation_name(sanitized: &str) -> Option<String> {
    let word = first_word(sanitized);
    (!word.is_empty()).then(|| word.to_ascii_uppercase())
}

/// `db.collection.name`: the table after the first `FROM`, `INTO` or
/// `UPDATE`, unquoted; `None` when that is not a plain (dotted) name.
pub(super) fn collection_name(sanitized: &str) -> Option<String> {
    let mut words = sanitized.split_whitespace();
    words.find(|w| {
        ["FROM", "INTO", "UPDATE"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k))
    })?;
    let target = words.next()?.split(['(', ',', ';']).next()?;
    let name: String = target.chars().filter(|c| !matches!(c, '"' | '`')).collect();
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    plain.then_some(name)
}

/// `sql` with every string, number and dollar-quoted literal replaced by
/// `?` and comments dropped; identifiers (quoted with `identifier_quote`)
/// and placeholders (`?`, `$1`) stay. Unsure cases hide more, never less.
pub(super) fn sanitize(sql: &str, identifier_quote: u8) -> String {
    let b = sql.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let after_word = out.last().is_some_and(|&p: &u8| {
            p.is_ascii_alphanumeric() || matches!(p, b'_' | b'$' | b'?') || p >= 0x80
        });
        match c {
            b'-' if next == Some(b'-') => {
                i = find(b, i, b"\n").unwrap_or(b.len());
            }
            b'/' if next == Some(b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |end| end + 2);
                out.push(b' ');
            }
            q if q == identifier_quote => {
                let end = quoted_end(b, i, false);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'\'' | b'"' | b'`' => {
                i = quoted_end(b, i, true);
                out.push(b'?');
            }
            b'$' if dollar_tag(b, i).is_some() => {
                let tag = dollar_tag(b, i).unwrap_or_default();
                i = find(b, i + tag.len(), tag).map_or(b.len(), |end| end + tag.len());
                out.push(b'?');
            }
            d if d.is_ascii_digit() && !after_word => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'_')) {
                    i += 1;
                }
                out.push(b'?');
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only whole ASCII-delimited runs were dropped, so this is still UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

/// Where `pattern` first occurs at or after `from`.
fn find(b: &[u8], from: usize, pattern: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pattern.len())
        .position(|w| w == pattern)
        .map(|at| from + at)
}

/// The index just past the quoted run starting at `start`: a doubled quote
/// continues it, and in a literal so does a backslash escape.
fn quoted_end(b: &[u8], start: usize, backslash_escapes: bool) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash_escapes => i += 2,
            c if c == quote && b.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// PostgreSQL's `$tag$` (or `$$`) opening a dollar-quoted string at `start`;
/// `None` for a placeholder such as `$1`.
fn dollar_tag(b: &[u8], start: usize) -> Option<&[u8]> {
    let tag_len = b[start + 1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    let close = start + 1 + tag_len;
    let starts_with_digit = b.get(start + 1).is_some_and(u8::is_ascii_digit);
    (b.get(close) == Some(&b'$') && !starts_with_digit).then(|| &b[start..=close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_placeholders_and_names_stay() {
        let cases = [
            (
                r#"SELECT "items"."id" FROM "items" WHERE "name" = $1 AND qty > 10"#,
                b'"',
                r#"SELECT "items"."id" FROM "items" WHERE "name" = $1 AND qty > ?"#,
            ),
            (
                "INSERT INTO t1 (a, b) VALUES ('it''s secret', -4.5e3) -- note 'x'\n",
                b'"',
                "INSERT INTO t1 (a, b) VALUES (?, -?) \n",
            ),
            (
                r#"SELECT `name` FROM `items` WHERE a = "s3cret" AND b = 'x\'y' AND c = ?"#,
                b'`',
                "SELECT `name` FROM `items` WHERE a = ? AND b = ? AND c = ?",
            ),
            (
                "SELECT $body$ it's $1 $body$, $$x$$ /* 'hidden' */ , ?2",
                b'"',
                "SELECT ?, ?   , ?2",
            ),
            ("SELECT 'unterminated secret", b'"', "SELECT ?"),
            ("SELECT 'ünï' AS é", b'"', "SELECT ? AS é"),
        ];
        for (sql, quote, expected) in cases {
            assert_eq!(sanitize(sql, quote), expected, "{sql}");
        }
    }

    #[test]
    fn operation_and_collection() {
        let sql = r#"  (SELECT "items"."id" FROM "public"."items" WHERE id = $1)"#;
        assert_eq!(Operation::of(sql), Operation::Select);
        assert_eq!(operation_name(sql).as_deref(), Some("SELECT"));
        assert_eq!(collection_name(sql).as_deref(), Some("public.items"));
        assert_eq!(
            collection_name("INSERT INTO items(name) VALUES (?)").as_deref(),
            Some("items")
        );
        assert_eq!(
            collection_name("update `items` set a = ?").as_deref(),
            Some("items")
        );
        assert_eq!(collection_name("SELECT 1"), None);
        assert_eq!(collection_name("SELECT * FROM (SELECT 1) AS t"), None);
        assert_eq!(
            Operation::of("with x as (select 1) select * from x"),
            Operation::Other
        );
        assert_eq!(Operation::of("delete from items"), Operation::Delete);
    }
}
