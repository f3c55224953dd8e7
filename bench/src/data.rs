//! The table every contender reads, its rows, and the id sequence they all follow.

/// Rows in `items` (the same for every database and contender).
pub const ROWS: i32 = 1000;

/// The k-th id of the shared sequence: a fixed permutation of 1..=ROWS
/// (7919 is prime, so the walk visits every row before repeating).
pub fn id_at(k: u64) -> i32 {
    let rows = u64::try_from(ROWS).unwrap_or(1);
    i32::try_from((k * 7919) % rows + 1).unwrap_or(1)
}

/// The SQL dialects the bench speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `?` placeholders, INTEGER PRIMARY KEY.
    Sqlite,
    /// `$1` placeholders.
    Postgres,
    /// `?` placeholders, AUTO_INCREMENT.
    MySql,
}

impl Dialect {
    /// The session's SELECT by primary key.
    pub fn select(self) -> &'static str {
        match self {
            Self::Postgres => "SELECT id, name, qty FROM items WHERE id = $1",
            Self::Sqlite | Self::MySql => "SELECT id, name, qty FROM items WHERE id = ?",
        }
    }

    /// W5's write: one row into `events`.
    pub fn insert(self) -> &'static str {
        match self {
            Self::Postgres => "INSERT INTO events (item_id) VALUES ($1)",
            Self::Sqlite | Self::MySql => "INSERT INTO events (item_id) VALUES (?)",
        }
    }

    /// W6's read: the hot row's counter.
    pub fn select_counter(self) -> &'static str {
        match self {
            Self::Postgres => "SELECT qty FROM items WHERE id = $1",
            Self::Sqlite | Self::MySql => "SELECT qty FROM items WHERE id = ?",
        }
    }

    /// W6's write: the counter read plus one, written back.
    pub fn update_counter(self) -> &'static str {
        match self {
            Self::Postgres => "UPDATE items SET qty = $1 WHERE id = $2",
            Self::Sqlite | Self::MySql => "UPDATE items SET qty = ? WHERE id = ?",
        }
    }

    /// 1 when the session runs on a replica, else 0, as the server says (W8).
    pub fn on_replica(self) -> &'static str {
        match self {
            Self::Postgres => "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END::bigint AS v",
            Self::Sqlite => "SELECT 0 AS v",
            Self::MySql => "SELECT CAST(@@read_only AS SIGNED) AS v",
        }
    }

    /// Drops and recreates both tables and fills `items`, as one script of
    /// statements (run them one by one).
    pub fn seed(self) -> Vec<String> {
        let serial = match self {
            Self::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Self::Postgres => "SERIAL PRIMARY KEY",
            Self::MySql => "INTEGER PRIMARY KEY AUTO_INCREMENT",
        };
        let rows: Vec<String> = (1..=ROWS)
            .map(|id| format!("({id}, 'item-{id}', {})", id % 97))
            .collect();
        vec![
            "DROP TABLE IF EXISTS items".into(),
            "DROP TABLE IF EXISTS events".into(),
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL)"
                .into(),
            format!("CREATE TABLE events (id {serial}, item_id INTEGER NOT NULL)"),
            format!("INSERT INTO items (id, name, qty) VALUES {}", rows.join(", ")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_sequence_visits_every_row() {
        let mut seen: Vec<i32> = (0..u64::try_from(ROWS).unwrap()).map(id_at).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=ROWS).collect::<Vec<_>>());
    }
}
