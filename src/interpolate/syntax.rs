//! The surface syntax of interpolations: where each `${..}` starts and ends
//! (nesting and quotes included), `\${` escapes, and `VAR,default` splitting.

/// A piece of a string value: text, or the inside of one `${..}`.
pub(super) enum Piece {
    Text(String),
    Interpolation(String),
}

/// Splits a string into text and `${..}` pieces; `\${` stays literal.
pub(super) fn split(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("\\${") {
            literal.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let end = closing_brace(after).ok_or_else(|| {
                format!("unclosed `${{` in `{text}` (write `\\${{` for a literal `${{`)")
            })?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Interpolation(after[..end].to_owned()));
            rest = &after[end + 1..];
        } else {
            let mut chars = rest.chars();
            literal.extend(chars.next());
            rest = chars.as_str();
        }
    }
    if !literal.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Byte index of the `}` closing an interpolation whose `${` was just consumed,
/// skipping nested `${..}` and quoted text.
fn closing_brace(after: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    let mut chars = after.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().map(|&(_, next)| next) == Some('{') => {
                chars.next();
                depth += 1;
            }
            (None, '}') if depth == 0 => return Some(index),
            (None, '}') => depth -= 1,
            (None, _) => {}
        }
    }
    None
}

/// Splits `VAR,default` at the first comma outside nested `${..}`.
pub(super) fn split_top_level_comma(args: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut previous = ' ';
    for (index, c) in args.char_indices() {
        match c {
            '{' if previous == '$' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            ',' if depth == 0 => return Some((&args[..index], &args[index + 1..])),
            _ => {}
        }
        previous = c;
    }
    None
}
