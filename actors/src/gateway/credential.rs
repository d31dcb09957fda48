//! The gateway's credentials: each model it serves is valid or paused for
//! a denied credential, which the gateway keeps across its restarts; a
//! denial of the account's credential pauses and invalidates every model,
//! and each resumes on its own word (docs/spec.md §5.7, §10.3).

use std::collections::BTreeMap;

use actix::prelude::*;
use slog::{debug, info, warn};

use super::actor::ProviderGateway;
use super::batch::ModelKey;
use super::messages::{CredentialValid, ModelCredentialValid};

/// Whether the cloud is accepting a model's credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Credential {
    #[default]
    Valid,
    /// Paused; `invalidated` once the gateway has invalidated it itself.
    Denied { invalidated: bool },
}

/// What the gateway keeps across its restarts: for each model it serves,
/// whether polling is paused because the cloud denied its credential, and
/// whether the gateway already invalidated it. A restart says nothing about
/// a credential, so a restarted gateway stays paused, and does not
/// invalidate it again.
#[derive(Debug, Default)]
pub struct GatewayState {
    pub(super) credentials: BTreeMap<ModelKey, Credential>,
    /// What this gateway added to the shared `queued_requests` gauge, so
    /// that a restart, which loses the queue, takes it back.
    pub(super) queued_shown: i64,
}

/// What a credential watch or the host says of one model's credential.
pub(super) struct CredentialWord {
    pub(super) model: ModelKey,
    pub(super) valid: bool,
}

impl ProviderGateway {
    pub(super) fn credential(&self, model: ModelKey) -> Credential {
        self.kept
            .lock()
            .credentials
            .get(&model)
            .copied()
            .unwrap_or_default()
    }

    /// Records a model's credential, and counts it in the paused gauge
    /// when it starts or stops being paused. The gauge is shared by every
    /// gateway and outlives this one, as the kept state does.
    fn set_credential(&self, model: ModelKey, credential: Credential) {
        let mut kept = self.kept.lock();
        let before = kept
            .credentials
            .insert(model, credential)
            .unwrap_or_default();
        match (before == Credential::Valid, credential == Credential::Valid) {
            (true, false) => {
                self.metrics.paused.inc();
            }
            (false, true) => {
                self.metrics.paused.dec();
            }
            _ => {}
        }
    }

    /// The cloud denied access. The models a gateway serves share its
    /// cloud account and credential, so each is paused and, once per
    /// denial, its credential invalidated so the controller shows it.
    pub(super) fn deny_credential(&mut self, reason: String, ctx: &mut Context<Self>) {
        let models: Vec<ModelKey> = self.credentials.keys().copied().collect();
        let mut invalidated = Vec::new();
        for model in models {
            if self.credential(model) == (Credential::Denied { invalidated: true }) {
                continue;
            }
            self.set_credential(model, Credential::Denied { invalidated: true });
            self.pause(model);
            self.tally.count_invalidation(&self.metrics);
            *self.invalidations.entry(model).or_default() += 1;
            invalidated.push(model);
            let log = self.log.clone();
            let invalidate = self.credentials[&model].invalidate_model_credential(reason.clone());
            ctx.spawn(
                async move {
                    if let Err(error) = invalidate.await {
                        warn!(log, "could not invalidate stored cloud credential";
                            "model" => model.map(|m| m.to_string()), "error" => %error);
                    }
                }
                .into_actor(self),
            );
        }
        if !invalidated.is_empty() {
            let models: Vec<String> = invalidated
                .iter()
                .filter_map(|m| m.map(|m| m.to_string()))
                .collect();
            warn!(self.log, "cloud denied access; polling paused until the credential is valid again";
                "reason" => &reason, "models" => models.join(","));
        }
    }

    /// Moves a model's requests out of the queue, to wait for its
    /// credential.
    pub(super) fn pause(&mut self, model: ModelKey) {
        let requests = self.queue.extract(model);
        if !requests.is_empty() {
            let parked = self.parked.entry(model).or_default();
            let mut all = requests;
            all.append(parked);
            all.sort_by_key(|waiting| waiting.since);
            *parked = all;
        }
    }

    /// The host or a credential watch says whether a model's credential is
    /// valid: a valid one resumes its polling, an invalid one pauses it.
    pub(super) fn credential_changed(&mut self, word: CredentialWord, ctx: &mut Context<Self>) {
        let CredentialWord { model, valid } = word;
        if !self.credentials.contains_key(&model) {
            return;
        }
        let shown = model.map(|m| m.to_string());
        match (valid, self.credential(model)) {
            (true, Credential::Denied { .. }) => {
                let parked = self.parked.remove(&model).unwrap_or_default();
                info!(self.log, "model credential valid again; polling resumes";
                    "model" => shown, "queued" => parked.len());
                self.set_credential(model, Credential::Valid);
                self.queue.merge(parked);
                self.dispatch(ctx);
            }
            (false, Credential::Valid) => {
                warn!(self.log, "model credential is not valid; polling paused"; "model" => shown);
                self.set_credential(model, Credential::Denied { invalidated: false });
                self.pause(model);
                self.show_queued();
            }
            _ => {}
        }
    }
}

impl StreamHandler<CredentialWord> for ProviderGateway {
    fn handle(&mut self, word: CredentialWord, ctx: &mut Context<Self>) {
        self.credential_changed(word, ctx);
    }

    /// A credential watch ending is no reason to stop polling; the host can
    /// still say the credential is valid through [`CredentialValid`].
    fn finished(&mut self, _ctx: &mut Context<Self>) {
        debug!(self.log, "credential validity watch ended");
    }
}

impl Handler<CredentialValid> for ProviderGateway {
    type Result = ();

    fn handle(&mut self, valid: CredentialValid, ctx: &mut Context<Self>) {
        let models: Vec<ModelKey> = self.credentials.keys().copied().collect();
        for model in models {
            self.credential_changed(
                CredentialWord {
                    model,
                    valid: valid.0,
                },
                ctx,
            );
        }
    }
}

impl Handler<ModelCredentialValid> for ProviderGateway {
    type Result = ();

    fn handle(&mut self, word: ModelCredentialValid, ctx: &mut Context<Self>) {
        self.credential_changed(
            CredentialWord {
                model: Some(word.model),
                valid: word.valid,
            },
            ctx,
        );
    }
}
