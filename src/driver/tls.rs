//! Why a TLS connection could not be set up, worded for the person who can
//! fix it: the server's certificate is not trusted (and which CA file was
//! used), it does not name the host connected to, or the server offers no
//! TLS at all. sqlx reports the first two as an I/O error wrapping rustls'
//! own (`invalid peer certificate: UnknownIssuer`), the last as
//! `server does not support TLS`; the hint is added to that message.

use std::io;

use rustls::CertificateError;

use crate::url::{Backend, DbUrl};

/// The URL keys (as sqlx reads them, and the pymysql spellings sqlreg
/// renames) naming the CA file that verifies the server.
const CA_KEYS: &[&str] = &["sslrootcert", "ssl-root-cert", "ssl-ca", "sslca", "ssl_ca"];

/// The URL keys naming the TLS mode.
const MODE_KEYS: &[&str] = &["sslmode", "ssl-mode", "ssl_mode"];

/// The URL keys naming the client's certificate and key.
const CLIENT_KEYS: &[&str] = &[
    "sslcert", "ssl-cert", "ssl_cert", "sslkey", "ssl-key", "ssl_key",
];

/// Whether `err` is a failure to set up TLS.
pub(super) fn is_tls_failure(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => rustls_error(io).is_some(),
        _ => false,
    }
}

/// What to do about a TLS failure, or `None` when `err` is not one.
pub(super) fn hint(url: &DbUrl, err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Tls(tls) if tls.to_string().contains("does not support TLS") => {
            Some(no_tls(url))
        }
        sqlx::Error::Io(io) => match rustls_error(io)? {
            rustls::Error::InvalidCertificate(cert) => Some(certificate(url, cert)),
            rustls::Error::AlertReceived(alert) => Some(format!(
                "the server refused the TLS handshake ({alert:?}){}",
                client_files(url)
            )),
            _ => None,
        },
        _ => None,
    }
}

/// The rustls error inside a failed handshake's I/O error.
fn rustls_error(io: &io::Error) -> Option<&rustls::Error> {
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The server said no to TLS while the URL's mode demands it.
fn no_tls(url: &DbUrl) -> String {
    let (mode, prefer) = match url.backend() {
        Backend::MySql => ("ssl-mode", "PREFERRED"),
        _ => ("sslmode", "prefer"),
    };
    let asked = query_value(url, MODE_KEYS).map_or_else(
        || "the URL asks for TLS".to_owned(),
        |(key, value)| format!("`{key}={value}` asks for it"),
    );
    format!(
        "the server at {} offers no TLS, and {asked}: turn TLS on in the server, \
         or use `{mode}={prefer}` for TLS only where the server offers it",
        server(url)
    )
}

/// The server's certificate failed verification.
fn certificate(url: &DbUrl, err: &CertificateError) -> String {
    match err {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let verify_ca = match url.backend() {
                Backend::MySql => "ssl-mode=VERIFY_CA",
                _ => "sslmode=verify-ca",
            };
            format!(
                "the server's certificate does not name the host `{}` sqlreg connected to: \
                 connect by a name the certificate holds, or use `{verify_ca}` to check the \
                 CA alone",
                url.host().unwrap_or("localhost")
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is outside its validity period (expired, or the \
             clocks disagree)"
                .to_owned()
        }
        _ => match query_value(url, CA_KEYS) {
            Some((key, file)) => format!(
                "the server's certificate is not trusted: it is not signed by the CA in \
                 `{key}={file}` (nor by a public root CA)"
            ),
            None => format!(
                "the server's certificate is not trusted: no CA file is given (`{}`), so only \
                 public root CAs are trusted",
                match url.backend() {
                    Backend::MySql => "ssl-ca",
                    _ => "sslrootcert",
                }
            ),
        },
    }
}

/// `: check the client certificate …` when the URL names one.
fn client_files(url: &DbUrl) -> String {
    let files: Vec<String> = url
        .query()
        .iter()
        .filter(|(key, _)| CLIENT_KEYS.contains(&key.as_str()))
        .map(|(key, value)| format!("`{key}={value}`"))
        .collect();
    if files.is_empty() {
        String::new()
    } else {
        format!(": check the client certificate ({})", files.join(", "))
    }
}

/// The first of `keys` in the URL's query, with its value.
fn query_value<'u>(url: &'u DbUrl, keys: &[&str]) -> Option<(&'u str, &'u str)> {
    url.query()
        .iter()
        .find(|(key, _)| keys.contains(&key.as_str()))
        .map(|(key, value)| (key.as_str(), value.as_str()))
}

/// `host:port` as connected to.
fn server(url: &DbUrl) -> String {
    let host = url.host().unwrap_or("localhost");
    match url.port() {
        Some(port) if host.contains(':') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
