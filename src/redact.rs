//! The one place that decides what a secret is and how it is hidden. Every
//! message that quotes a config — parser snippets, echoed values, URLs,
//! `Debug` output — goes through these functions, so "no password ever
//! appears in an error" is a property of this file, not of each call site.

mod yaml_text;

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

pub(crate) use self::yaml_text::mask_yaml;

/// What a hidden value is shown as.
pub(crate) const MASK: &str = "***";

/// Secrets shorter than this are hidden where they are echoed but not
/// scrubbed from free text: replacing every `a` in a message hides nothing.
const SCRUB_MIN_CHARS: usize = 3;

/// Whether the value of `key` is a secret: `password`, `secret`, `token`,
/// and any key ending in `_password`, `_secret` or `_token` (or `-…`),
/// case-insensitively — and their typos (`pasword`, `db_passwrd`), since a
/// misspelled key still holds the secret the person meant to write.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    let last = key.rsplit(['_', '-']).next().unwrap_or_default();
    [("password", 2), ("secret", 1), ("token", 1)]
        .iter()
        .any(|(name, typos)| strsim::damerau_levenshtein(last, name) <= *typos)
}

/// `text` with the password of every `scheme://user:password@…` in it, and
/// every secret query parameter (`?password=…`), replaced by `***`.
pub(crate) fn mask_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") && !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, after) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        match url_password(after) {
            Some((start, end)) => {
                out.push_str(&after[..start]);
                out.push_str(MASK);
                rest = &after[end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    let query_masked = match mask_query_secrets(&out) {
        Cow::Owned(masked) => Some(masked),
        Cow::Borrowed(_) => None,
    };
    match query_masked {
        Some(masked) => Cow::Owned(masked),
        None if out == text => Cow::Borrowed(text),
        None => Cow::Owned(out),
    }
}

/// A string that is meant to be a URL (it may not parse), masked: like
/// [`mask_urls`], and without a `://` everything between the first `:` and
/// the last `@` (`user:password@host`).
pub(crate) fn mask_url_text(text: &str) -> String {
    if text.contains("://") {
        return mask_urls(text).into_owned();
    }
    match (text.find(':'), text.rfind('@')) {
        (Some(colon), Some(at)) if colon < at => {
            format!("{}{MASK}{}", &text[..=colon], &text[at..])
        }
        _ => mask_urls(text).into_owned(),
    }
}

/// The byte range of the password in `after` (the text following `://`),
/// read as SQLAlchemy reads the user info — it ends at the last `@` before
/// the path, and a `/` or blank before the first `:` means there is none —
/// or further, to the last `@` before a blank or quote.
fn url_password(after: &str) -> Option<(usize, usize)> {
    let line = after.split('\n').next().unwrap_or_default();
    let first_at = line.find('@')?;
    let colon = line[..first_at].find(':')?;
    let user = &line[..colon];
    if user.contains(|c: char| c == '/' || c.is_whitespace() || "`\"'<>()[]{}".contains(c)) {
        return None;
    }
    let authority_end = line[first_at..]
        .find(['/', '?'])
        .map_or(line.len(), |i| first_at + i);
    // An unencoded `/` in a password ends the authority early; hide up to
    // the last `@` before the URL visibly ends too.
    let token_end = line[first_at..]
        .find(|c: char| c.is_whitespace() || "`\"'".contains(c))
        .map_or(line.len(), |i| first_at + i);
    let at = line[..authority_end.max(token_end)]
        .rfind('@')
        .unwrap_or(first_at);
    (at > colon + 1).then_some((colon + 1, at))
}

/// `?password=…` / `&token=…` values replaced by `***`, up to the next `&`,
/// blank or quote.
fn mask_query_secrets(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    for (index, _) in text.match_indices(['?', '&']) {
        if index < copied {
            continue;
        }
        let after = &text[index + 1..];
        let Some(eq) = after.find('=') else { continue };
        let name = &after[..eq];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '%')
            || !is_secret_key(&decode(name))
        {
            continue;
        }
        let value_start = index + 1 + eq + 1;
        let value_len = text[value_start..]
            .find(|c: char| c == '&' || c.is_whitespace() || "`\"'".contains(c))
            .unwrap_or(text.len() - value_start);
        if value_len == 0 {
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(MASK);
        copied = value_start + value_len;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn decode(text: &str) -> Cow<'_, str> {
    percent_decode_str(text).decode_utf8_lossy()
}

/// Secret values known by their text — a config's passwords, tokens, URL
/// passwords — to scrub from any message built from that config, whatever
/// path the text took to get there.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    /// Longest first, so a secret containing another is replaced whole.
    values: Vec<String>,
}

impl Secrets {
    /// Remembers `value` (and the forms it is echoed in: escaped as in
    /// `"…"`, percent-decoded); short values are left to the places that
    /// echo them.
    pub(crate) fn add(&mut self, value: &str) {
        let escaped = format!("{value:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        for form in [value, escaped, &decode(value)] {
            let form = form.trim();
            if form.chars().count() >= SCRUB_MIN_CHARS
                && form != MASK
                && !self.values.iter().any(|known| known == form)
            {
                self.values.push(form.to_owned());
            }
        }
        self.values
            .sort_by_key(|known| std::cmp::Reverse(known.len()));
    }

    /// Remembers the password of every URL in `text`.
    pub(crate) fn add_url_passwords(&mut self, text: &str) {
        let mut rest = text;
        while let Some(scheme_end) = rest.find("://") {
            rest = &rest[scheme_end + 3..];
            if let Some((start, end)) = url_password(rest) {
                self.add(&rest[start..end]);
            }
        }
        for (index, _) in text.match_indices(['?', '&']) {
            let after = &text[index + 1..];
            if let Some((name, value)) = after.split_once('=')
                && is_secret_key(&decode(name))
            {
                let value = value
                    .split(|c: char| c == '&' || c.is_whitespace() || "`\"'".contains(c))
                    .next()
                    .unwrap_or_default();
                self.add(value);
            }
        }
    }

    /// `text` with URL passwords masked and every known secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = mask_urls(text).into_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }
}

/// A unique violation's message without the value that collided: MySQL and
/// MariaDB write `Duplicate entry 'ada@example.com' for key 'email'`, and
/// that value is whatever the client sent (an email, a name) — it must not
/// reach an error, a log or an HTTP body. PostgreSQL and SQLite name only
/// the constraint.
pub(crate) fn duplicate_entry(message: &str) -> String {
    const ENTRY: &str = "Duplicate entry '";
    const KEY: &str = "' for key ";
    match (message.find(ENTRY), message.rfind(KEY)) {
        (Some(start), Some(end)) if start + ENTRY.len() <= end => format!(
            "{}Duplicate entry {MASK} for key {}",
            &message[..start],
            &message[end + KEY.len()..]
        ),
        _ => message.to_owned(),
    }
}

/// `message` with each form of a password (as given, as encoded in the
/// URL a driver was handed) replaced by `***`, however short: a driver's
/// message has this one secret, should it ever echo it.
pub(crate) fn scrub_password(message: &str, forms: &[&str]) -> String {
    let mut forms: Vec<&str> = forms.iter().copied().filter(|f| !f.is_empty()).collect();
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    let mut out = mask_urls(message).into_owned();
    for form in forms {
        out = out.replace(form, MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_entries_lose_their_value() {
        assert_eq!(
            duplicate_entry("Duplicate entry 'ada@example.com' for key 'email'"),
            "Duplicate entry *** for key 'email'"
        );
        assert_eq!(
            duplicate_entry("Duplicate entry 'it's' for key 'users.name'"),
            "Duplicate entry *** for key 'users.name'"
        );
        let postgres = "duplicate key value violates unique constraint \"users_email_key\"";
        assert_eq!(duplicate_entry(postgres), postgres);
    }

    #[test]
    fn secret_keys() {
        for key in [
            "password",
            "PASSWORD",
            "db_password",
            "admin-password",
            "secret",
            "client_secret",
            "token",
            "api_token",
            "pasword",
            "db_passwrd",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "username",
            "mypasswordlist",
            "host",
            "taken_by",
            "secretary",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn url_passwords_are_masked_wherever_they_sit() {
        assert_eq!(
            mask_urls("x `postgresql://u:p@ss/w@h:5/db?sslmode=require` y"),
            "x `postgresql://u:***@h:5/db?sslmode=require` y"
        );
        assert_eq!(
            mask_urls("'mysql://u:a b@h/db' and sqlite:///x@y.db"),
            "'mysql://u:***@h/db' and sqlite:///x@y.db"
        );
        assert_eq!(
            mask_urls("mysql://u@h/db?password=pw&x=1"),
            "mysql://u@h/db?password=***&x=1"
        );
        assert_eq!(mask_urls("user: a@b, c"), "user: a@b, c");
        assert_eq!(mask_url_text("u:pw@host/db"), "u:***@host/db");
    }

    #[test]
    fn scrub_replaces_known_secrets_and_their_forms() {
        let mut secrets = Secrets::default();
        secrets.add("p\"w-long");
        secrets.add_url_passwords("postgresql://u:p%40ss@h/db");
        assert_eq!(
            secrets.scrub(r#"found string "p\"w-long" and p@ss and p%40ss"#),
            r#"found string "***" and *** and ***"#
        );
    }

    #[test]
    fn a_drivers_message_loses_every_form_of_the_password() {
        assert_eq!(
            scrub_password("user x (pw a-b%40c) tried a-b@c", &["a-b@c", "a-b%40c"]),
            "user x (pw ***) tried ***"
        );
    }
}
