//! The Karpenter part of an evening and a morning (`[cluster.karpenter]`): which step
//! comes next for the NodePools, NodeClaims, EC2NodeClasses and instances Karpenter
//! launched. Pure: the reconciler ([`crate::reconcile`]) asks, the handler acts.
//!
//! The evening, in both modes (README, "Karpenter"): NodePools capped (their limits
//! recorded first) so nothing new launches; NodeClaims deleted so Karpenter drains their
//! nodes; a wait of up to `drain_minutes` while the controller runs; in destroy mode the
//! EC2NodeClasses deleted while the controller still runs (its finalizer removes their
//! instance profiles and launch templates); then the backstop terminates whatever
//! instances are left and deletes the launch templates. Only then do the nodegroups that
//! run the controller go down. GitOps putting a limit back is undone on every tick
//! until then (the cap is checked first, every tick).

use fleet_shared::config::{KarpenterConfig, Mode};
use fleet_shared::state::model::RecordedState;
use jiff::{Timestamp, ToSpan};

use crate::observed::{KarpenterObjects, KarpenterView, ObservedCluster};
use crate::step::Step;

/// What the Karpenter part of an evening says.
#[derive(Debug, Clone, PartialEq)]
pub enum Evening {
    /// Take this step (or wait) first.
    Act(Step),
    /// Nothing of Karpenter's is left to act on; the notes say what it left behind.
    Done(Vec<String>),
}

/// The limits recorded for this incarnation, if any.
fn recorded_for<'a>(
    recorded: &'a RecordedState,
    c: &ObservedCluster,
) -> Option<&'a std::collections::BTreeMap<String, Option<serde_json::Value>>> {
    recorded
        .nodepool_limits
        .as_ref()
        .filter(|r| r.generation == c.generation)
        .map(|r| &r.limits)
}

/// The cap, taken with `rest` (the evening's next step) in the same tick: record every
/// managed NodePool's limits not yet recorded, cap those not capped. `rest` alone when all
/// are recorded and capped (or the API could not say).
pub fn cap_then(recorded: &RecordedState, c: &ObservedCluster, rest: Step) -> Step {
    let Some(view) = &c.karpenter else {
        return rest;
    };
    match cap(recorded, c, view) {
        Some((record, cap)) => Step::CapNodePools {
            record,
            cap,
            then: (rest != Step::Steady).then(|| Box::new(rest)),
        },
        None => rest,
    }
}

/// What to record and what to cap; `None` when nothing.
#[allow(clippy::type_complexity)]
fn cap(
    recorded: &RecordedState,
    c: &ObservedCluster,
    view: &KarpenterView,
) -> Option<(Vec<(String, Option<serde_json::Value>)>, Vec<String>)> {
    let objects = view.objects.as_ref().ok()?;
    let known = recorded_for(recorded, c);
    let record: Vec<(String, Option<serde_json::Value>)> = objects
        .nodepools
        .iter()
        .filter(|np| !known.is_some_and(|k| k.contains_key(&np.name)))
        .map(|np| (np.name.clone(), np.limits.clone()))
        .collect();
    let cap: Vec<String> = objects
        .nodepools
        .iter()
        .filter(|np| !np.is_capped())
        .map(|np| np.name.clone())
        .collect();
    (!record.is_empty() || !cap.is_empty()).then_some((record, cap))
}

