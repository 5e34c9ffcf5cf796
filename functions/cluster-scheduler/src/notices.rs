//! The pre-shutdown notices a tick posts: for each cluster the schedule takes down
//! within its `notify_before_down_minutes`, one Slack message per down transition
//! ([`fleet_shared::notice`]), with buttons when `[slack]` is configured.

use fleet_shared::notice;
use fleet_shared::runner::Invocation;
use fleet_shared::state::ClusterRecord;
use jiff::ToSpan;

use crate::handler::Scheduler;

impl Scheduler {
    /// Posts the notices due at `inv.now`, each once: a lease per cluster and transition
    /// (`notice#<cluster>#<epoch>`) is taken first, so that a tick that runs twice, or
    /// two ticks, post one message. Best effort: a failure is logged and never fails
    /// the tick (the lease is given back, so the next tick tries again).
    pub(crate) async fn post_notices(
        &self,
        records: &std::collections::HashMap<String, ClusterRecord>,
        inv: &Invocation,
    ) {
        if !self.notifier.enabled() {
            return;
        }
        let buttons = self.config.slack.is_some();
        for c in &self.config.clusters {
            let over = records.get(&c.name).and_then(|r| r.over.as_ref());
            let Some(n) = notice::due(c, over, inv.now) else {
                continue;
            };
            // Read the webhook before claiming, so that a webhook that cannot be read
            // does not use the claim up.
            if let Err(e) = self.notifier.ready().await {
                tracing::warn!(error = %e, "Slack webhook unreadable: no pre-shutdown notice");
                return;
            }
            let key = notice::lease_key(&n);
            let until = n.down_at.checked_add(1.hours()).unwrap_or(n.down_at);
            match self
                .store
                .acquire_lease(&key, &inv.request_id, until, inv.now)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(cluster = %c.name, error = %e, "notice lease failed");
                    continue;
                }
            }
            match self
                .notifier
                .send_message(&notice::message(&n, buttons))
                .await
            {
                Ok(_) => {
                    tracing::info!(cluster = %c.name, down_at = %n.down_at, "pre-shutdown notice posted")
                }
                Err(e) => {
                    tracing::warn!(cluster = %c.name, error = %e, "pre-shutdown notice failed");
                    let _ = self.store.release_lease(&key, &inv.request_id).await;
                }
            }
        }
    }
}
