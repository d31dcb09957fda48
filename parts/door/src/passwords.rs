//! Each agent's own password at the door (docs/spec.md §14): where the
//! door finds the hash to check a login against ([`AgentPasswords`], which
//! the host gives), and the connections that logged in with a password,
//! closed with 4401 as soon as their agent's password changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use muster::names::{AgentTag, ModelUuid};
use muster::password::PasswordHash;
use muster::sync::lock;
use slog::{Logger, warn};
use tokio::sync::oneshot;

use super::login::{BAD_TOKEN, Login, Refusal};

/// The reason of every refusal of a password login, whatever was wrong
/// (missing, wrong, another agent's, an agent without one, an unknown
/// model), so that nobody learns which agents exist.
pub const PASSWORD_REFUSED: &str = "login refused: wrong agent or password";

/// The reason a connection is closed when its agent's password changed.
pub const PASSWORD_CHANGED: &str = "password changed or removed; log in again";

/// An agent whose password changed, as the host's store tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordChanged {
    /// This agent's password was set, rotated or removed.
    Agent(ModelUuid, AgentTag),
    /// Any agent's may have changed (the feed fell behind): every
    /// connection's is checked again.
    Any,
}

/// Where the door finds each agent's password, as a hash, and hears of
/// changes to them: the host's password store (musterd's is its machine
/// registry).
pub trait AgentPasswords: Send + Sync + 'static {
    /// The hash of agent `agent`'s password in `model`; `None` when the
    /// agent has none or the model is not one the host knows. An error
    /// (the store unreachable) refuses the login with 1013.
    fn password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<Option<PasswordHash>, String>>;

    /// The changes from now on, whichever node made them.
    fn changes(&self) -> BoxStream<'static, PasswordChanged>;
}

/// A logged-in connection's password, held so that a change closes it.
struct Held {
    id: u64,
    hash: PasswordHash,
    revoke: oneshot::Sender<()>,
}

type Key = (ModelUuid, AgentTag);

/// The connections that logged in with a password, by agent.
#[derive(Default)]
pub(super) struct Live {
    held: Mutex<HashMap<Key, Vec<Held>>>,
    /// Changes heard so far: a login that sees it move between its check
    /// and its holding looks again, since the change may have been heard
    /// before it was held.
    changes: AtomicU64,
}

/// A connection's place in [`Live`]: dropping it takes the connection
/// out.
pub(super) struct Holding {
    live: Arc<Live>,
    key: Key,
    id: u64,
}

impl Drop for Holding {
    fn drop(&mut self) {
        let mut held = lock(&self.live.held);
        if let Some(all) = held.get_mut(&self.key) {
            all.retain(|h| h.id != self.id);
            if all.is_empty() {
                held.remove(&self.key);
            }
        }
    }
}

impl Live {
    /// Holds connection `id` of `login`, logged in with `hash` when
    /// [`Live::changes`] was `before`: the receiver is told when the
    /// agent's password is no longer `hash`. A change heard since `before`
    /// found nothing of this connection to close, so the password is read
    /// again from `passwords` (a store that fails leaves it open, as a
    /// change does).
    pub async fn hold(
        self: &Arc<Self>,
        login: &Login,
        id: u64,
        hash: PasswordHash,
        before: u64,
        passwords: Option<&Arc<dyn AgentPasswords>>,
    ) -> (Holding, oneshot::Receiver<()>) {
        let (revoke, revoked) = oneshot::channel();
        let key = (login.model, login.agent.clone());
        lock(&self.held)
            .entry(key.clone())
            .or_default()
            .push(Held { id, hash, revoke });
        if self.changes() != before
            && let Some(passwords) = passwords
            && let Ok(now) = passwords.password(key.0, key.1.clone()).await
        {
            self.revoke(&key, now);
        }
        let holding = Holding {
            live: self.clone(),
            key,
            id,
        };
        (holding, revoked)
    }

    /// The changes heard so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Closes the connections of `key` that logged in with another
    /// password than `now`.
    fn revoke(&self, key: &Key, now: Option<PasswordHash>) {
        let mut held = lock(&self.held);
        let Some(all) = held.get_mut(key) else {
            return;
        };
        let (gone, kept): (Vec<Held>, Vec<Held>) = std::mem::take(all)
            .into_iter()
            .partition(|h| now.is_none_or(|now| !now.same_as(&h.hash)));
        *all = kept;
        if all.is_empty() {
            held.remove(key);
        }
        drop(held);
        for held in gone {
            let _ = held.revoke.send(());
        }
    }

    fn keys(&self) -> Vec<Key> {
        lock(&self.held).keys().cloned().collect()
    }

    fn holds(&self, key: &Key) -> bool {
        lock(&self.held).contains_key(key)
    }
}

/// Follows `passwords`' changes for as long as `live` is held by the door,
/// closing each connection whose agent's password is no longer the one it
/// logged in with.
pub(super) async fn follow(passwords: Arc<dyn AgentPasswords>, live: Weak<Live>, logger: Logger) {
    let mut changes = passwords.changes();
    while let Some(change) = changes.next().await {
        let Some(held) = live.upgrade() else {
            return;
        };
        held.changes.fetch_add(1, Ordering::SeqCst);
        let keys = match change {
            PasswordChanged::Agent(model, agent) => {
                let key = (model, agent);
                // Nobody connected as that agent: nothing to look up.
                if !held.holds(&key) {
                    continue;
                }
                vec![key]
            }
            PasswordChanged::Any => held.keys(),
        };
        for key in keys {
            match passwords.password(key.0, key.1.clone()).await {
                Ok(now) => held.revoke(&key, now),
                // Unsure, the connections stay: a store that fails must not
                // close every agent.
                Err(error) => warn!(logger, "agents: cannot read a changed password";
                    "model" => %key.0, "agent" => %key.1, "error" => error),
            }
        }
    }
}