/// The evening after the cap: NodeClaims deleted and waited for, EC2NodeClasses (destroy
/// mode), then the backstop. Every wait ends `drain_minutes` after the evening's Karpenter
/// part began ([`RecordedState::karpenter_drain_started`], marked by the tick); from then
/// on nothing is deleted again and the backstop takes what is left. `now` is the decision
/// instant.
pub fn drain(
    mode: Mode,
    k: &KarpenterConfig,
    recorded: &RecordedState,
    view: &KarpenterView,
    now: Timestamp,
) -> Evening {
    let mut notes = Vec::new();
    let deadline = recorded.karpenter_drain_started.map(|at| {
        at.checked_add((i64::from(k.drain_minutes)).minutes())
            .unwrap_or(Timestamp::MAX)
    });
    let expired = deadline.is_some_and(|d| now >= d);
    let until = deadline.map_or_else(String::new, |d| format!(" (waiting until {d})"));
    match &view.objects {
        Ok(objects) => {
            if let Some(step) = kubernetes_side(mode, k, objects, expired, &until, &mut notes) {
                return Evening::Act(step);
            }
        }
        // A tick's timeout must not skip the drain: wait, within the same bound.
        Err(why) if !expired => {
            return Evening::Act(Step::Wait(format!(
                "Karpenter's objects could not be read ({why}){until}"
            )))
        }
        Err(why) => notes.push(format!(
            "Karpenter's objects could not be read ({why}) until the {}-minute wait ended; the backstop terminates its instances",
            k.drain_minutes
        )),
    }
    let instances: Vec<String> = view.instances.iter().map(|i| i.id.clone()).collect();
    if instances.is_empty() && view.launch_templates.is_empty() {
        return Evening::Done(notes);
    }
    if !instances.is_empty() {
        notes.push(format!(
            "{} Karpenter instance(s) still running after the drain: terminated by the backstop",
            instances.len()
        ));
    }
    Evening::Act(Step::TerminateKarpenterNodes {
        instances,
        launch_templates: view.launch_templates.clone(),
        notes,
    })
}

/// NodeClaims, then EC2NodeClasses: the step to take, or `None` to go on to the
/// backstop (with `notes` on what was left).
fn kubernetes_side(
    mode: Mode,
    k: &KarpenterConfig,
    objects: &KarpenterObjects,
    expired: bool,
    until: &str,
    notes: &mut Vec<String>,
) -> Option<Step> {
    // Without a running controller nobody drains or finalizes: waiting would only keep
    // the instances billing. A controller the fleet cannot find (its Deployment labelled
    // otherwise) is assumed to run, within the wait's bound.
    let controller = objects.controller_available != Some(false);
    let live: Vec<String> = objects
        .nodeclaims
        .iter()
        .filter(|n| !n.deleting)
        .map(|n| n.name.clone())
        .collect();
    // Past the wait, deleting again (GitOps or a cap undone keeps making more) would only
    // hold the evening up: the backstop takes what is left.
    if !live.is_empty() && !expired {
        return Some(Step::DeleteNodeClaims(live));
    }
    let draining: Vec<&str> = objects.nodeclaims.iter().map(|n| n.name.as_str()).collect();
    if !draining.is_empty() {
        if controller && !expired {
            return Some(Step::Wait(format!(
                "Karpenter is draining {} NodeClaim(s): {}{until}",
                draining.len(),
                draining.join(", ")
            )));
        }
        notes.push(if controller {
            format!(
                "NodeClaims still there after {} minutes: {}",
                k.drain_minutes,
                draining.join(", ")
            )
        } else {
            format!(
                "NodeClaims left by a Karpenter controller that is not running: {}",
                draining.join(", ")
            )
        });
    }
    if mode == Mode::Destroy {
        let classes: Vec<String> = objects
            .nodeclasses
            .iter()
            .filter(|c| !c.deleting)
            .map(|c| c.name.clone())
            .collect();
        if controller && !classes.is_empty() && !expired {
            return Some(Step::DeleteNodeClasses(classes));
        }
        let finalizing: Vec<&str> = objects
            .nodeclasses
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if !finalizing.is_empty() {
            if controller && !expired {
                return Some(Step::Wait(format!(
                    "Karpenter is finalizing EC2NodeClass(es) {} (their instance profiles and launch templates){until}",
                    finalizing.join(", ")
                )));
            }
            notes.push(format!(
                "EC2NodeClasses not finalized ({}): their instance profiles may be left behind (the cost report lists them)",
                finalizing.join(", ")
            ));
        }
    }
    None
}

