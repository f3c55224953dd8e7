//! A contender run with a `tracing` subscriber listening (issue 11): what
//! observing sqlreg costs, beside the same contender with none.
//!
//! The subscriber is `tracing_subscriber::fmt` at INFO (sqlreg's session
//! and statement spans are INFO), writing a line as each span closes, into
//! `std::io::sink()`: every span is built, its fields formatted and its
//! close written, and nothing reaches a terminal. It is the default only
//! while the run's future is polled (`WithSubscriber`), so the other
//! contenders still run with no subscriber at all; after the run it is
//! dropped and tracing's callsite cache rebuilt, so their spans are again
//! disabled at the level check, as in a process that never had one.
//! Sequential loads only: tasks a crowd spawns would not carry it.

use tracing::instrument::WithSubscriber;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::runner::{BoxFuture, Contender, Load, Mark, Result, Sample};

/// Runs the inner contender with the subscriber installed.
pub struct Traced<C>(pub C);

impl<C: Contender> Contender for Traced<C> {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            if !matches!(load, Load::Sequential { .. }) {
                return Err("the traced contender runs sequential loads only".into());
            }
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_span_events(FmtSpan::CLOSE)
                .with_writer(std::io::sink)
                .finish();
            let sample = self.0.run(load, mark).with_subscriber(subscriber).await;
            tracing_core::callsite::rebuild_interest_cache();
            sample
        })
    }
}
