//! Which hosts of the primary's set may serve sessions, from what each
//! said about itself: those that fit `target_session_attrs` (libpq's rules), minus a
//! primary that lost a split brain. When two hosts both take writes, the
//! one on the newer timeline (the one promoted last) keeps them; when that
//! cannot be told (same or unknown timelines, as on MariaDB), neither gets
//! sessions that need a primary, and a WARN says why.

use crate::replication::{Role, Standing};
use crate::server::Answer;
use crate::url::TargetSessionAttrs;

/// The hosts that serve sessions, and why the others do not.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Choice {
    /// Indexes of the hosts that fit, in the URL's order.
    pub(super) serving: Vec<usize>,
    /// What each host was, for errors: `127.0.0.1:5433: standby`.
    described: Vec<String>,
    /// Set while two hosts take writes.
    split_brain: Option<String>,
}

impl Choice {
    /// Chooses among hosts that were `seen` so, named by `addresses`.
    pub(super) fn make(seen: &[Answer], target: TargetSessionAttrs, addresses: &[String]) -> Self {
        let (losers, split_brain) = split_brain(seen, addresses);
        let standing = |index: usize| match &seen[index] {
            Answer::Up(standing) if !losers.contains(&index) => Some(standing),
            _ => None,
        };
        let fitting = |fits: &dyn Fn(&Standing) -> bool| -> Vec<usize> {
            (0..seen.len())
                .filter(|&index| standing(index).is_some_and(fits))
                .collect()
        };
        let serving = match target {
            TargetSessionAttrs::Any => fitting(&|_| true),
            TargetSessionAttrs::ReadWrite => fitting(&|s| s.writable),
            TargetSessionAttrs::ReadOnly => fitting(&|s| !s.writable),
            TargetSessionAttrs::Primary => fitting(&|s| s.role == Role::Primary),
            TargetSessionAttrs::Standby => fitting(&|s| s.role == Role::Standby),
            TargetSessionAttrs::PreferStandby => {
                let standbys = fitting(&|s| s.role == Role::Standby);
                if standbys.is_empty() {
                    fitting(&|_| true)
                } else {
                    standbys
                }
            }
        };
        let described = seen
            .iter()
            .zip(addresses)
            .map(|(seen, address)| format!("{address}: {}", describe(seen)))
            .collect();
        Self {
            serving,
            described,
            split_brain,
        }
    }

    /// Why no host serves, for an error: what each one was.
    pub(super) fn none_fit(&self, target: TargetSessionAttrs) -> String {
        let mut text = format!(
            "no host fits target_session_attrs={target}: {}",
            self.described.join("; ")
        );
        if let Some(split_brain) = &self.split_brain {
            text.push_str("; ");
            text.push_str(split_brain);
        }
        text
    }

    /// Logs what changed since `before`: where sessions go now, a split
    /// brain (WARN), or that no host fits (WARN).
    pub(super) fn announce(&self, addresses: &[String], before: Option<&Self>) {
        if self.split_brain.is_some()
            && self.split_brain != before.and_then(|b| b.split_brain.clone())
        {
            tracing::warn!(
                hosts = %self.described.join("; "),
                "{}",
                self.split_brain.as_deref().unwrap_or_default()
            );
        }
        if before.is_some_and(|b| b.serving == self.serving) {
            return;
        }
        match self.serving.first() {
            Some(&first) => tracing::info!(
                host = %addresses[first],
                hosts = %self.described.join("; "),
                "sessions go to {}", addresses[first]
            ),
            None => tracing::warn!(
                hosts = %self.described.join("; "),
                "no host fits; sessions wait up to pool_timeout for one"
            ),
        }
    }
}

