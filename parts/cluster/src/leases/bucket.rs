//! The lease bucket as the lease manager finds it: the TTL its entries
//! last, which the manager times everything on, and the failures to read
//! it, counted and shown until it works again.

use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::kv;
use slog::{info, warn};

use super::{LEASES_CHILD, LeaseManager};

/// How long the entries of the bucket last: its `max_age`, which is the
/// lease's TTL whatever this node's `lease_ttl` says (the bucket was made
/// by the first node, with its own). A bucket whose entries never expire
/// is refused: a lease in it would outlive a dead holder for ever.
pub(super) async fn bucket_ttl(store: &kv::Store) -> Result<Duration, String> {
    let info = store
        .stream
        .get_info()
        .await
        .map_err(|e| format!("cannot read bucket {}: {e}", store.name))?;
    let max_age = info.config.max_age;
    if max_age.is_zero() {
        return Err(format!(
            "bucket {} keeps its entries for ever: a lease must expire; delete the bucket",
            store.name
        ));
    }
    Ok(max_age)
}

impl LeaseManager {
    /// Reads of the leases failed: counted, shown, and when none worked
    /// (the bucket deleted, say) the bucket is opened again, made anew if
    /// it is gone, at the next round.
    pub(super) fn read_failed(&mut self, errors: Vec<String>, none_read: bool) {
        let n = errors.len() as u64;
        self.counts.read_failed += n;
        self.counts.failed += n;
        self.config.metrics.changed("read_failed", n);
        let last = errors.into_iter().next_back().unwrap_or_default();
        if none_read {
            self.store = None;
        }
        self.unhealthy(
            format!("reading the leases: {last}"),
            "leases: cannot read the leases; the bucket is opened again",
        );
    }

    /// Times everything on the bucket's TTL `ttl` from now on; said when it
    /// is not this node's `lease_ttl`.
    pub(super) fn take_ttl(&mut self, ttl: Duration, ctx: &mut Context<Self>) {
        if ttl == self.ttl() {
            return;
        }
        if ttl != self.config.cluster.lease_ttl {
            warn!(self.log, "leases: the bucket's leases last another time than this node's lease_ttl; \
                its renewals and cut-off follow the bucket: give every node the same lease_ttl";
                "bucket_ttl" => %humantime::format_duration(ttl),
                "lease_ttl" => %humantime::format_duration(self.config.cluster.lease_ttl));
        }
        self.bucket_ttl = Some(ttl);
        // Held leases were renewed on the old timing: the cut-off runs on
        // the new one at once.
        self.fence();
        self.schedule(ctx);
    }

    /// The bucket works: nothing keeps the node from its share.
    pub(super) fn healthy(&mut self) {
        if self.error.take().is_some() {
            info!(self.log, "leases: the bucket works again");
        }
        self.config.readiness.ready(LEASES_CHILD);
    }

    /// The bucket does not work: said in the report and in `/readyz`, and
    /// logged once per cause.
    pub(super) fn unhealthy(&mut self, error: String, said: &str) {
        if self.error.as_ref() != Some(&error) {
            warn!(self.log, "{}", said; "error" => %error);
        }
        self.config.readiness.not_ready(LEASES_CHILD, &error);
        self.error = Some(error);
    }
}
