//! The servers one URL lists, each a name (or a unix-socket directory) and
//! an optional port, however they were written: libpq's comma list in the
//! authority (`h1:5432,h2:5433`, also MySQL's), SQLAlchemy's repeated
//! `?host=h1:5432&host=h2:5433`, or core-lib's `host: "h1:5432,h2:5433"`.
//! A URL with one host is the one-element case of the same list, so a
//! single-host URL is no special case anywhere.

use percent_encoding::utf8_percent_encode;

use super::{COMPONENT, decode, is_socket_dir};

/// One server of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Host {
    /// Host name, IP address (IPv6 without brackets) or socket directory.
    /// Empty only while parsing a URL that names no host (`postgresql://:5433/db`),
    /// which the URL then replaces by `localhost`.
    pub(super) name: String,
    /// The port as written; the backend's default when `None`.
    pub(super) port: Option<u16>,
}

/// The hosts of a URL string's authority, between the user info and the
/// path: `h1:5432,[::1]:5433,%2Fvar%2Frun%2Fpostgresql`. A socket directory
/// is percent-encoded there (libpq's form) and comes back decoded; other
/// names are kept as written. No text is no host.
pub(super) fn from_authority(text: &str) -> Result<Vec<Host>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    each_entry(text, |entry| {
        let (name, port) = split_entry(entry)?;
        let decoded = decode(name, "host")?;
        let name = if is_socket_dir(&decoded) {
            decoded
        } else {
            name.to_owned()
        };
        Ok(Host {
            name,
            port: parse_port(port)?,
        })
    })
}

/// Hosts written as plain text, as in a `host=` query value or core-lib's
/// `url.host`: one entry, or several separated by commas. An entry starting
/// with `/` is a socket directory, taken whole; an IPv6 address is taken
/// whole unless bracketed (`[::1]:5433`), since its colons are not a port.
/// Entries without a port get `default_port`.
pub(super) fn from_plain(text: &str, default_port: Option<u16>) -> Result<Vec<Host>, String> {
    each_entry(text, |entry| {
        let entry = entry.trim();
        if is_socket_dir(entry) {
            return Ok(Host {
                name: entry.to_owned(),
                port: default_port,
            });
        }
        let (name, port) = split_entry(entry)?;
        Ok(Host {
            name: name.to_owned(),
            port: parse_port(port)?.or(default_port),
        })
    })
}

/// SQLAlchemy's form for hosts when the authority names none
/// (`postgresql://app@/db?host=h1:5432&host=h2:5433`, or a socket
/// directory `?host=/var/run/postgresql`): every `host` parameter, in
/// order, taken out of the query. `default_port` is the authority's
/// (`@:5433/db?host=/dir`). `None` when the query has no `host`.
pub(super) fn from_query(
    query: &mut Vec<(String, String)>,
    default_port: Option<u16>,
) -> Result<Option<Vec<Host>>, String> {
    let values: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "host")
        .map(|(_, value)| value.as_str())
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    let hosts = from_plain(&values.join(","), default_port)?;
    query.retain(|(key, _)| key != "host");
    Ok(Some(hosts))
}

