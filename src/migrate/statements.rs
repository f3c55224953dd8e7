//! Splitting a migration file into its statements, only to say which one
//! failed: quotes, comments and PostgreSQL's dollar quotes are respected so
//! a `;` inside them does not end a statement.

/// One statement of a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Statement {
    /// Its first line in the file, from 1.
    pub(super) line: usize,
    /// Its text, without the terminating `;`.
    pub(super) text: String,
}

/// The statements of `sql`, comments-only pieces left out.
pub(super) fn split(sql: &str) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut push = |from: usize, to: usize| {
        let from = from + leading_comments(&sql[from..to]);
        let text = sql[from..to].trim_end();
        if !text.is_empty() {
            statements.push(Statement {
                line: 1 + sql[..from].matches('\n').count(),
                text: text.to_owned(),
            });
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => i = closing(bytes, i + 1, quote),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'$' => match dollar_tag(&sql[i..]) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = sql[body..]
                        .find(tag)
                        .map_or(bytes.len(), |n| body + n + tag.len());
                }
                None => i += 1,
            },
            b';' => {
                push(start, i);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(start, bytes.len());
    statements
}

/// The index just past the quote closing one opened before `from` (a doubled
/// quote or a backslash escapes it).
fn closing(bytes: &[u8], mut from: usize, quote: u8) -> usize {
    while from < bytes.len() {
        match bytes[from] {
            b'\\' => from += 2,
            b if b == quote && bytes.get(from + 1) == Some(&quote) => from += 2,
            b if b == quote => return from + 1,
            _ => from += 1,
        }
    }
    bytes.len()
}

/// `$$` or `$tag$` at the start of `rest`.
fn dollar_tag(rest: &str) -> Option<&str> {
    let end = rest[1..].find('$')? + 2;
    let tag = &rest[..end];
    tag[1..end - 1]
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then_some(tag)
}

/// The length of the whitespace and comments `text` starts with.
fn leading_comments(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        rest = if let Some(comment) = trimmed.strip_prefix("--") {
            comment.find('\n').map_or("", |n| &comment[n..])
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            comment.find("*/").map_or("", |n| &comment[n + 2..])
        } else {
            return text.len() - trimmed.len();
        };
    }
}

/// The statement a database message points at, for backends that cannot
/// replay a failed migration: the first statement containing a name or
/// fragment quoted in the message (`Table 'db.orders' doesn't exist`,
/// `near 'FROM x' at line 1`).
pub(super) fn named_in(statements: &[Statement], message: &str) -> Option<usize> {
    let quoted = message
        .split(['\'', '"', '`'])
        .skip(1)
        .step_by(2)
        .filter(|fragment| !fragment.trim().is_empty());
    for fragment in quoted {
        let name = fragment.rsplit('.').next().unwrap_or(fragment);
        let needle = if name.trim().len() >= 3 {
            name
        } else {
            fragment
        };
        let needle = needle.trim().to_ascii_lowercase();
        if let Some(index) = statements
            .iter()
            .position(|s| s.text.to_ascii_lowercase().contains(&needle))
        {
            return Some(index);
        }
    }
    None
}

/// A statement on one line, cut at 120 characters.
pub(super) fn abbreviate(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::{named_in, split};

    #[test]
    fn semicolons_in_quotes_comments_and_dollar_bodies_do_not_split() {
        let sql = "-- header; still a comment\nCREATE TABLE a (x text DEFAULT ';');\n\n\
                   /* ; */ INSERT INTO a VALUES ('it''s; fine');\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n";
        let found = split(sql);
        let lines: Vec<usize> = found.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 5], "{found:#?}");
        assert!(found[0].text.starts_with("CREATE TABLE a"));
        assert!(found[0].text.ends_with("DEFAULT ';')"));
        assert!(found[2].text.contains("SELECT 1; $body$"));
    }

    #[test]
    fn a_quoted_name_in_the_message_finds_its_statement() {
        let found = split("CREATE TABLE a (x int);\nINSERT INTO orders VALUES (1);");
        let message = "1146 (42S02): Table 'app.orders' doesn't exist";
        assert_eq!(named_in(&found, message), Some(1));
        assert_eq!(named_in(&found, "no names here"), None);
    }
}
