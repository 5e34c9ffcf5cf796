//! spot-drainer: on a spot interruption, rebalance recommendation, instance state change
//! or scheduled retirement, cordons the node and evicts its pods gracefully before the
//! instance goes.
//!
//! - `event`: what the event asks for.
//! - `plan`: the pure drain plan (whether the node is Karpenter's to handle, tiers, skips,
//!   when to force).
//! - `drain`: the Kubernetes adapter that cordons and evicts.
//! - `report`: the typed answers (a drained node's is the `Node Drained` event).
//! - `handler`: node lookup, the drain lease, the report.

pub mod drain;
pub mod event;
pub mod handler;
pub mod plan;
pub mod report;

pub use handler::Drainer;
