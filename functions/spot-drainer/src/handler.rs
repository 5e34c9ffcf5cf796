//! The drainer's handler: decode the event, find the node among the fleet's clusters,
//! take the drain lease, cordon, evict, report.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_cloudwatch::types::StandardUnit;
use fleet_shared::bus::EventPublisher;
use fleet_shared::config::{ClusterConfig, FleetConfig, InterruptionHandler, RebalanceAction};
use fleet_shared::events::{DrainStatus, NodeDrained, RefusedPod, SkippedPod};
use fleet_shared::kube::{ClusterAccess, KubeConnector};
use fleet_shared::metrics::{self, datum};
use fleet_shared::notify::Notifier;
use fleet_shared::place::{PerPlace, Places};
use fleet_shared::runner::Invocation;
use fleet_shared::state::StateStore;
use fleet_shared::{FleetError, Result};
use jiff::ToSpan;
use k8s_openapi::api::core::v1::Node;
use serde_json::Value;

use crate::drain::{self, Tally};
use crate::event::{self, DrainRequest, Origin, Request};
use crate::plan::{self, NodeAction};
use crate::report::{Answer, DryRun, InstanceReport, KarpenterOwned, Several};

/// CloudWatch namespace of the drain metrics.
pub const METRICS_NAMESPACE: &str = "Fleet/SpotDrainer";
/// Leave this much of the invocation's own time for reporting.
const REPORT_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a finished drain of a node without a deadline keeps later deliveries out.
const NO_DEADLINE_DEDUP_MINUTES: i64 = 30;

pub struct Drainer {
    pub config: Arc<FleetConfig>,
    /// EKS of each place a cluster lives in.
    pub eks: PerPlace<aws_sdk_eks::Client>,
    pub kube: Arc<KubeConnector>,
    pub store: StateStore,
    pub bus: EventPublisher,
    pub notifier: Notifier,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

/// Where an instance runs.
struct Found {
    cluster: String,
    rebalance: RebalanceAction,
    /// `[cluster.karpenter] interruption`; `None` without `[cluster.karpenter]`.
    interruption: Option<InterruptionHandler>,
    client: kube::Client,
    node: Node,
}

impl Drainer {
    pub async fn from_cold_start() -> Result<Self> {
        let cold = fleet_shared::startup::cold_start().await?;
        let table = fleet_shared::startup::table_name()?;
        let notifier = cold.notifier().await?;
        let places = cold.places(fleet_shared::place::SpokeRole::Drainer).await?;
        let kube = KubeConnector::from_env(places.clone());
        Ok(Drainer::new(places, cold.config, table, notifier, kube))
    }

    /// A drainer reaching each cluster's EKS through `places` (its table, bus and metrics
    /// the hub's), its leases in the state table
    /// `table`, reports on the config's `fleet.event_bus`, clusters' APIs reached through
    /// `kube`. The cold start and the tests build it here.
    pub fn new(
        places: Arc<Places>,
        config: FleetConfig,
        table: impl Into<String>,
        notifier: Notifier,
        kube: KubeConnector,
    ) -> Self {
        let sdk = &places.hub().clone();
        Drainer {
            eks: PerPlace::new(places, aws_sdk_eks::Client::new),
            kube: Arc::new(kube),
            store: StateStore::new(aws_sdk_dynamodb::Client::new(sdk), table),
            bus: EventPublisher::new(
                aws_sdk_eventbridge::Client::new(sdk),
                config.fleet.event_bus.clone(),
            ),
            notifier,
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            config: Arc::new(config),
        }
    }

    /// Serves one invocation; the answer is an [`Answer`] as JSON.
    ///
    /// # Errors
    /// A malformed event (bad request, naming the field), or a drain that failed (the
    /// invocation fails so that EventBridge retries; finished drains stay done).
    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        let answer = self.answer(&event, &inv).await?;
        fleet_shared::runner::respond(answer)
    }

    async fn answer(&self, event: &Value, inv: &Invocation) -> Result<Answer> {
        match event::parse(event, inv.now)? {
            Request::Ignore { reason } => {
                tracing::info!(%reason, "ignored");
                Ok(Answer::Ignored { reason })
            }
            Request::Drain(req) => {
                // Every instance gets its drain even when another fails; a failure then
                // fails the invocation so that EventBridge retries, and the retry finds
                // the finished ones done (their leases) and drains only the rest.
                let mut reports = Vec::new();
                let mut failures = Vec::new();
                for iid in &req.instance_ids {
                    match self.drain_instance(&req, iid, inv).await {
                        Ok(r) => reports.push(r),
                        Err(e) => failures.push((iid.clone(), e)),
                    }
                }
                if failures.len() == 1 && req.instance_ids.len() == 1 {
                    return Err(failures.remove(0).1);
                }
                if !failures.is_empty() {
                    let what: Vec<String> =
                        failures.iter().map(|(i, e)| format!("{i}: {e}")).collect();
                    return Err(FleetError::Internal(format!(
                        "drains failed: {}",
                        what.join("; ")
                    )));
                }
                // One instance and nothing skipped (every event but some of Health's):
                // its report is the response.
                if reports.len() == 1 && req.skipped_entities.is_empty() {
                    return Ok(Answer::One(reports.remove(0)));
                }
                Ok(Answer::Several(Several {
                    instances: reports,
                    event: req.kind,
                    event_type_code: req.event_type_code,
                    skipped_entities: req.skipped_entities,
                }))
            }
        }
    }

