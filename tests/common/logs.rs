//! Captures every log line of the test binary, so tests can assert what was
//! (and was not) logged.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES.get().unwrap().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Capture {
    type Writer = Capture;
    fn make_writer(&self) -> Capture {
        Capture
    }
}

/// Starts capturing (once per test binary): sqlreg's own events and sqlx's
/// statement log, at INFO and above.
pub fn capture() {
    LINES.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_writer(Capture)
            .with_ansi(false)
            .with_env_filter("info")
            .init();
        Mutex::new(Vec::new())
    });
}

/// Everything logged so far by any test of this binary.
pub fn text() -> String {
    String::from_utf8_lossy(&LINES.get().expect("capture() first").lock().unwrap()).into_owned()
}
