//! One result cell as JSON, whatever its SQL type: each Rust type sqlx can
//! decode is tried in turn, narrowest first; a type none fits shows its name (PostgreSQL NUMERIC, for
//! one: no decimal type is compiled in).

use sea_orm::QueryResult;
use sea_orm::prelude::{ChronoDate, ChronoDateTime, ChronoDateTimeUtc, ChronoTime};
use serde_json::Value;

/// The first `count` cells of `row`.
pub fn cells(row: &QueryResult, count: usize) -> Vec<Value> {
    (0..count).map(|index| cell(row, index)).collect()
}

fn cell(row: &QueryResult, index: usize) -> Value {
    macro_rules! as_type {
        ($($ty:ty => $to_json:expr),* $(,)?) => {$(
            if let Ok(value) = row.try_get_by_index::<Option<$ty>>(index) {
                return value.map_or(Value::Null, $to_json);
            }
        )*};
    }
    as_type!(
        i64 => Value::from,
        i32 => Value::from,
        i16 => Value::from,
        i8 => Value::from,
        u64 => Value::from,
        u32 => Value::from,
        f64 => Value::from,
        f32 => Value::from,
        bool => Value::from,
        String => Value::from,
        ChronoDateTime => |v| Value::from(v.to_string()),
        ChronoDateTimeUtc => |v| Value::from(v.to_rfc3339()),
        ChronoDate => |v| Value::from(v.to_string()),
        ChronoTime => |v| Value::from(v.to_string()),
        Value => |v| v,
        Vec<u8> => |v| Value::from(hex(&v)),
    );
    // MySQL sends DECIMAL (and other types sqlx leaves alone) as text.
    if let Some(Ok(text)) = row
        .try_as_mysql_row()
        .map(|row| sqlx::Row::try_get_unchecked::<Option<String>, _>(row, index))
    {
        return text.map_or(Value::Null, Value::from);
    }
    Value::from(format!("<{}>", type_name(row, index)))
}

/// Bytes as `\x0a1b…`, PostgreSQL's hex format.
fn hex(bytes: &[u8]) -> String {
    let mut text = String::from("\\x");
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The database's name for the column's type, for cells no decoder fits.
fn type_name(row: &QueryResult, index: usize) -> String {
    use sqlx::{Column, Row, TypeInfo};

    let name = if let Some(row) = row.try_as_pg_row() {
        row.column(index).type_info().name().to_owned()
    } else if let Some(row) = row.try_as_mysql_row() {
        row.column(index).type_info().name().to_owned()
    } else if let Some(row) = row.try_as_sqlite_row() {
        row.column(index).type_info().name().to_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "unknown type".to_owned()
    } else {
        name
    }
}
