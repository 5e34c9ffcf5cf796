//! dns-updater: Cloudflare and Route53 records follow each cluster's ingress load
//! balancer, and do what `on_destroy` says while the cluster is down.
//!
//! - `request`: what an invocation asks for;
//! - `target`: where the records should point (the load balancer address, ELB alias zones);
//! - `ingress`: the Kubernetes adapter that reads the ingress Service;
//! - `plan`: the pure decisions (ownership, create/update/delete/conflict);
//! - `cloudflare`, `route53`: the provider adapters;
//! - `report`: the typed answers;
//! - `apply`: one record written, and the changes announced;
//! - `handler`: the wiring of one invocation.

pub mod apply;
pub mod cloudflare;
pub mod handler;
pub mod ingress;
pub mod plan;
pub mod report;
pub mod request;
pub mod route53;
pub mod target;

pub use handler::Updater;
