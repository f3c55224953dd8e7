//! A `tracing` layer that keeps every span of the test binary — name,
//! fields, parent, whether it closed — so tests can assert the tree sqlreg
//! builds and everything it wrote into it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// One span as the layer saw it.
#[derive(Clone, Debug)]
pub struct CapturedSpan {
    /// Unique in the run (span ids are reused once a span closes).
    pub serial: u64,
    pub name: &'static str,
    pub parent: Option<u64>,
    pub fields: BTreeMap<String, String>,
    pub closed: bool,
}

impl CapturedSpan {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

static SPANS: Mutex<Vec<CapturedSpan>> = Mutex::new(Vec::new());
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// The serial of a live span, kept in its extensions.
struct Serial(u64);

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a new span is registered");
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Serial>().map(|s| s.0));
        span.extensions_mut().insert(Serial(serial));
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        SPANS.lock().unwrap().push(CapturedSpan {
            serial,
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(serial) = serial_of(id, &ctx) else {
            return;
        };
        let mut spans = SPANS.lock().unwrap();
        if let Some(span) = spans.iter_mut().rev().find(|s| s.serial == serial) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(serial) = serial_of(&id, &ctx) else {
            return;
        };
        let mut spans = SPANS.lock().unwrap();
        if let Some(span) = spans.iter_mut().rev().find(|s| s.serial == serial) {
            span.closed = true;
        }
    }
}

fn serial_of<S: Subscriber + for<'a> LookupSpan<'a>>(id: &Id, ctx: &Context<'_, S>) -> Option<u64> {
    ctx.span(id)?.extensions().get::<Serial>().map(|s| s.0)
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Installs the capturing subscriber (once per test binary).
pub fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| tracing_subscriber::registry().with(Capture).init());
}

/// Every span captured so far.
pub fn all() -> Vec<CapturedSpan> {
    SPANS.lock().unwrap().clone()
}

/// The direct children of `parent` (spans are kept in creation order).
pub fn children(spans: &[CapturedSpan], parent: &CapturedSpan) -> Vec<CapturedSpan> {
    spans
        .iter()
        .filter(|s| s.parent == Some(parent.serial))
        .cloned()
        .collect()
}