/// The primaries that lost a split brain, and the WARN text; none when at
/// most one host takes writes, or when every one that does says it is a
/// node of the same multi-writer cluster (Galera).
fn split_brain(seen: &[Answer], addresses: &[String]) -> (Vec<usize>, Option<String>) {
    let clusters: Vec<Option<&str>> = seen
        .iter()
        .filter_map(|seen| match seen {
            Answer::Up(s) if s.role == Role::Primary => {
                Some(s.cluster.as_ref().map(|c| c.id.as_str()))
            }
            _ => None,
        })
        .collect();
    if clusters
        .first()
        .is_some_and(|first| first.is_some() && clusters.iter().all(|cluster| cluster == first))
    {
        return (Vec::new(), None);
    }
    let primaries: Vec<(usize, Option<u64>)> = seen
        .iter()
        .enumerate()
        .filter_map(|(index, seen)| match seen {
            Answer::Up(s) if s.role == Role::Primary => Some((index, s.timeline)),
            _ => None,
        })
        .collect();
    if primaries.len() < 2 {
        return (Vec::new(), None);
    }
    let named = primaries
        .iter()
        .map(|&(index, timeline)| match timeline {
            Some(timeline) => format!("{} (timeline {timeline})", addresses[index]),
            None => addresses[index].clone(),
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let newest = primaries.iter().filter_map(|&(_, t)| t).max();
    let winners: Vec<usize> = primaries
        .iter()
        .filter(|&&(_, timeline)| timeline.is_some() && timeline == newest)
        .map(|&(index, _)| index)
        .collect();
    if let [winner] = winners[..] {
        let losers = primaries
            .iter()
            .map(|&(index, _)| index)
            .filter(|&index| index != winner)
            .collect();
        let text = format!(
            "split brain: {named} both take writes; sessions keep to {}, the newer timeline, \
             and the other gets none until it is rebuilt as a standby (pg_rewind)",
            addresses[winner]
        );
        (losers, Some(text))
    } else {
        let losers = primaries.iter().map(|&(index, _)| index).collect();
        let text = format!(
            "split brain: {named} both take writes and their timelines do not tell which is \
             newer; no session goes to either until one is made a standby"
        );
        (losers, Some(text))
    }
}

fn describe(seen: &Answer) -> String {
    match seen {
        Answer::Unknown => "not asked yet".to_owned(),
        Answer::Down(reason) => format!("unreachable ({reason})"),
        Answer::Up(s) => {
            let mut text = s.role.to_string();
            if s.role == Role::Primary && !s.writable {
                text.push_str(", read-only");
            }
            if let Some(timeline) = s.timeline {
                text.push_str(&format!(", timeline {timeline}"));
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(role: Role, timeline: u64, writable: bool) -> Answer {
        Answer::Up(Standing {
            role,
            timeline: Some(timeline),
            writable,
            position: None,
            cluster: None,
        })
    }

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn each_target_picks_what_libpq_picks() {
        let seen = [
            Answer::Down("refused".into()),
            up(Role::Standby, 1, false),
            up(Role::Primary, 1, true),
            up(Role::Primary, 1, false),
        ];
        let choice = |target| Choice::make(&seen[..3], target, &names(3)).serving;
        assert_eq!(choice(TargetSessionAttrs::Any), vec![1, 2]);
        assert_eq!(choice(TargetSessionAttrs::ReadWrite), vec![2]);
        assert_eq!(choice(TargetSessionAttrs::Primary), vec![2]);
        assert_eq!(choice(TargetSessionAttrs::ReadOnly), vec![1]);
        assert_eq!(choice(TargetSessionAttrs::Standby), vec![1]);
        assert_eq!(choice(TargetSessionAttrs::PreferStandby), vec![1]);
        let no_standby = [seen[0].clone(), seen[2].clone()];
        let prefer = Choice::make(&no_standby, TargetSessionAttrs::PreferStandby, &names(2));
        assert_eq!(prefer.serving, vec![1]);
        let read_only_primary = [seen[3].clone()];
        let choice = Choice::make(&read_only_primary, TargetSessionAttrs::ReadOnly, &names(1));
        assert_eq!(choice.serving, vec![0]);
        let choice = Choice::make(&read_only_primary, TargetSessionAttrs::ReadWrite, &names(1));
        assert!(choice.serving.is_empty());
        assert_eq!(
            choice.none_fit(TargetSessionAttrs::ReadWrite),
            "no host fits target_session_attrs=read-write: h0: primary, read-only, timeline 1"
        );
    }

    #[test]
    fn split_brain_keeps_the_newer_timeline() {
        let seen = [up(Role::Primary, 1, true), up(Role::Primary, 2, true)];
        let choice = Choice::make(&seen, TargetSessionAttrs::ReadWrite, &names(2));
        assert_eq!(choice.serving, vec![1]);
        let warning = choice.split_brain.expect("split brain noticed");
        assert!(
            warning.contains("h0 (timeline 1) and h1 (timeline 2)"),
            "{warning}"
        );
        assert!(warning.contains("sessions keep to h1"), "{warning}");
    }

    #[test]
    fn split_brain_without_timelines_refuses_both() {
        let no_timeline = Answer::Up(Standing {
            role: Role::Primary,
            timeline: None,
            writable: true,
            position: None,
            cluster: None,
        });
        let seen = [no_timeline.clone(), no_timeline];
        let choice = Choice::make(&seen, TargetSessionAttrs::ReadWrite, &names(2));
        assert!(choice.serving.is_empty());
        let text = choice.none_fit(TargetSessionAttrs::ReadWrite);
        assert!(text.contains("do not tell which is newer"), "{text}");
    }

    #[test]
    fn nodes_of_one_multi_writer_cluster_are_no_split_brain() {
        let node = |cluster: &str| {
            Answer::Up(Standing {
                role: Role::Primary,
                timeline: None,
                writable: true,
                position: None,
                cluster: Some(crate::replication::ClusterMembership {
                    id: cluster.into(),
                    state: "Synced".into(),
                    size: 3,
                }),
            })
        };
        let seen = [node("c1"), node("c1"), node("c1")];
        let choice = Choice::make(&seen, TargetSessionAttrs::ReadWrite, &names(3));
        assert_eq!(choice.serving, vec![0, 1, 2]);
        assert!(choice.split_brain.is_none());
        let two_clusters = [node("c1"), node("c2")];
        let choice = Choice::make(&two_clusters, TargetSessionAttrs::ReadWrite, &names(2));
        assert!(choice.serving.is_empty(), "two clusters are a split brain");
    }
}
