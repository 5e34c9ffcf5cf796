//! The pre-shutdown notices a tick posts: for each cluster the schedule takes down
//! within its `notify_before_down_minutes`, one Slack message per down transition
//! ([`fleet_shared::notice`]), with buttons when `[slack]` is configured.

use std::collections::HashMap;

use fleet_shared::notice::{self, Notice};
use fleet_shared::runner::Invocation;
use fleet_shared::state::ClusterRecord;
use jiff::{Timestamp, ToSpan};

use crate::handler::Scheduler;

impl Scheduler {
    /// The notices due at `now`, from the tick's records (their overrides); none without
    /// `fleet.slack_webhook`.
    pub(crate) fn notices_due(
        &self,
        records: &HashMap<String, ClusterRecord>,
        now: Timestamp,
    ) -> Vec<Notice> {
        if !self.notifier.enabled() {
            return vec![];
        }
        self.config
            .clusters
            .iter()
            .filter_map(|c| {
                let over = records.get(&c.name).and_then(|r| r.over.as_ref());
                notice::due(c, over, now)
            })
            .collect()
    }

    /// Posts `due`, all at once, each once: a lease per cluster and transition
    /// (`notice#<cluster>#<epoch>`) is taken first, so that a tick that runs twice, or two
    /// ticks, post one message. Best effort: a failure is logged and never fails the
    /// tick (the lease is given back, so the next tick tries again). The tick calls it
    /// after its clusters' work, under its deadline: Slack being slow never costs a
    /// teardown its time.
    pub(crate) async fn post_notices(&self, due: Vec<Notice>, inv: &Invocation) {
        if due.is_empty() {
            return;
        }
        // Read the webhook before claiming, so that a webhook that cannot be read does
        // not use the claims up.
        if let Err(e) = self.notifier.ready().await {
            tracing::warn!(error = %e, "Slack webhook unreadable: no pre-shutdown notices");
            return;
        }
        let buttons = self.config.slack.is_some();
        let posts = due.iter().map(|n| self.post_notice(n, buttons, inv));
        futures::future::join_all(posts).await;
    }

    async fn post_notice(&self, n: &Notice, buttons: bool, inv: &Invocation) {
        let key = notice::lease_key(n);
        let until = n.down_at.checked_add(1.hours()).unwrap_or(n.down_at);
        match self
            .store
            .acquire_lease(&key, &inv.request_id, until, inv.now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(cluster = %n.cluster, error = %e, "notice lease failed");
                return;
            }
        }
        match self
            .notifier
            .send_message(&notice::message(n, buttons))
            .await
        {
            Ok(_) => {
                tracing::info!(cluster = %n.cluster, down_at = %n.down_at, "pre-shutdown notice posted")
            }
            Err(e) => {
                tracing::warn!(cluster = %n.cluster, error = %e, "pre-shutdown notice failed");
                let _ = self.store.release_lease(&key, &inv.request_id).await;
            }
        }
    }
}
