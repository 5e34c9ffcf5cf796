//! The scheduler's handler: decode the request, then reconcile, plan, override or report.

use std::sync::Arc;
use std::time::Duration;

use fleet_shared::aws::SdkConfig;
use fleet_shared::bus::EventPublisher;
use fleet_shared::config::{ClusterConfig, FleetConfig};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::place::{PerPlace, Places};
use fleet_shared::runner::{respond, Invocation};
use fleet_shared::state::StateStore;
use fleet_shared::{FleetError, Result};
use jiff::ToSpan;
use serde_json::Value;

pub use crate::answer::{Outcome, StepResult};
use crate::eks::Eks;
use crate::request::{self, Request};

/// Clusters reconciled at once in one place (account and region): enough to finish a
/// few hundred clusters there well inside a tick, few enough to stay under EKS's API
/// rate limits (which are per account and region). Places go at once, each with its own
/// slots: a region answering only errors or timeouts holds its own, not the others'.
pub(crate) const CONCURRENCY: usize = 16;
/// Stop starting work this long before Lambda's deadline.
pub(crate) const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// How far ahead a plan looks for the next change of desired state.
pub(crate) const HORIZON_DAYS: i64 = 40;

pub struct Scheduler {
    pub config: Arc<FleetConfig>,
    /// This fleet's name: the `fleet:managed-by` value it creates and acts on.
    pub stack: String,
    /// The clients of each place (account and region) a cluster or network lives in.
    pub aws: PerPlace<PlaceClients>,
    pub store: StateStore,
    pub bus: EventPublisher,
    pub notifier: Notifier,
    /// Answers documents that carry `reply_to` (Slack `response_url`s).
    pub responder: fleet_shared::notify::Responder,
    pub kube: Arc<KubeConnector>,
    /// Bootstrap manifests (`s3://`), read with the hub's credentials.
    pub s3: aws_sdk_s3::Client,
    /// `bootstrap_secrets` read from the hub's Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// `bootstrap_secrets` read from the hub's SSM.
    pub ssm: aws_sdk_ssm::Client,
    /// One trust policy rewrite at a time: two clusters of one tick sharing an IRSA role
    /// would otherwise each write the policy they read, and the last write would undo
    /// the first.
    pub irsa_lock: Arc<tokio::sync::Mutex<()>>,
}

/// The AWS clients of one place: what a cluster or a network is made of lives in its own
/// account and region.
pub struct PlaceClients {
    pub eks: Eks,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Karpenter's instances and launch templates (the evening's backstop), networks.
    pub ec2: aws_sdk_ec2::Client,
    /// IRSA: OIDC providers and the `irsa_roles`' trust.
    pub iam: crate::irsa::Iam,
}

/// Backoff after the n-th consecutive failure: 2, 4, 8, 16, then 30 minutes.
pub fn backoff(attempts: u32) -> jiff::Span {
    let minutes = 2i64.saturating_pow(attempts.clamp(1, 5)).min(30);
    minutes.minutes()
}

impl Scheduler {
    /// Wires the scheduler from the environment: config, secrets and clients, once.
    pub async fn from_cold_start() -> Result<Self> {
        let cold = fleet_shared::startup::cold_start().await?;
        let table = fleet_shared::startup::table_name()?;
        let notifier = cold.notifier().await?;
        let stack = fleet_shared::startup::stack_name()?;
        let places = cold
            .places(fleet_shared::place::SpokeRole::Scheduler)
            .await?;
        let kube = KubeConnector::from_env(places.clone());
        Ok(Scheduler::new(
            places,
            cold.config,
            stack,
            table,
            notifier,
            kube,
        ))
    }

    /// A scheduler acting as fleet `stack` (its `fleet:managed-by` value), its AWS clients
    /// built per place from `places` (the hub's for its table, bus and bootstrap), its records in the state table `table`, events on the config's
    /// `fleet.event_bus`, clusters' APIs reached through `kube`. The cold start, the tests
    /// and the bench all build it here.
    pub fn new(
        places: Arc<Places>,
        config: FleetConfig,
        stack: impl Into<String>,
        table: impl Into<String>,
        notifier: Notifier,
        kube: KubeConnector,
    ) -> Self {
        let stack = stack.into();
        let sdk = &places.hub().clone();
        let owner = stack.clone();
        Scheduler {
            aws: PerPlace::new(places, move |sdk: &SdkConfig| PlaceClients {
                eks: Eks::new(aws_sdk_eks::Client::new(sdk), owner.clone()),
                elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
                ec2: aws_sdk_ec2::Client::new(sdk),
                iam: crate::irsa::Iam::new(aws_sdk_iam::Client::new(sdk)),
            }),
            stack,
            kube: Arc::new(kube),
            s3: aws_sdk_s3::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            irsa_lock: Arc::default(),
            store: StateStore::new(aws_sdk_dynamodb::Client::new(sdk), table),
            bus: EventPublisher::new(
                aws_sdk_eventbridge::Client::new(sdk),
                config.fleet.event_bus.clone(),
            ),
            notifier,
            responder: fleet_shared::notify::Responder::from_env(),
            config: Arc::new(config),
        }
    }