/// The morning: put back the limits recorded for this incarnation once the controller is
/// available (a NodePool raised before its controller runs would only queue launches).
/// `None` when there is nothing to restore.
pub fn restore(recorded: &RecordedState, c: &ObservedCluster) -> Option<Step> {
    let limits = recorded_for(recorded, c)?;
    let Some(view) = &c.karpenter else {
        return Some(Step::Wait(
            "Karpenter's NodePools were not looked at yet".into(),
        ));
    };
    match &view.objects {
        Err(why) => Some(Step::Wait(format!(
            "cannot restore the NodePool limits yet: {why}"
        ))),
        // Only a controller known to be down is waited for (see `drain`).
        Ok(o) if o.controller_available == Some(false) => Some(Step::Wait(
            "waiting for the Karpenter controller to be available before restoring the NodePool limits".into(),
        )),
        Ok(_) => Some(Step::RestoreNodePoolLimits(
            limits.iter().map(|(n, l)| (n.clone(), l.clone())).collect(),
        )),
    }
}

/// Whether `nodegroup` runs the controller (it goes down last, comes up first).
pub fn is_host(k: Option<&KarpenterConfig>, nodegroup: &str) -> bool {
    k.is_some_and(|k| k.is_host(nodegroup))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{KarpenterInstance, NodeClaimView, NodeClassView, NodePoolView};
    use fleet_shared::config::InterruptionHandler;
    use fleet_shared::state::model::RecordedLimits;
    use serde_json::json;

    fn config() -> KarpenterConfig {
        KarpenterConfig {
            host_nodegroups: vec!["system".into()],
            nodepools: vec![],
            drain_minutes: 10,
            interruption: InterruptionHandler::Karpenter,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn cluster(view: KarpenterView) -> ObservedCluster {
        ObservedCluster {
            generation: "gen-1".into(),
            karpenter: Some(view),
            ..Default::default()
        }
    }

    fn pool(name: &str, limits: Option<serde_json::Value>) -> NodePoolView {
        NodePoolView {
            name: name.into(),
            limits,
        }
    }

    fn claim(name: &str, deleting: bool) -> NodeClaimView {
        NodeClaimView {
            name: name.into(),
            nodepool: "spot".into(),
            deleting,
        }
    }

    fn view(objects: KarpenterObjects) -> KarpenterView {
        KarpenterView {
            objects: Ok(objects),
            instances: vec![],
            launch_templates: vec![],
        }
    }

    fn recorded(
        limits: &[(&str, Option<serde_json::Value>)],
        deleted: Option<&str>,
    ) -> RecordedState {
        RecordedState {
            nodepool_limits: Some(RecordedLimits {
                generation: "gen-1".into(),
                limits: limits
                    .iter()
                    .map(|(n, l)| (n.to_string(), l.clone()))
                    .collect(),
            }),
            karpenter_drain_started: deleted.map(at),
            ..Default::default()
        }
    }

    #[test]
    fn cap_records_first_then_caps_what_is_not_capped() {
        let v = view(KarpenterObjects {
            nodepools: vec![
                pool("spot", Some(json!({"cpu": "100"}))),
                pool("on-demand", None),
            ],
            ..Default::default()
        });
        let c = cluster(v.clone());
        let step = cap(&RecordedState::default(), &c, &v);
        assert_eq!(
            step,
            Some((
                vec![
                    ("spot".into(), Some(json!({"cpu": "100"}))),
                    ("on-demand".into(), None)
                ],
                vec!["spot".into(), "on-demand".into()],
            ))
        );
    }

    #[test]
    fn a_limit_put_back_by_gitops_is_capped_again_but_never_recorded_again() {
        // Recorded 100 earlier; Flux re-applied 100: cap again, keep the first record.
        let v = view(KarpenterObjects {
            nodepools: vec![pool("spot", Some(json!({"cpu": "100"})))],
            ..Default::default()
        });
        let c = cluster(v.clone());
        let r = recorded(&[("spot", Some(json!({"cpu": "100"})))], None);
        assert_eq!(cap(&r, &c, &v), Some((vec![], vec!["spot".into()])));
        let capped = view(KarpenterObjects {
            nodepools: vec![pool("spot", Some(json!({"cpu": "0"})))],
            ..Default::default()
        });
        assert_eq!(cap(&r, &c, &capped), None);
    }

    #[test]
    fn limits_of_an_earlier_incarnation_are_recorded_anew() {
        let v = view(KarpenterObjects {
            nodepools: vec![pool("spot", Some(json!({"cpu": "0"})))],
            ..Default::default()
        });
        let mut c = cluster(v.clone());
        c.generation = "gen-2".into();
        let r = recorded(&[("spot", Some(json!({"cpu": "100"})))], None);
        assert_eq!(
            cap(&r, &c, &v),
            Some((vec![("spot".into(), Some(json!({"cpu": "0"})))], vec![]))
        );
    }

    #[test]
    fn nodeclaims_are_deleted_then_waited_for_until_the_deadline() {
        let k = config();
        let objects = |deleting| KarpenterObjects {
            nodeclaims: vec![claim("spot-abc", deleting)],
            controller_available: Some(true),
            ..Default::default()
        };
        let none = RecordedState::default();
        assert_eq!(
            drain(
                Mode::Scale,
                &k,
                &none,
                &view(objects(false)),
                at("2026-11-23T19:00:00Z")
            ),
            Evening::Act(Step::DeleteNodeClaims(vec!["spot-abc".into()]))
        );
        let r = recorded(&[], Some("2026-11-23T19:00:00Z"));
        let early = drain(
            Mode::Scale,
            &k,
            &r,
            &view(objects(true)),
            at("2026-11-23T19:09:00Z"),
        );
        assert!(
            matches!(early, Evening::Act(Step::Wait(ref w)) if w.contains("draining 1")),
            "{early:?}"
        );
        let mut late_view = view(objects(true));
        late_view.instances = vec![KarpenterInstance {
            id: "i-1".into(),
            nodepool: "spot".into(),
            state: "running".into(),
        }];
        match drain(Mode::Scale, &k, &r, &late_view, at("2026-11-23T19:10:00Z")) {
            Evening::Act(Step::TerminateKarpenterNodes {
                instances, notes, ..
            }) => {
                assert_eq!(instances, vec!["i-1".to_string()]);
                assert!(
                    notes
                        .iter()
                        .any(|n| n.contains("still there after 10 minutes")),
                    "{notes:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stopped_controller_is_not_waited_for() {
        let k = config();
        let mut v = view(KarpenterObjects {
            nodeclaims: vec![claim("spot-abc", true)],
            controller_available: Some(false),
            ..Default::default()
        });
        v.instances = vec![KarpenterInstance {
            id: "i-1".into(),
            nodepool: "spot".into(),
            state: "running".into(),
        }];
        let r = recorded(&[], Some("2026-11-23T19:00:00Z"));
        assert!(matches!(
            drain(Mode::Destroy, &k, &r, &v, at("2026-11-23T19:01:00Z")),
            Evening::Act(Step::TerminateKarpenterNodes { .. })
        ));
    }

    #[test]
    fn destroy_mode_deletes_nodeclasses_while_the_controller_runs() {
        let k = config();
        let objects = |deleting| KarpenterObjects {
            nodeclasses: vec![NodeClassView {
                name: "default".into(),
                deleting,
            }],
            controller_available: Some(true),
            ..Default::default()
        };
        let r = recorded(&[], Some("2026-11-23T19:00:00Z"));
        let now = at("2026-11-23T19:02:00Z");
        assert_eq!(
            drain(Mode::Destroy, &k, &r, &view(objects(false)), now),
            Evening::Act(Step::DeleteNodeClasses(vec!["default".into()]))
        );
        assert!(matches!(
            drain(Mode::Destroy, &k, &r, &view(objects(true)), now),
            Evening::Act(Step::Wait(_))
        ));
        // Scale mode keeps them: the morning needs them.
        assert_eq!(
            drain(Mode::Scale, &k, &r, &view(objects(false)), now),
            Evening::Done(vec![])
        );
    }

    #[test]
    fn an_unreachable_api_is_waited_for_then_the_backstop_goes_on() {
        let k = config();
        let v = KarpenterView {
            objects: Err("connection refused".into()),
            instances: vec![],
            launch_templates: vec!["lt-1".into()],
        };
        let r = recorded(&[], Some("2026-11-23T19:00:00Z"));
        assert!(matches!(
            drain(Mode::Destroy, &k, &r, &v, at("2026-11-23T19:05:00Z")),
            Evening::Act(Step::Wait(ref w)) if w.contains("connection refused")
        ));
        match drain(Mode::Destroy, &k, &r, &v, at("2026-11-23T19:10:00Z")) {
            Evening::Act(Step::TerminateKarpenterNodes {
                launch_templates,
                notes,
                ..
            }) => {
                assert_eq!(launch_templates, vec!["lt-1".to_string()]);
                assert!(notes[0].contains("connection refused"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn past_the_wait_nothing_is_deleted_again() {
        // GitOps re-creating EC2NodeClasses, NodeClaims launched while a cap was undone:
        // past the wait the backstop takes over instead of deleting forever.
        let k = config();
        let mut v = view(KarpenterObjects {
            nodeclaims: vec![claim("spot-new", false)],
            nodeclasses: vec![NodeClassView {
                name: "default".into(),
                deleting: false,
            }],
            controller_available: Some(true),
            ..Default::default()
        });
        v.instances = vec![KarpenterInstance {
            id: "i-2".into(),
            nodepool: "spot".into(),
            state: "running".into(),
        }];
        let r = recorded(&[], Some("2026-11-23T19:00:00Z"));
        assert!(matches!(
            drain(Mode::Destroy, &k, &r, &v, at("2026-11-23T19:10:00Z")),
            Evening::Act(Step::TerminateKarpenterNodes { .. })
        ));
    }

    #[test]
    fn a_controller_not_found_is_assumed_to_run() {
        // Its Deployment labelled otherwise: wait within the bound, delete the classes.
        let k = config();
        let objects = KarpenterObjects {
            nodeclaims: vec![claim("spot-abc", true)],
            controller_available: None,
            ..Default::default()
        };
        let r = recorded(&[], Some("2026-11-23T19:00:00Z"));
        assert!(matches!(
            drain(
                Mode::Destroy,
                &k,
                &r,
                &view(objects),
                at("2026-11-23T19:05:00Z")
            ),
            Evening::Act(Step::Wait(_))
        ));
    }

    #[test]
    fn the_morning_restores_once_the_controller_is_available() {
        let r = recorded(&[("spot", Some(json!({"cpu": "100"}))), ("od", None)], None);
        let objects = |available| KarpenterObjects {
            controller_available: Some(available),
            ..Default::default()
        };
        assert!(matches!(
            restore(&r, &cluster(view(objects(false)))),
            Some(Step::Wait(_))
        ));
        assert_eq!(
            restore(&r, &cluster(view(objects(true)))),
            Some(Step::RestoreNodePoolLimits(vec![
                ("od".into(), None),
                ("spot".into(), Some(json!({"cpu": "100"}))),
            ]))
        );
        // Another incarnation: nothing of this one's to restore.
        let mut other = cluster(view(objects(true)));
        other.generation = "gen-2".into();
        assert_eq!(restore(&r, &other), None);
        assert_eq!(
            restore(&RecordedState::default(), &cluster(view(objects(true)))),
            None
        );
    }
}