/// Checks `login`'s password against what `passwords` holds; answers the
/// hash it logged in with. Every failure but the store's is 4401 with
/// [`PASSWORD_REFUSED`].
pub(super) async fn check(
    passwords: Option<&Arc<dyn AgentPasswords>>,
    login: &Login,
) -> Result<PasswordHash, Refusal> {
    let refused = || Refusal::new(BAD_TOKEN, PASSWORD_REFUSED);
    let Some(passwords) = passwords else {
        return Err(refused());
    };
    let stored = passwords
        .password(login.model, login.agent.clone())
        .await
        .map_err(|_| {
            Refusal::new(
                super::ending::TRY_AGAIN,
                "the password store is unavailable; try again later",
            )
        })?;
    // The given password is hashed and compared whatever was found, so that
    // an agent without one takes as long to refuse.
    let given = PasswordHash::of(login.password.as_deref().unwrap_or_default());
    let against = stored.unwrap_or(PasswordHash::from_bytes([0; 32]));
    let right = against.same_as(&given) & stored.is_some() & login.password.is_some();
    if right { Ok(against) } else { Err(refused()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::sync::mpsc;

    /// Passwords in a map, and changes sent by the test.
    struct Fake {
        stored: Mutex<HashMap<Key, PasswordHash>>,
        changes: Mutex<Option<mpsc::UnboundedReceiver<PasswordChanged>>>,
    }

    impl AgentPasswords for Fake {
        fn password(
            &self,
            model: ModelUuid,
            agent: AgentTag,
        ) -> BoxFuture<'static, Result<Option<PasswordHash>, String>> {
            let found = lock(&self.stored).get(&(model, agent)).copied();
            futures::future::ready(Ok(found)).boxed()
        }

        fn changes(&self) -> BoxStream<'static, PasswordChanged> {
            let mut changes = lock(&self.changes).take().unwrap();
            futures::stream::poll_fn(move |cx| changes.poll_recv(cx)).boxed()
        }
    }

    fn login(agent: &str) -> Login {
        Login {
            model: ModelUuid::from_u128(1),
            agent: agent.parse().unwrap(),
            user_data: String::new(),
            controller_agent: false,
            password: None,
        }
    }

    fn fake() -> (Arc<Fake>, mpsc::UnboundedSender<PasswordChanged>) {
        let (send, receive) = mpsc::unbounded_channel();
        let fake = Arc::new(Fake {
            stored: Mutex::default(),
            changes: Mutex::new(Some(receive)),
        });
        (fake, send)
    }

    /// A fake store, its change feed, and the connections `follow`
    /// closes as the feed says.
    fn following() -> (
        Arc<Fake>,
        mpsc::UnboundedSender<PasswordChanged>,
        Arc<Live>,
        Arc<dyn AgentPasswords>,
    ) {
        let (fake, changes) = fake();
        let live = Arc::new(Live::default());
        let passwords: Arc<dyn AgentPasswords> = fake.clone();
        tokio::spawn(follow(
            passwords.clone(),
            Arc::downgrade(&live),
            Logger::root(slog::Discard, slog::o!()),
        ));
        (fake, changes, live, passwords)
    }

    #[tokio::test]
    async fn a_change_closes_the_connections_of_the_old_password_only() {
        let (fake, changes, live, passwords) = following();
        let (old, new) = (PasswordHash::of("old"), PasswordHash::of("new"));
        let (unit, other) = (login("unit-app-0"), login("machine-1"));
        let key = |l: &Login| (l.model, l.agent.clone());
        lock(&fake.stored).insert(key(&unit), old);
        lock(&fake.stored).insert(key(&other), old);
        let (_a, mut first) = live.hold(&unit, 1, old, 0, Some(&passwords)).await;
        let (_b, mut second) = live.hold(&other, 2, old, 0, Some(&passwords)).await;

        // Rotated: the old password's connection is told, the other agent's
        // is not.
        lock(&fake.stored).insert(key(&unit), new);
        changes
            .send(PasswordChanged::Agent(unit.model, unit.agent.clone()))
            .unwrap();
        assert_eq!((&mut first).await, Ok(()));
        assert!(second.try_recv().is_err());
        // One that logged in with the new password stays through another
        // look at every connection.
        let before = live.changes();
        let (_c, mut third) = live.hold(&unit, 3, new, before, Some(&passwords)).await;
        changes.send(PasswordChanged::Any).unwrap();
        tokio::task::yield_now().await;
        while live.changes() == before {
            tokio::task::yield_now().await;
        }
        assert!(third.try_recv().is_err());
        assert!(second.try_recv().is_err());
        // Dropped, a connection is no longer held.
        drop(_b);
        assert!(!live.holds(&key(&other)));
    }

    #[tokio::test]
    async fn a_change_heard_between_the_check_and_the_holding_is_not_missed() {
        let (_fake, changes, live, passwords) = following();
        let unit = login("unit-app-0");
        let key = (unit.model, unit.agent.clone());
        let old = PasswordHash::of("old");
        // The login checked the old password...
        let before = live.changes();
        // ...then the password was removed, and the change heard while
        // nothing of the login was held.
        changes
            .send(PasswordChanged::Agent(unit.model, unit.agent.clone()))
            .unwrap();
        while live.changes() == before {
            tokio::task::yield_now().await;
        }
        assert!(!live.holds(&key));
        let (_held, revoked) = live.hold(&unit, 1, old, before, Some(&passwords)).await;
        assert_eq!(revoked.await, Ok(()), "the connection is closed at once");
    }
}
