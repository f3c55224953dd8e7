//! Masking secrets in YAML source text, for the lines a parse error quotes.
//! The text is quoted because it did not parse, so this reads it line by
//! line instead of as a tree, and errs on the side of hiding: the value of a
//! secret key is masked up to the end of its scalar (or of the line), and so
//! is every line below it that is indented deeper (a block scalar, a
//! continuation, a nested mapping or list).

use super::{MASK, Secrets, is_secret_key, mask_urls};

/// Masked YAML text and the secret values that were taken out of it.
pub(crate) struct MaskedYaml {
    /// The text, line for line, with secrets replaced by `***`.
    pub(crate) text: String,
    /// What was masked, to scrub from the parser's own message too.
    pub(crate) secrets: Secrets,
}

/// Masks the values of secret keys and the passwords of URLs in `text`.
pub(crate) fn mask_yaml(text: &str) -> MaskedYaml {
    let mut secrets = Secrets::default();
    let mut out = String::with_capacity(text.len());
    // The column a secret's value lines are indented beyond.
    let mut open: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent = body.len() - body.trim_start_matches(' ').len();
        let content = &body[indent..];
        if let Some(limit) = open {
            let list_item = indent == limit && (content == "-" || content.starts_with("- "));
            if content.is_empty() || indent > limit || list_item {
                out.push_str(&body[..indent]);
                if !content.is_empty() {
                    secrets.add(content);
                    out.push_str(MASK);
                }
                out.push_str(ending);
                continue;
            }
        }
        let (masked, opens) = mask_line(body, &mut secrets);
        open = opens;
        secrets.add_url_passwords(&masked);
        out.push_str(&mask_urls(&masked));
        out.push_str(ending);
    }
    MaskedYaml { text: out, secrets }
}

