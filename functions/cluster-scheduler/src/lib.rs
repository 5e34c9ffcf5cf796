//! cluster-scheduler: a re-entrant reconciler that rebuilds EKS clusters in the morning
//! and destroys (or scales to zero) them in the evening.
//!
//! - `request`: what an invocation asks for.
//! - `observed`, `step`: the reconciler's input (what was observed) and output (a step);
//! - `reconcile`: the pure decision of the next step.
//! - `eks`: the EKS adapter that observes and acts.
//! - `answer`: the typed answers (outcomes, plan, status, overrides);
//! - `handler`: the cold start and the dispatch of a request;
//! - `reply`: an answer as a Slack message, for documents that carry `reply_to`;
//! - `notices`: the pre-shutdown notices a tick posts to Slack;
//! - `tick`: one reconcile tick over every cluster (records, backoff, failures);
//! - `execute`: carries out one step and announces finished transitions;
//! - `queries`: plan, status and overrides;
//! - `teardown`, `bootstrap`: the Kubernetes side of the evening and the morning;
//! - `ready`: whether `ready_when`'s objects are ready;
//! - `irsa`: IRSA trust moved to each new cluster's OIDC issuer (IAM).
//! - `karpenter_steps`: the Karpenter part of an evening and a morning (pure);
//! - `karpenter_api`: Karpenter's objects (Kubernetes) and instances (EC2), read and acted on.
//! - `network_steps`: a `[[network]]`'s NAT gateways and routes, morning and evening (pure);
//! - `network_api`: EC2's side of a network, read and acted on;
//! - `network`: a tick's networks, before the clusters that need them.

pub mod answer;
pub mod bootstrap;
pub mod eks;
pub mod execute;
pub mod handler;
pub mod irsa;
pub mod karpenter_api;
pub mod karpenter_steps;
pub mod network;
pub mod network_api;
pub mod network_steps;
pub mod notices;
pub mod observed;
pub mod queries;
pub mod ready;
pub mod reconcile;
pub mod reply;
pub mod request;
pub mod step;
pub mod teardown;
pub mod tick;

pub use handler::Scheduler;
