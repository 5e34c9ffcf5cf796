//! cluster-scheduler: a re-entrant reconciler that rebuilds EKS clusters in the morning
//! and destroys (or scales to zero) them in the evening.
//!
//! - `request`: what an invocation asks for.
//! - `reconcile`: the pure decision of the next step.
//! - `eks`: the EKS adapter that observes and acts.
//! - `handler`: ties them to the state table, the bus and Slack.

pub mod bootstrap;
pub mod eks;
pub mod handler;
pub mod reconcile;
pub mod request;
pub mod teardown;

pub use handler::Scheduler;
