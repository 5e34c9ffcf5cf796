//! The pure core stays pure: the modules that make the decisions (schedule, reconciler,
//! DNS plan, drain plan, DORA metrics and normalizer, cost report, uptime and Karpenter's
//! leftovers) and the data
//! they take (the state and DORA models, the bus events) use no AWS SDK, no Kubernetes
//! client, no store and no adapter of their crate. Adapters produce and consume their
//! types; a decision that needs I/O gets its input read before.

use fleet_tests::workspace_root;

/// Every pure module, from the workspace root.
const PURE: [&str; 30] = [
    "shared/src/schedule.rs",
    "shared/src/schedule/uptime.rs",
    "shared/src/events.rs",
    "shared/src/state/model.rs",
    "shared/src/dora/model.rs",
    "functions/cluster-scheduler/src/reconcile.rs",
    "functions/cluster-scheduler/src/observed.rs",
    "functions/cluster-scheduler/src/step.rs",
    "functions/cluster-scheduler/src/karpenter_steps.rs",
    "functions/cluster-scheduler/src/network_steps.rs",
    "functions/dns-updater/src/plan.rs",
    "functions/dns-updater/src/plan/cloudflare.rs",
    "functions/dns-updater/src/plan/route53.rs",
    "functions/dns-updater/src/target.rs",
    "functions/dns-updater/src/report.rs",
    "functions/spot-drainer/src/plan.rs",
    "functions/spot-drainer/src/report.rs",
    "functions/dora-aggregator/src/metrics.rs",
    "functions/dora-webhook/src/normalize.rs",
    "functions/cost-reporter/src/report.rs",
    "functions/cost-reporter/src/inputs.rs",
    "functions/cost-reporter/src/uptime.rs",
    "functions/cost-reporter/src/versions.rs",
    "functions/cost-reporter/src/karpenter.rs",
    // What was asked (requests decoded, named field by field) and the typed answers.
    "functions/cluster-scheduler/src/request.rs",
    "functions/cluster-scheduler/src/answer.rs",
    "functions/cost-reporter/src/request.rs",
    "functions/dns-updater/src/request.rs",
    "functions/dora-aggregator/src/request.rs",
    "functions/spot-drainer/src/event.rs",
];

/// What a pure module may not name: SDKs, clients, stores, I/O runtimes, the clocks, the
/// file system and the environment, and the adapters of each crate. `k8s_openapi` (plain Kubernetes types) is allowed.
const FORBIDDEN: [&str; 37] = [
    "aws_sdk_",
    "aws_config",
    "kube::",
    "fleet_shared::kube",
    "reqwest",
    "tokio",
    "StateStore",
    "DoraStore",
    "EventPublisher",
    "Notifier",
    "crate::eks",
    "crate::teardown",
    "crate::bootstrap",
    "crate::karpenter_api",
    "crate::network_api",
    "crate::network::",
    "crate::handler",
    "crate::drain",
    "crate::ingress",
    "crate::cloudflare",
    "crate::route53",
    "crate::explorer",
    "crate::leftovers",
    "crate::apply",
    "crate::tick",
    "crate::execute",
    "crate::queries",
    "fleet_shared::metrics",
    "fleet_shared::startup",
    "fleet_shared::aws",
    "fleet_shared::runner",
    "Instant::now",
    "SystemTime::now",
    "Timestamp::now",
    "std::fs",
    "std::env",
    ".await",
];

/// Paths into `fleet_shared` that are stores, with the model beside each that is allowed.
const STORE_MODULES: [(&str, &str); 2] = [
    ("fleet_shared::state::", "fleet_shared::state::model::"),
    ("fleet_shared::dora::", "fleet_shared::dora::model::"),
];

/// The lines of `source` before its test module that name something a pure module may not.
fn violations(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let text = line.trim_start();
        if text.starts_with("//") {
            continue;
        }
        for word in FORBIDDEN {
            if text.contains(word) {
                found.push(format!("line {}: `{word}` in `{}`", n + 1, text));
            }
        }
        for (store, model) in STORE_MODULES {
            if text.contains(store) && !text.contains(model) {
                found.push(format!(
                    "line {}: `{store}` (use `{model}`) in `{}`",
                    n + 1,
                    text
                ));
            }
        }
        // Within shared itself the stores are `crate::state` / `crate::dora`.
        for store in [
            "crate::state::",
            "crate::dora::",
            "super::StateStore",
            "super::DoraStore",
        ] {
            let allowed = store.starts_with("crate::") && text.contains(&format!("{store}model"));
            if text.contains(store) && !allowed {
                found.push(format!("line {}: `{store}` in `{}`", n + 1, text));
            }
        }
    }
    found
}

#[test]
fn pure_modules_import_no_sdk_no_client_no_store() {
    let root = workspace_root();
    let mut all = Vec::new();
    for path in PURE {
        let source = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|e| panic!("{path}: {e} (a pure module moved? update PURE)"));
        all.extend(
            violations(&source)
                .into_iter()
                .map(|v| format!("{path}: {v}")),
        );
    }
    assert!(
        all.is_empty(),
        "pure modules reach for I/O:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_check_sees_an_sdk_a_store_and_an_adapter() {
    let source = "use aws_sdk_eks::Client;\nuse fleet_shared::state::StateStore;\nuse crate::explorer::CostData;\n// aws_sdk_s3 in a comment is fine\nuse fleet_shared::state::model::Transition;\n#[cfg(test)]\nmod tests { use tokio; }\n";
    let found = violations(source);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].contains("aws_sdk_"));
    assert!(found.iter().any(|f| f.contains("StateStore")));
    assert!(found.iter().any(|f| f.contains("crate::explorer")));
}