    /// Serves one invocation: a tick, a plan, a status or an override; the answer is the
    /// matching type of [`crate::answer`] as JSON. A plan or status for one cluster
    /// (`"cluster"`) has only its row, and only its network's.
    ///
    /// # Errors
    /// A malformed request (bad request, naming the field), an unknown cluster, an
    /// override in the past or on a protected cluster; the state table failing before a
    /// tick could begin. A cluster's own failure is in its outcome, not an error.
    ///
    /// A document with `reply_to` (see [`request::ReplyTo`]) also has its answer, or its
    /// error, posted there for Slack ([`crate::reply`]); a failed post is logged only.
    /// A refusal posted there is answered `{"refused": "<why>"}`, not an error.
    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        let reply_to = request::reply_to(&event).ok().flatten();
        let (request, answer) = match request::parse(&event) {
            Ok(r) => (Some(r.clone()), self.serve(r, &inv).await),
            Err(e) => (None, Err(e)),
        };
        let Some(to) = reply_to else {
            return answer;
        };
        let message = crate::reply::message(&self.config, request.as_ref(), &answer, &to);
        if let Err(e) = self.responder.post(&to.url, &message).await {
            tracing::warn!(error = %e, "the reply to Slack failed");
            return answer;
        }
        match answer {
            // The person has the refusal in Slack: the invocation is not a failure (no
            // Errors alarm, no retry of an async invocation, no dead letter).
            Err(e @ FleetError::BadRequest { .. }) => {
                Ok(serde_json::json!({"refused": e.to_string()}))
            }
            other => other,
        }
    }

    async fn serve(&self, request: Request, inv: &Invocation) -> Result<Value> {
        let inv = inv.clone();
        match request {
            Request::Reconcile => respond(self.reconcile_all(&inv).await?),
            Request::ReconcileOne { cluster } => {
                let c = self.cluster(&cluster)?;
                respond(self.reconcile_one(c, &inv).await)
            }
            Request::Plan { at, cluster } => {
                respond(self.plan(at.unwrap_or(inv.now), cluster.as_deref()).await?)
            }
            Request::Override {
                cluster,
                desired,
                until,
                reason,
                not_after,
            } => {
                if let Some(t) = not_after.filter(|t| inv.now >= *t) {
                    return Err(FleetError::bad_request(
                        "not_after",
                        format!("it was asked for before {t}, which has passed (now is {}): nothing changed", inv.now),
                    ));
                }
                respond(
                    self.set_override(&inv, &cluster, desired, until, reason)
                        .await?,
                )
            }
            Request::Clear { cluster, reason } => {
                respond(self.clear_override(&inv, &cluster, reason).await?)
            }
            Request::Status { cluster } => respond(self.status(inv.now, cluster.as_deref()).await?),
        }
    }

    /// Every place's EKS calls go to `eks` (the tests' mocked or counted client); the
    /// other clients stay as built.
    pub fn use_eks(&mut self, eks: aws_sdk_eks::Client) {
        let places = self.aws.places().clone();
        let owner = self.stack.clone();
        self.aws = PerPlace::new(places, move |sdk: &SdkConfig| PlaceClients {
            eks: Eks::new(eks.clone(), owner.clone()),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            iam: crate::irsa::Iam::new(aws_sdk_iam::Client::new(sdk)),
        });
    }

    /// `work` for every cluster with its `input` (in config order), at most
    /// [`CONCURRENCY`] at once per place, every place at once; the results in config
    /// order.
    pub(crate) async fn each_cluster<'a, I, T, F, Fut>(&'a self, inputs: Vec<I>, work: F) -> Vec<T>
    where
        F: Fn(&'a ClusterConfig, I) -> Fut,
        Fut: std::future::Future<Output = T> + 'a,
    {
        use futures::stream::{self, StreamExt};
        let mut by_place: std::collections::BTreeMap<_, Vec<_>> = Default::default();
        for (i, (c, input)) in self.config.clusters.iter().zip(inputs).enumerate() {
            by_place
                .entry(self.config.place(c))
                .or_default()
                .push((i, c, input));
        }
        let work = &work;
        let places = by_place.into_values().map(|items| {
            stream::iter(items)
                .map(|(i, c, input)| async move { (i, work(c, input).await) })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
        });
        let mut done: Vec<(usize, T)> = futures::future::join_all(places)
            .await
            .into_iter()
            .flatten()
            .collect();
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, t)| t).collect()
    }

    /// The clients of the place cluster `c` lives in.
    pub(crate) fn at(&self, c: &ClusterConfig) -> Arc<PlaceClients> {
        self.aws.at(&self.config.place(c))
    }

    pub(crate) fn cluster(&self, name: &str) -> Result<&ClusterConfig> {
        self.config.cluster(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .config
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            FleetError::bad_request(
                "cluster",
                format!(
                    "unknown cluster `{name}`: configured are {}",
                    known.join(", ")
                ),
            )
        })
    }
}

impl fleet_shared::runner::Function for Scheduler {
    async fn cold_start() -> Result<Self> {
        Scheduler::from_cold_start().await
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        Scheduler::handle(self, event, inv).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        let minutes = |n| backoff(n).get_minutes();
        assert_eq!(minutes(1), 2);
        assert_eq!(minutes(2), 4);
        assert_eq!(minutes(4), 16);
        assert_eq!(minutes(5), 30);
        assert_eq!(minutes(50), 30);
    }
}