/// libpq's `port` parameter (`?host=h1,h2&port=5432,5433`), taken out of
/// the query: one port for every host, or one per host in order (an empty
/// entry is the default port). It replaces the ports written with the
/// hosts, as libpq's `port` keyword does; given twice, the last one counts.
pub(super) fn take_port_param(
    hosts: &mut [Host],
    query: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let Some(value) = query.iter().rev().find(|(key, _)| key == "port") else {
        return Ok(());
    };
    let value = value.1.clone();
    query.retain(|(key, _)| key != "port");
    let ports = value
        .split(',')
        .map(|port| parse_port(Some(port.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    match ports[..] {
        [port] => hosts.iter_mut().for_each(|host| host.port = port),
        _ if ports.len() == hosts.len() => {
            for (host, port) in hosts.iter_mut().zip(ports) {
                host.port = port;
            }
        }
        _ => {
            return Err(format!(
                "`port={value}` lists {} ports for {} hosts; give one port for every \
                 host, or one per host in the order of the hosts",
                ports.len(),
                hosts.len()
            ));
        }
    }
    Ok(())
}

/// Parses each comma-separated entry; in a list of several, an error names
/// the entry, and an entry without a host name is an error (`h1,,h2`).
fn each_entry(
    text: &str,
    parse: impl Fn(&str) -> Result<Host, String>,
) -> Result<Vec<Host>, String> {
    let entries: Vec<&str> = text.split(',').collect();
    if let [only] = entries[..] {
        return Ok(vec![parse(only)?]);
    }
    let count = entries.len();
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let number = i + 1;
            let host = parse(entry)
                .map_err(|message| format!("host {number} of {count} (`{entry}`): {message}"))?;
            if host.name.is_empty() {
                return Err(format!(
                    "host {number} of {count} in `{text}` is empty; \
                     list hosts as `h1:5432,h2:5433`, one per comma"
                ));
            }
            Ok(host)
        })
        .collect()
}

/// `name`, `name:port`, `[v6]`, `[v6]:port`, or an unbracketed IPv6
/// address (more than one colon: no port).
fn split_entry(entry: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = entry.strip_prefix('[') {
        let (name, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("unclosed `[` in the host `{entry}`"))?;
        if after.is_empty() {
            return Ok((name, None));
        }
        return after
            .strip_prefix(':')
            .map(|port| (name, Some(port)))
            .ok_or_else(|| format!("`{after}` after `[{name}]` is not `:port`"));
    }
    Ok(match entry.split_once(':') {
        Some((name, port)) if !port.contains(':') => (name, Some(port)),
        _ => (entry, None),
    })
}

fn parse_port(port: Option<&str>) -> Result<Option<u16>, String> {
    match port {
        None | Some("") => Ok(None),
        Some(port) => port
            .parse::<u16>()
            .map(Some)
            .map_err(|_| format!("the port `{port}` is not a number from 0 to 65535")),
    }
}

/// The hosts as a URL's authority holds them, comma-separated: a socket
/// directory percent-encoded (libpq's form, which sqlx reads too), an IPv6
/// address bracketed, each port only where one is set.
pub(super) fn render(hosts: &[Host], out: &mut String) {
    for (i, host) in hosts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if is_socket_dir(&host.name) {
            out.extend(utf8_percent_encode(&host.name, COMPONENT));
        } else if host.name.contains(':') {
            out.push('[');
            out.push_str(&host.name);
            out.push(']');
        } else {
            out.push_str(&host.name);
        }
        if let Some(port) = host.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, port: Option<u16>) -> Host {
        Host {
            name: name.to_owned(),
            port,
        }
    }

    #[test]
    fn authority_lists_with_ports_ipv6_and_socket_dirs() {
        assert_eq!(
            from_authority("h1,h2:5433,[::1]:5434,[fe80::1],%2Frun%2Fpg:5435").unwrap(),
            [
                host("h1", None),
                host("h2", Some(5433)),
                host("::1", Some(5434)),
                host("fe80::1", None),
                host("/run/pg", Some(5435)),
            ]
        );
        assert_eq!(from_authority("").unwrap(), []);
        assert_eq!(from_authority(":5433").unwrap(), [host("", Some(5433))]);
    }

    #[test]
    fn plain_entries_split_a_port_only_when_unambiguous() {
        assert_eq!(
            from_plain(
                "h1:5432, ::1 ,[::2]:5433,/var/run/postgresql,h3",
                Some(6000)
            )
            .unwrap(),
            [
                host("h1", Some(5432)),
                host("::1", Some(6000)),
                host("::2", Some(5433)),
                host("/var/run/postgresql", Some(6000)),
                host("h3", Some(6000)),
            ]
        );
        assert_eq!(
            from_plain("fe80::1", None).unwrap(),
            [host("fe80::1", None)]
        );
        assert_eq!(from_plain("[::1]", None).unwrap(), [host("::1", None)]);
    }

    #[test]
    fn list_errors_name_the_entry() {
        let err = from_authority("h1:5432,h2:x").unwrap_err();
        assert_eq!(
            err,
            "host 2 of 2 (`h2:x`): the port `x` is not a number from 0 to 65535"
        );
        for list in ["h1,,h2", "h1,", ",h1", "h1,:5433"] {
            let err = from_authority(list).unwrap_err();
            assert!(err.contains("is empty"), "{list}: {err}");
        }
        let err = from_plain("h1, ,h2", None).unwrap_err();
        assert!(err.contains("host 2 of 3"), "{err}");
        let err = from_plain("[::1", None).unwrap_err();
        assert!(err.contains("unclosed `[`"), "{err}");
        let err = from_plain("[::1]x", None).unwrap_err();
        assert!(err.contains("not `:port`"), "{err}");
    }

    #[test]
    fn query_hosts_leave_the_query() {
        let mut query = vec![
            ("host".to_owned(), "h1:5432".to_owned()),
            ("sslmode".to_owned(), "disable".to_owned()),
            ("host".to_owned(), "h2".to_owned()),
        ];
        let hosts = from_query(&mut query, Some(6000)).unwrap();
        assert_eq!(
            hosts,
            Some(vec![host("h1", Some(5432)), host("h2", Some(6000))])
        );
        assert_eq!(query, [("sslmode".to_owned(), "disable".to_owned())]);
        assert_eq!(from_query(&mut query, None).unwrap(), None);
    }

    #[test]
    fn rendering_reads_back_the_same() {
        let hosts = [
            host("h1", Some(5432)),
            host("::1", None),
            host("/var/run/postgresql", Some(5433)),
        ];
        let mut out = String::new();
        render(&hosts, &mut out);
        assert_eq!(out, "h1:5432,[::1],%2Fvar%2Frun%2Fpostgresql:5433");
        assert_eq!(from_authority(&out).unwrap(), hosts);
    }
}
