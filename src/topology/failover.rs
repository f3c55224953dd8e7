//! The primary's policy: which hosts of `url` serve sessions. A plain URL
//! is one host that always does. A multi-host URL (or one with
//! `target_session_attrs`) serves from the hosts that fit
//! `target_session_attrs` (spread at random across all that fit with
//! `load_balance_hosts=random`), chosen again after every monitor round —
//! after a failover, the promoted standby (see `choice.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::choice::Choice;
use super::host_set::{Policy, Round};
use crate::server::Server;
use crate::url::TargetSessionAttrs;

/// How the hosts of `url` are chosen.
pub(super) struct Failover {
    /// `None` for a plain URL: its one host always serves.
    target: Option<TargetSessionAttrs>,
    load_balance: bool,
    /// Each host's `host:port`, for logs and errors.
    addresses: Vec<String>,
    choice: Mutex<Choice>,
}

impl Failover {
    /// The one host of a plain URL.
    pub(super) fn fixed() -> Self {
        Self {
            target: None,
            load_balance: false,
            addresses: Vec::new(),
            choice: Mutex::new(Choice::default()),
        }
    }

    /// Hosts chosen by `target`, starting from `first` (the choice made
    /// when the registry connected).
    pub(super) fn chosen(
        target: TargetSessionAttrs,
        load_balance: bool,
        addresses: Vec<String>,
        first: Choice,
    ) -> Self {
        first.announce(&addresses, None);
        Self {
            target: Some(target),
            load_balance,
            addresses,
            choice: Mutex::new(first),
        }
    }

    /// Whether the hosts are chosen (and so watched), not fixed.
    pub(super) fn chooses(&self) -> bool {
        self.target.is_some()
    }

    /// The index of a host that serves sessions now: the first that fits,
    /// or one of them at random when `load_balance`; `None` while none does.
    pub(super) fn pick(&self) -> Option<usize> {
        if self.target.is_none() {
            return Some(0);
        }
        let choice = self.choice.lock().ok()?;
        if self.load_balance && choice.serving.len() > 1 {
            let turn = crate::random::below(choice.serving.len());
            return Some(choice.serving[turn]);
        }
        choice.serving.first().copied()
    }

    /// Why no host serves, for an error: what each one was.
    pub(super) fn none_fit(&self, waited: Duration) -> String {
        let target = self.target.unwrap_or(TargetSessionAttrs::Any);
        let described = self
            .choice
            .lock()
            .map(|choice| choice.none_fit(target))
            .unwrap_or_default();
        format!("{described} (waited pool_timeout, {waited:?})")
    }
}

impl Policy for Failover {
    /// Chooses again; a host that no longer serves drops its idle
    /// connections.
    fn observe(&self, servers: &[Arc<Server>], _round: &Round) {
        let Some(target) = self.target else {
            return;
        };
        let answers: Vec<_> = servers.iter().map(|s| s.health().seen().answer).collect();
        let choice = Choice::make(&answers, target, &self.addresses);
        let Ok(before) = self
            .choice
            .lock()
            .map(|mut current| std::mem::replace(&mut *current, choice.clone()))
        else {
            return;
        };
        choice.announce(&self.addresses, Some(&before));
        for index in before.serving {
            if !choice.serving.contains(&index) {
                servers[index].drop_idle();
            }
        }
    }

    fn lag(&self, _server: &Server) -> Option<Duration> {
        None
    }
}
