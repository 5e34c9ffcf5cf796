//! Fakes of the APIs that cannot run here, one module each, every one serving on a
//! loopback port and recording what it received: the Kubernetes API ([`kube`]),
//! Cloudflare's v4 API ([`cloudflare`]), a Slack incoming webhook ([`slack`]), the Lambda
//! Runtime API ([`lambda`]), a Prometheus Pushgateway ([`pushgateway`]) and GitHub's
//! webhook-deliveries API ([`github`]). Beside them, a
//! controller that cannot run here either: Karpenter ([`karpenter`]), acting on the fake
//! Kubernetes API and on moto as karpenter-provider-aws does.

pub mod cloudflare;
pub mod github;
pub mod karpenter;
pub mod kube;
pub mod lambda;
pub mod pushgateway;
pub mod slack;
