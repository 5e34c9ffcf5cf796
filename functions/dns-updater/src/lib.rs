//! dns-updater: Cloudflare and Route53 records follow each cluster's ingress load
//! balancer, and do what `on_destroy` says while the cluster is down.
//!
//! - `request`: what an invocation asks for;
//! - `target`: where the records should point (the ingress Service, ELB alias zones);
//! - `plan`: the pure decisions (ownership, create/update/delete/conflict);
//! - `cloudflare`, `route53`: the provider adapters;
//! - `handler`: the wiring of one invocation.

pub mod cloudflare;
pub mod handler;
pub mod plan;
pub mod request;
pub mod route53;
pub mod target;

pub use handler::Updater;