    /// Searches the fleet's active clusters in `origin`'s account and region (all of
    /// them without one; the hub's clusters only for events of `hub_account_id` when it
    /// is known, as in Lambda) for the node of `instance_id`. A cluster that cannot be asked
    /// (its spoke unreachable, its API down) does not stop the search; when the node is
    /// found nowhere else, the first such error is the answer (EventBridge retries), not
    /// "not ours" (which would drop the drain).
    async fn find(
        &self,
        instance_id: &str,
        origin: Option<&Origin>,
        hub_account_id: Option<&str>,
    ) -> Result<Option<Found>> {
        let clusters: Vec<&ClusterConfig> = match origin {
            Some(o) => self
                .config
                .clusters_at(&o.account, &o.region, hub_account_id)
                .collect(),
            None => self.config.clusters.iter().collect(),
        };
        let mut first_error = None;
        for c in clusters {
            let place = self.config.place(c);
            let eks = self.eks.at(&place);
            let looked = async {
                let Some(access) = ClusterAccess::of_active(&eks, c.eks_name(), &place).await?
                else {
                    return Ok(None);
                };
                let client = self.kube.client(&access).await?;
                Ok::<_, FleetError>(
                    drain::find_node(&client, instance_id)
                        .await?
                        .map(|node| (client, node)),
                )
            };
            match looked.await {
                Ok(Some((client, node))) => {
                    return Ok(Some(Found {
                        cluster: c.name.clone(),
                        rebalance: c.rebalance,
                        interruption: c.karpenter.as_ref().map(|k| k.interruption),
                        client,
                        node,
                    }))
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(cluster = %c.name, error = %e, instance_id, "looking for the node failed; the other clusters are searched");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    async fn drain_instance(
        &self,
        req: &DrainRequest,
        instance_id: &str,
        inv: &Invocation,
    ) -> Result<InstanceReport> {
        let started = Instant::now();
        let Some(found) = self
            .find(instance_id, req.origin.as_ref(), inv.account_id.as_deref())
            .await?
        else {
            // Acknowledged, not an error: an error would make EventBridge retry forever.
            tracing::info!(
                instance_id,
                event = req.kind.as_str(),
                "instance is not a node of any fleet cluster; nothing to do"
            );
            return Ok(InstanceReport::NotOurs {
                instance_id: instance_id.to_string(),
                event: req.kind,
            });
        };
        let node_name = found.node.metadata.name.clone().unwrap_or_default();
        let cordon_only = match plan::node_action(
            req.kind,
            found.rebalance,
            found.interruption,
            &drain::labels(&found.node),
        ) {
            NodeAction::KarpenterOwned { nodepool } => {
                // No lease, no cordon, no report on the bus: Karpenter drains the node
                // and launches its replacement.
                tracing::info!(
                    instance_id,
                    node = %node_name,
                    %nodepool,
                    event = req.kind.as_str(),
                    "a Karpenter node: left to Karpenter's interruption queue"
                );
                return Ok(InstanceReport::KarpenterOwned(KarpenterOwned {
                    node: node_name,
                    cluster: found.cluster,
                    instance_id: instance_id.to_string(),
                    event: req.kind,
                    nodepool,
                    reason: plan::KARPENTER_OWNED_REASON.to_string(),
                }));
            }
            NodeAction::Cordon => true,
            NodeAction::Drain => false,
        };
        if req.dry_run {
            let pods = drain::pods_on(&found.client, &node_name).await?;
            let p = plan::plan(&pods);
            return Ok(InstanceReport::DryRun(DryRun {
                node: node_name,
                cluster: found.cluster,
                instance_id: instance_id.to_string(),
                event: req.kind,
                would_cordon: true,
                would_evict: if cordon_only {
                    vec![]
                } else {
                    p.tiers
                        .iter()
                        .flatten()
                        .map(plan::Target::qualified)
                        .collect()
                },
                skipped: skipped_pods(&p.skipped),
            }));
        }
        // The invocation's own end, less time to report: a drain never runs past it.
        let budget = inv.budget.less(REPORT_MARGIN);
        let lease = format!("drain#{instance_id}");
        // The owner is this invocation: a racing delivery of the same event, or a weaker
        // one, is a duplicate; a stronger event takes the lease over (a spot warning after
        // a cordon-only rebalance drains); a retry after this one failed takes it too (it
        // is released). Held until the budget ends, in the decision time others compare with.
        let urgency = req.urgency(cordon_only);
        if !self
            .store
            .acquire_ranked_lease(
                &lease,
                &inv.request_id,
                inv.decision_time(budget.ends()),
                inv.now,
                urgency as u8,
            )
            .await?
        {
            tracing::info!(instance_id, event_id = %req.event_id, "a drain of this instance is already under way or done");
            return Ok(InstanceReport::Duplicate {
                instance_id: instance_id.to_string(),
                event: req.kind,
            });
        }
        let drained = async {
            drain::cordon(&found.client, &found.node, req.kind).await?;
            let cordon_ms = started.elapsed().as_millis() as u64;
            let tally = if cordon_only {
                Tally::default()
            } else {
                let pods = drain::pods_on(&found.client, &node_name).await?;
                // The instance's end (decision time, from the event) becomes the real
                // instant the drain works against, never past the budget.
                let termination = req.deadline.map(|d| inv.real_instant(d).min(budget.ends()));
                drain::evict_all(&found.client, plan::plan(&pods), termination, budget.ends()).await
            };
            Ok::<_, FleetError>((cordon_ms, tally))
        }
        .await;
        let (cordon_ms, tally) = match drained {
            Ok(d) => d,
            Err(e) => {
                // Lambda retries the event: let that retry drain rather than find the
                // lease held and call itself a duplicate.
                if let Err(release) = self.store.release_lease(&lease, &inv.request_id).await {
                    tracing::warn!(error = %release, "releasing the drain lease failed; it expires at its deadline");
                }
                return Err(e);
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let report = NodeDrained {
            status: if cordon_only {
                DrainStatus::Cordoned
            } else {
                DrainStatus::Drained
            },
            node: node_name,
            cluster: found.cluster,
            instance_id: instance_id.to_string(),
            event: req.kind,
            evicted: tally.evicted,
            forced: tally.forced,
            skipped: skipped_pods(&tally.skipped),
            pending: tally.pending.clone(),
            refused: tally
                .refused
                .iter()
                .map(|r| RefusedPod {
                    pod: r.pod.clone(),
                    reason: r.reason.clone(),
                })
                .collect(),
            cordon_ms,
            duration_ms,
            event_type_code: req.event_type_code.clone(),
        };
        let record = serde_json::to_string(&report).unwrap_or_default();
        let keep_until = req.deadline.unwrap_or_else(|| {
            let done = inv.decision_now();
            done.checked_add(NO_DEADLINE_DEDUP_MINUTES.minutes())
                .unwrap_or(done)
        });
        // The drain is done whatever happens to this write: at worst the lease expires
        // at its deadline instead of being kept as a record of the drain.
        if let Err(e) = self
            .store
            .complete_lease(&lease, &inv.request_id, keep_until, &record)
            .await
        {
            tracing::warn!(error = %e, "recording the finished drain failed");
        }
        self.announce(&report, &tally).await;
        Ok(InstanceReport::Done(report))
    }

    /// Bus event, Slack and metrics: best effort, logged when they fail; the drain is done.
    async fn announce(&self, report: &NodeDrained, tally: &Tally) {
        let (cluster, duration_ms) = (report.cluster.as_str(), report.duration_ms);
        if let Err(e) = self.bus.publish(report).await {
            tracing::error!(error = %e, "publishing Node Drained failed");
        }
        let mut text = format!(
            ":ocean: `{}` node `{}` ({}, {}): {} evicted, {} forced, {} pending, {} ms",
            cluster,
            report.node,
            report.instance_id,
            report.event.as_str(),
            tally.evicted,
            tally.forced,
            tally.pending.len(),
            duration_ms
        );
        for r in &tally.refused {
            text.push_str(&format!(
                "\n:warning: `{}` not evicted: {}",
                r.pod, r.reason
            ));
        }
        self.notifier.send_or_warn(&text).await;
        let dims = [("Cluster", cluster)];
        let data = vec![
            datum(
                "DrainDuration",
                duration_ms as f64,
                StandardUnit::Milliseconds,
                &dims,
            ),
            datum(
                "PodsEvicted",
                tally.evicted as f64,
                StandardUnit::Count,
                &dims,
            ),
            datum(
                "PodsForced",
                tally.forced as f64,
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

/// The plan's skips as the report gives them.
fn skipped_pods(skipped: &[plan::Skipped]) -> Vec<SkippedPod> {
    skipped
        .iter()
        .map(|s| SkippedPod {
            pod: s.pod.clone(),
            reason: s.reason.to_string(),
        })
        .collect()
}

impl fleet_shared::runner::Function for Drainer {
    async fn cold_start() -> Result<Self> {
        Drainer::from_cold_start().await
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        Drainer::handle(self, event, inv).await
    }
}
