//! One record written (planned against what the provider holds, then applied), and
//! the changes announced on Slack and as metrics.

use std::time::Instant;

use aws_sdk_cloudwatch::types::StandardUnit;
use fleet_shared::clock::Budget;
use fleet_shared::config::{DnsProvider, DnsRecordConfig};
use fleet_shared::metrics::{self, datum};
use fleet_shared::{FleetError, Result};

use crate::plan::{plan_cloudflare, plan_route53, Action, Change, Goal};

use crate::handler::*;

impl Updater {
    /// Plans one record and, unless a dry run, applies the plan.
    pub(crate) async fn record(
        &self,
        cluster: &str,
        rec: &DnsRecordConfig,
        goal: &Goal,
        known: &[String],
        dry_run: bool,
        budget: Budget,
    ) -> Result<Change> {
        match rec.provider {
            DnsProvider::Cloudflare => {
                let cf = self
                    .cloudflare
                    .as_ref()
                    .ok_or_else(|| FleetError::config("fleet.cloudflare_api_token", "missing"))?;
                let zone = cf.zone_id(rec).await?;
                let existing = cf.records(&zone, &rec.name).await?;
                let (change, writes) = plan_cloudflare(rec, cluster, goal, &existing);
                if !dry_run {
                    for w in &writes {
                        cf.apply(&zone, w).await?;
                    }
                }
                Ok(change)
            }
            DnsProvider::Route53 => {
                let zone = rec.zone_id.as_deref().unwrap_or_default();
                // Route53 is global: the zone's account, in the hub's region.
                let route53 = self.route53.at(&fleet_shared::config::Place {
                    account: rec.zone_account.clone(),
                    region: self.config.fleet.region.clone(),
                });
                let existing = route53.records_at(zone, &rec.name).await?;
                let owner = self.store.dns_owner(zone, &rec.name).await?;
                let mut plan = plan_route53(rec, cluster, goal, &existing, owner.as_deref(), known);
                if dry_run {
                    return Ok(plan.change);
                }
                if plan.change.action == Action::Error {
                    return Err(FleetError::Internal(plan.change.reason.unwrap_or_default()));
                }
                if !plan.batch.is_empty() {
                    let comment = format!("fleet dns-updater, cluster {cluster}");
                    let id = route53.change(zone, &plan.batch, &comment).await?;
                    if let Some(id) = id.filter(|_| rec.wait_insync) {
                        if !route53
                            // Real time: Route53 propagates in real time, and the
                            // wait stays inside the invocation's own.
                            .wait_insync(
                                &id,
                                budget
                                    .less(DEADLINE_MARGIN)
                                    .min(Instant::now() + INSYNC_WAIT)
                                    .ends(),
                            )
                            .await?
                        {
                            plan.change.reason = Some(format!("change {id} is not INSYNC yet"));
                        }
                    }
                }
                if plan.claim {
                    self.store.set_dns_owner(zone, &rec.name, cluster).await?;
                }
                if plan.release {
                    self.store.clear_dns_owner(zone, &rec.name, cluster).await?;
                }
                Ok(plan.change)
            }
        }
    }

    /// Slack and metrics when something changed or conflicted: best effort, logged.
    pub(crate) async fn announce(&self, cluster: &str, changes: &[Change]) {
        let written = changes.iter().filter(|c| c.writes()).count();
        let conflicts = changes
            .iter()
            .filter(|c| c.action == Action::Conflict)
            .count();
        if written + conflicts == 0 {
            return;
        }
        let lines: Vec<String> = changes
            .iter()
            .filter(|c| c.action != Action::None)
            .map(|c| {
                let what = match c.action {
                    Action::Conflict => format!(
                        "conflict, left alone: {}",
                        c.reason.as_deref().unwrap_or_default()
                    ),
                    Action::Error => {
                        format!("error: {}", c.reason.as_deref().unwrap_or_default())
                    }
                    Action::Delete => {
                        format!("deleted {}", c.from.as_deref().unwrap_or_default())
                    }
                    _ => format!(
                        "{} -> {}",
                        c.from.as_deref().unwrap_or("(none)"),
                        c.to.as_deref().unwrap_or_default()
                    ),
                };
                format!("• `{}` ({}): {what}", c.name, c.provider)
            })
            .collect();
        let text = format!(
            ":globe_with_meridians: `{cluster}` DNS\n{}",
            lines.join("\n")
        );
        self.notifier.send_or_warn(&text).await;
        let dims = [("Cluster", cluster)];
        let data = vec![
            datum("RecordChanges", written as f64, StandardUnit::Count, &dims),
            datum(
                "RecordConflicts",
                conflicts as f64,
                StandardUnit::Count,
                &dims,
            ),
        ];
        metrics::put_or_warn(
            &self.cloudwatch,
            self.config.metrics.cloudwatch,
            METRICS_NAMESPACE,
            data,
        )
        .await;
    }
}
