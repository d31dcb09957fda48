//! The registry's change feed: a watch of the bucket's registrations,
//! credentials and passwords, whichever node wrote them, moving each
//! model's version, and telling each agent whose password changed.

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use muster::names::ModelUuid;
use muster_registry::{PasswordFeed, Versions};

use super::passwords::{PASSWORDS, agent_of_key};

/// How long the change feed waits before it watches again after NATS
/// dropped it.
const REWATCH: Duration = Duration::from_millis(250);

/// How long one watch lasts before it is made again from where it got to:
/// a watch whose consumer NATS placed on a server that died may stall
/// without an error, and a new one resumes from the revision after the
/// last heard, so nothing is missed and nothing heard twice matters.
const WATCH_FOR: Duration = Duration::from_secs(5);

/// Moves each model's version when the bucket says its registrations or
/// its credential changed, and tells `passwords` of each agent whose
/// password changed, whichever node wrote them. Watches from the
/// bucket's end as it first finds it, then every [`WATCH_FOR`] again from
/// the revision after the last change heard.
///
/// A bucket deleted and made again (its stream created anew, its
/// revisions from 1 again) is noticed at the next watch: its creation time
/// changed, or its last revision is below the one this feed would resume
/// from. The feed then watches the new bucket from its end and moves every
/// version, so that everything is read again.
pub(super) async fn follow(store: kv::Store, versions: Weak<Versions>, passwords: PasswordFeed) {
    let mut next: Option<u64> = None;
    let mut created = None;
    loop {
        if versions.strong_count() == 0 {
            return;
        }
        let info = match tokio::time::timeout(WATCH_FOR, store.stream.get_info()).await {
            Ok(Ok(info)) => info,
            _ => {
                tokio::time::sleep(REWATCH).await;
                continue;
            }
        };
        let end = info.state.last_sequence + 1;
        let made_anew =
            created.is_some_and(|at| at != info.created) || next.is_some_and(|from| end < from);
        created = Some(info.created);
        if made_anew {
            next = None;
        }
        let from = next.unwrap_or(end);
        let watches = futures::future::try_join3(
            store.watch_from_revision("m.>", from),
            store.watch_from_revision("c.>", from),
            store.watch_from_revision(PASSWORDS, from),
        );
        let Ok(Ok((machines, credentials, changed_passwords))) =
            tokio::time::timeout(WATCH_FOR, watches).await
        else {
            tokio::time::sleep(REWATCH).await;
            continue;
        };
        if next.is_none()
            && let Some(versions) = versions.upgrade()
        {
            // What changed before the first watch was not heard.
            versions.bump_all();
        }
        next = Some(from);
        let until = tokio::time::Instant::now() + WATCH_FOR;
        let mut changes = futures::stream::select(
            futures::stream::select(machines, credentials),
            changed_passwords,
        );
        loop {
            match tokio::time::timeout_at(until, changes.next()).await {
                Ok(Some(Ok(entry))) => {
                    let Some(versions) = versions.upgrade() else {
                        return;
                    };
                    next = Some(next.map_or(entry.revision + 1, |n| n.max(entry.revision + 1)));
                    if let Some((model, agent)) = agent_of_key(&entry.key) {
                        passwords.changed(model, agent);
                    } else if let Some(model) = model_of_key(&entry.key) {
                        versions.bump(model);
                    }
                }
                // Time to watch again from where it got to.
                Err(_) => break,
                // NATS ended it, or it failed.
                Ok(_) => {
                    tokio::time::sleep(REWATCH).await;
                    break;
                }
            }
        }
    }
}

/// The model a key of the bucket is about.
fn model_of_key(key: &str) -> Option<ModelUuid> {
    key.split('.').nth(1)?.parse().ok()
}
