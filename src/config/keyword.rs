//! Config values that name one of a fixed set of keywords
//! (`session.isolation`, `session.pooler`, `routing.fallback`): read in any
//! case, with spaces or dashes for underscores (`REPEATABLE READ`), written
//! back as the keyword, and a wrong one answered with the list.

/// `Display`, `FromStr` and `Deserialize` for an enum whose `NAMES` table
/// pairs each keyword with its value.
macro_rules! keywords {
    ($type:ty) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let name = Self::NAMES
                    .iter()
                    .find(|(_, value)| value == self)
                    .map_or("", |(name, _)| name);
                f.write_str(name)
            }
        }

        impl std::str::FromStr for $type {
            type Err = String;

            /// One of the keywords, in any case; spaces and dashes count
            /// as underscores.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let key = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
                Self::NAMES
                    .iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, value)| *value)
                    .ok_or_else(|| {
                        let names: Vec<_> = Self::NAMES.iter().map(|(name, _)| *name).collect();
                        format!("must be one of {}, found `{text}`", names.join(", "))
                    })
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = super::lenient::keyword(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(super) use keywords;
