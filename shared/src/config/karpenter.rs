//! `[cluster.karpenter]`: a cluster whose nodes are (also) launched by Karpenter.
//!
//! Karpenter's nodes are not in any nodegroup: deleting the nodegroups and the control
//! plane leaves them running and billing (karpenter-provider-aws #1955, #1134), and
//! scaling the nodegroups to zero evicts the controller while its nodes stay up. The
//! scheduler caps the NodePools, deletes their NodeClaims, waits for Karpenter to drain
//! them and only then takes the nodegroups that run the controller down (README,
//! "Karpenter").

use serde::Deserialize;

use super::Blueprint;
use crate::error::{FleetError, Result};

/// `[cluster.karpenter]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KarpenterConfig {
    /// Blueprint nodegroups that run the Karpenter controller (and GitOps): taken down
    /// last in the evening, brought up first in the morning.
    #[serde(default)]
    pub host_nodegroups: Vec<String>,
    /// The NodePools (`karpenter.sh/v1`) the fleet manages; empty: every NodePool.
    #[serde(default)]
    pub nodepools: Vec<String>,
    /// How long (minutes) an evening waits, across ticks, for deleted NodeClaims to go
    /// before the backstop terminates what is left of their instances (default 10).
    #[serde(default = "default_drain_minutes")]
    pub drain_minutes: u32,
    /// Who handles spot interruptions, Health scheduled changes and state changes for
    /// Karpenter's nodes.
    #[serde(default)]
    pub interruption: InterruptionHandler,
}

fn default_drain_minutes() -> u32 {
    10
}

impl Default for KarpenterConfig {
    /// What a cluster whose `[cluster.karpenter]` was removed while NodePool limits were
    /// still recorded is restored with: every NodePool, no host nodegroups.
    fn default() -> Self {
        KarpenterConfig {
            host_nodegroups: vec![],
            nodepools: vec![],
            drain_minutes: default_drain_minutes(),
            interruption: InterruptionHandler::default(),
        }
    }
}

/// `interruption`: who acts on spot warnings for nodes Karpenter launched. AWS advises
/// against two handlers for the same warning (both cordon, both evict, Karpenter also
/// launches a replacement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterruptionHandler {
    /// Karpenter's own interruption queue (its `settings.interruptionQueue`): the
    /// spot-drainer acknowledges such events for Karpenter's nodes as `karpenter-owned`
    /// and changes nothing. Rebalance recommendations, which Karpenter does not act on
    /// (karpenter-provider-aws #2813), still follow the cluster's `rebalance`.
    #[default]
    Karpenter,
    /// The spot-drainer drains Karpenter's nodes like any other (Karpenter's queue is not
    /// configured).
    Fleet,
}

impl KarpenterConfig {
    /// Whether the fleet manages the NodePool `name` (`nodepools`, empty = all).
    pub fn manages(&self, nodepool: &str) -> bool {
        self.nodepools.is_empty() || self.nodepools.iter().any(|n| n == nodepool)
    }

    /// Whether `nodegroup` runs the controller (`host_nodegroups`).
    pub fn is_host(&self, nodegroup: &str) -> bool {
        self.host_nodegroups.iter().any(|n| n == nodegroup)
    }

    pub(super) fn validate(&self, key: &str, blueprint: &Blueprint) -> Result<()> {
        let key = |k: &str| format!("{key}.{k}");
        for (i, host) in self.host_nodegroups.iter().enumerate() {
            if !blueprint.nodegroups.iter().any(|n| &n.name == host) {
                return Err(FleetError::config(
                    key(&format!("host_nodegroups[{i}]")),
                    format!("`{host}` is not a nodegroup of the blueprint ([[cluster.blueprint.nodegroup]] names)"),
                ));
            }
            if self.host_nodegroups[..i].contains(host) {
                return Err(FleetError::config(
                    key(&format!("host_nodegroups[{i}]")),
                    format!("`{host}` is listed twice"),
                ));
            }
        }
        for (i, np) in self.nodepools.iter().enumerate() {
            if !is_object_name(np) {
                return Err(FleetError::config(
                    key(&format!("nodepools[{i}]")),
                    format!("`{np}` is not a NodePool name (a DNS subdomain: lowercase letters, digits, - and .)"),
                ));
            }
            if self.nodepools[..i].contains(np) {
                return Err(FleetError::config(
                    key(&format!("nodepools[{i}]")),
                    format!("`{np}` is listed twice"),
                ));
            }
        }
        if self.drain_minutes > 24 * 60 {
            return Err(FleetError::config(
                key("drain_minutes"),
                "at most 1440 (a day): the backstop must run the same evening",
            ));
        }
        Ok(())
    }
}

/// A Kubernetes object name (RFC 1123 subdomain, at most 253 characters).
fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert!(is_object_name("spot"));
        assert!(is_object_name("on-demand.a"));
        assert!(!is_object_name("Spot"));
        assert!(!is_object_name("-spot"));
        assert!(!is_object_name(""));
    }

    #[test]
    fn empty_nodepools_manage_all() {
        let k = KarpenterConfig {
            host_nodegroups: vec![],
            nodepools: vec![],
            drain_minutes: 10,
            interruption: InterruptionHandler::Karpenter,
        };
        assert!(k.manages("anything"));
        let k = KarpenterConfig {
            nodepools: vec!["spot".into()],
            ..k
        };
        assert!(k.manages("spot"));
        assert!(!k.manages("gpu"));
    }
}