/// One line with the values of its secret keys masked, and the column of the
/// last secret key whose value may continue on the lines below.
fn mask_line(line: &str, secrets: &mut Secrets) -> (String, Option<usize>) {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut open = None;
    // Open `{`/`[` on this line: inside them `,` separates entries.
    let mut depth = 0usize;
    // Whether a key may start here: at the line's start, after `- `, `? `,
    // `{` or `,`.
    let mut key_may_start = true;
    let mut i = 0;
    while i < line.len() {
        let c = bytes[i];
        let spaced = |at: usize| bytes.get(at).is_none_or(|b| *b == b' ' || *b == b'\t');
        match c {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => {
                out.push_str(&line[copied..=i]);
                out.push_str(&mask_comment(&line[i + 1..], secrets));
                copied = line.len();
                break;
            }
            b'{' | b'[' => {
                depth += 1;
                key_may_start = true;
                i += 1;
                continue;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                key_may_start = false;
                i += 1;
                continue;
            }
            b',' if depth > 0 => {
                key_may_start = true;
                i += 1;
                continue;
            }
            b'-' | b'?' if key_may_start && spaced(i + 1) => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let token_end = if c == b'"' || c == b'\'' {
            closing_quote(line, i).map_or(line.len(), |end| end + 1)
        } else {
            plain_end(line, i, depth, true)
        };
        let after = &line[token_end..];
        let colon = token_end + (after.len() - after.trim_start_matches([' ', '\t']).len());
        // A quoted key may have its value right after the `:` (`{"a":"b"}`).
        let is_key = key_may_start
            && bytes.get(colon) == Some(&b':')
            && (spaced(colon + 1)
                || matches!(c, b'"' | b'\'')
                || (depth > 0 && matches!(bytes.get(colon + 1), Some(b',' | b'}' | b']'))));
        key_may_start = false;
        if !is_key {
            i = token_end.max(i + 1);
            continue;
        }
        let key = unquote(&line[i..token_end]);
        let key_column = i;
        i = colon + 1;
        if !is_secret_key(key) {
            key_may_start = depth == 0;
            continue;
        }
        let value_start = i + (line[i..].len() - line[i..].trim_start_matches([' ', '\t']).len());
        let rest = &line[value_start..];
        if rest.is_empty() || rest.starts_with(['#', '|', '>']) {
            open = Some(key_column);
            break;
        }
        let value_end = match rest.as_bytes()[0] {
            // An unclosed quote runs on over the next lines, whatever their
            // indentation: hide everything down to the next top-level key.
            b'"' | b'\'' => closing_quote(line, value_start).map_or_else(
                || {
                    open = Some(0);
                    line.len()
                },
                |end| end + 1,
            ),
            _ => plain_end(line, value_start, depth, false),
        };
        if depth == 0 && open.is_none() {
            open = Some(key_column);
        }
        secrets.add(unquote(&line[value_start..value_end]));
        out.push_str(&line[copied..value_start]);
        out.push_str(MASK);
        copied = value_end;
        i = value_end.max(value_start + 1);
    }
    out.push_str(&line[copied..]);
    (out, open)
}

/// A comment with everything after a secret key and `:` or `=` masked: an
/// old password commented out is still a password.
fn mask_comment(comment: &str, secrets: &mut Secrets) -> String {
    let mut word_start = None;
    for (index, c) in comment.char_indices() {
        if c.is_alphanumeric() || c == '_' || c == '-' {
            word_start.get_or_insert(index);
            continue;
        }
        let Some(start) = word_start.take() else {
            continue;
        };
        let after = comment[index..].trim_start_matches([' ', '\t', '"', '\'']);
        if is_secret_key(&comment[start..index]) && after.starts_with([':', '=']) {
            let value = after[1..].trim();
            if !value.is_empty() {
                secrets.add(value);
                let end = comment.len() - after.len() + 1;
                return format!("{} {MASK}", &comment[..end]);
            }
        }
    }
    comment.to_owned()
}

/// Where a plain scalar starting at `start` ends: at ` #`, in a flow
/// collection at `,` `{` `}` `[` `]`, and — for a key — at `: `.
fn plain_end(line: &str, start: usize, depth: usize, key: bool) -> usize {
    let bytes = line.as_bytes();
    let mut end = start;
    while end < line.len() {
        let c = bytes[end];
        let next_spaced = bytes.get(end + 1).is_none_or(|b| matches!(b, b' ' | b'\t'));
        let stop = (c == b'#' && end > start && matches!(bytes[end - 1], b' ' | b'\t'))
            || (depth > 0 && matches!(c, b',' | b'{' | b'}' | b'[' | b']'))
            || (key && c == b':' && next_spaced);
        if stop {
            break;
        }
        end += line[end..].chars().next().map_or(1, char::len_utf8);
    }
    start + line[start..end].trim_end().len()
}

/// The byte index of the quote closing the quoted scalar at `start`
/// (`\"` escapes in double quotes, `''` in single quotes).
fn closing_quote(line: &str, start: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A scalar without its quotes (an unclosed one loses its opening quote).
fn unquote(token: &str) -> &str {
    let token = token.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = token.strip_prefix(quote) {
            return inner.strip_suffix(quote).unwrap_or(inner);
        }
    }
    token
}

#[cfg(test)]
mod tests {
    use super::mask_yaml;

    fn masked(text: &str) -> String {
        mask_yaml(text).text
    }

    #[test]
    fn block_values_of_secret_keys_are_masked() {
        assert_eq!(
            masked("url:\n  password: hunter2 # old\n  host: h\n"),
            "url:\n  password: *** # old\n  host: h\n"
        );
        assert_eq!(
            masked("a:\n  \"db_password\" : 'it''s'\n  token: \"x\\\"y\"\n"),
            "a:\n  \"db_password\" : ***\n  token: ***\n"
        );
        assert_eq!(
            masked("- secret: |\n    line one\n\n    line two\n- port: 1\n"),
            "- secret: |\n    ***\n\n    ***\n- port: 1\n"
        );
        assert_eq!(
            masked("token:\n- a\n- b\nnext: c\n"),
            "token:\n***\n***\nnext: c\n"
        );
        assert_eq!(
            masked("password: plain\n  continued\nhost: h\n"),
            "password: ***\n  ***\nhost: h\n"
        );
    }

    #[test]
    fn flow_values_and_urls_are_masked() {
        assert_eq!(
            masked("url: {protocol: pg, password: p@ss:w, host: h}\n"),
            "url: {protocol: pg, password: ***, host: h}\n"
        );
        assert_eq!(
            masked("url: 'postgresql://u:pw@h/db?token=t1'\n"),
            "url: 'postgresql://u:***@h/db?token=***'\n"
        );
        assert_eq!(masked("passage: keep\n"), "passage: keep\n");
        assert_eq!(
            masked("host: h # old password: hunter2\n#token=abc\n# see the docs\n"),
            "host: h # old password: ***\n#token= ***\n# see the docs\n"
        );
        assert_eq!(
            masked("{\"db\":{\"password\":\"x,y\",\"host\":\"h\"}}\n"),
            "{\"db\":{\"password\":***,\"host\":\"h\"}}\n"
        );
        let result = mask_yaml("password: \"unclosed\n  more\nx: 1\n");
        assert_eq!(result.text, "password: ***\n  ***\nx: 1\n");
        assert_eq!(result.secrets.scrub("unclosed more"), "*** ***");
    }
}
