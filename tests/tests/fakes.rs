//! The fakes themselves: each refuses what the real API refuses. A fake kinder than the
//! real thing lets a product test pass where production fails, so the rules the product
//! depends on are tested here, against the fake alone, with plain HTTP.

use fleet_tests::fakes::cloudflare::FakeCloudflare;
use serde_json::{json, Value};

const TOKEN: &str = "fake-test-token";

async fn cf(
    fake: &FakeCloudflare,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{}/{path}", fake.url))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("fake cloudflare answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json envelope"))
}

fn first_code(body: &Value) -> u64 {
    body["errors"][0]["code"].as_u64().unwrap_or_default()
}

/// Cloudflare: a CNAME shares its name with no other record, of any type (81053 for an
/// address record, 81054 for the rest), in either order; other types share freely.
#[tokio::test]
async fn cloudflare_refuses_a_cname_beside_any_record() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let zone = fake.add_zone("example.com");
    let path = format!("zones/{zone}/dns_records");
    let record = |t: &str, content: &str| json!({"type": t, "name": "app.example.com", "content": content, "ttl": 60});
    let (s, _) = cf(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(record("TXT", "v=spf1 -all")),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = cf(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(record("CNAME", "lb.example.net")),
    )
    .await;
    assert_eq!((s, first_code(&b)), (400, 81054), "{b}");
    let (s, _) = cf(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(record("MX", "mail.example.net")),
    )
    .await;
    assert_eq!(s, 200, "TXT and MX share a name");
    let (s, _) = cf(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(record("A", "192.0.2.1")),
    )
    .await;
    assert_eq!(s, 200, "A beside TXT and MX");
    // The other order: a CNAME first, then anything else.
    let other =
        json!({"type": "CNAME", "name": "www.example.com", "content": "lb.example.net", "ttl": 60});
    assert_eq!(
        cf(&fake, reqwest::Method::POST, &path, Some(other)).await.0,
        200
    );
    for (t, content, code) in [("TXT", "x", 81054), ("A", "192.0.2.2", 81053)] {
        let body = json!({"type": t, "name": "www.example.com", "content": content, "ttl": 60});
        let (s, b) = cf(&fake, reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!((s, first_code(&b)), (400, code), "{t}: {b}");
    }
    // At the zone apex CNAME flattening lets a CNAME sit beside MX and TXT, not beside A.
    let apex = |t: &str, content: &str| json!({"type": t, "name": "example.com", "content": content, "ttl": 60});
    for (t, content) in [("MX", "mail.example.net"), ("TXT", "v=spf1 -all")] {
        assert_eq!(
            cf(&fake, reqwest::Method::POST, &path, Some(apex(t, content)))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        cf(
            &fake,
            reqwest::Method::POST,
            &path,
            Some(apex("CNAME", "lb.example.net"))
        )
        .await
        .0,
        200
    );
    let (s, b) = cf(
        &fake,
        reqwest::Method::POST,
        &path,
        Some(apex("A", "192.0.2.3")),
    )
    .await;
    assert_eq!((s, first_code(&b)), (400, 81053), "{b}");
}

/// Cloudflare's limits: TTL 1 (auto) or 60 to 86400; a comment of at most 100
/// characters.
#[tokio::test]
async fn cloudflare_refuses_short_ttls_and_long_comments() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let zone = fake.add_zone("example.com");
    let path = format!("zones/{zone}/dns_records");
    for (ttl, ok) in [
        (1, true),
        (30, false),
        (59, false),
        (60, true),
        (86401, false),
    ] {
        let body = json!({"type": "A", "name": format!("t{ttl}.example.com"), "content": "192.0.2.1", "ttl": ttl});
        let (s, b) = cf(&fake, reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(s == 200, ok, "ttl {ttl}: {b}");
    }
    let long = "x".repeat(101);
    let body = json!({"type": "A", "name": "c.example.com", "content": "192.0.2.1", "ttl": 60, "comment": long});
    let (s, b) = cf(&fake, reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(s, 400, "{b}");
}

/// `GET zones` filters by `name` and `status`; each zone says its status. `GET
/// dns_records` filters by `name` (exact), `name.exact` and `type`.
#[tokio::test]
async fn cloudflare_filters_zones_and_records() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let moved = fake.add_zone_with_status("example.com", "moved");
    let active = fake.add_zone("example.com");
    fake.add_zone("example.org");
    let (_, all) = cf(&fake, reqwest::Method::GET, "zones?name=example.com", None).await;
    let listed: Vec<(&str, &str)> = all["result"]
        .as_array()
        .expect("zones")
        .iter()
        .filter_map(|z| Some((z["id"].as_str()?, z["status"].as_str()?)))
        .collect();
    assert_eq!(
        listed,
        vec![(moved.as_str(), "moved"), (active.as_str(), "active")]
    );
    let (_, only) = cf(
        &fake,
        reqwest::Method::GET,
        "zones?name=example.com&status=active",
        None,
    )
    .await;
    assert_eq!(only["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(only["result"][0]["id"], active.as_str());

    for (name, t, content) in [
        ("app.example.com", "A", "192.0.2.1"),
        ("app.example.com", "TXT", "hello"),
        ("sub.app.example.com", "A", "192.0.2.2"),
    ] {
        fake.insert(
            &active,
            json!({"type": t, "name": name, "content": content, "ttl": 60}),
        );
    }
    let path = format!("zones/{active}/dns_records");
    for query in ["name=app.example.com", "name.exact=app.example.com"] {
        let (_, b) = cf(
            &fake,
            reqwest::Method::GET,
            &format!("{path}?{query}"),
            None,
        )
        .await;
        assert_eq!(
            b["result"].as_array().map(Vec::len),
            Some(2),
            "{query}: {b}"
        );
    }
    let (_, b) = cf(
        &fake,
        reqwest::Method::GET,
        &format!("{path}?name=app.example.com&type=TXT"),
        None,
    )
    .await;
    assert_eq!(b["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["result"][0]["type"], "TXT");
}

mod kube {
    use std::time::Duration;

    use fleet_tests::fakes::kube::FakeKube;
    use serde_json::{json, Value};

    fn pod(name: &str, labels: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs"}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}], "terminationGracePeriodSeconds": 1},
            "status": status,
        })
    }

    fn budget(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    async fn evict(kube: &FakeKube, name: &str) -> u16 {
        reqwest::Client::new()
            .post(format!(
                "{}/api/v1/namespaces/default/pods/{name}/eviction",
                kube.url
            ))
            .json(&json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": "default"}}))
            .send()
            .await
            .expect("fake kube answers")
            .status()
            .as_u16()
    }

    fn running() -> Value {
        json!({"phase": "Running"})
    }

    /// Two budgets over one pod: the eviction subresource answers 500, whatever they
    /// allow (eviction.go).
    #[tokio::test]
    async fn two_budgets_over_a_pod_make_its_eviction_a_500() {
        let kube = FakeKube::start().await;
        kube.insert(pod("web-1", json!({"app": "web"}), running()));
        kube.insert(budget(
            "a",
            json!({"maxUnavailable": 5, "selector": {"matchLabels": {"app": "web"}}}),
        ));
        kube.insert(budget("b", json!({"maxUnavailable": 5, "selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}})));
        assert_eq!(evict(&kube, "web-1").await, 500);
    }

    /// Selectors: matchExpressions with In, NotIn, Exists, DoesNotExist; a budget that
    /// does not select a pod does not hold it.
    #[tokio::test]
    async fn budgets_select_with_match_expressions() {
        let kube = FakeKube::start().await;
        kube.set_ready_delay(Duration::from_secs(3600));
        for (i, tier) in ["front", "front", "back"].iter().enumerate() {
            kube.insert(pod(
                &format!("p{i}"),
                json!({"app": "web", "tier": tier}),
                running(),
            ));
        }
        // Selects the two front pods (In + NotIn + Exists + DoesNotExist): none may go.
        kube.insert(budget(
            "front",
            json!({"maxUnavailable": 0, "selector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front"]},
                {"key": "tier", "operator": "NotIn", "values": ["back"]},
                {"key": "app", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"}
            ]}}),
        ));
        assert_eq!(evict(&kube, "p0").await, 429);
        assert_eq!(evict(&kube, "p2").await, 201, "not selected: no budget");
    }

    /// Percentages round up for both fields; only Ready pods are healthy; a replacement
    /// is Ready only after the ready delay, so a budget of one at a time waits for it.
    #[tokio::test]
    async fn budgets_count_ready_pods_and_round_percentages_up() {
        let kube = FakeKube::start().await;
        kube.set_ready_delay(Duration::from_millis(600));
        for i in 0..3 {
            kube.insert(pod(&format!("w{i}"), json!({"app": "web"}), running()));
        }
        // 30 % of 3 = 0.9, rounded up: one may go.
        kube.insert(budget(
            "web",
            json!({"maxUnavailable": "30%", "selector": {"matchLabels": {"app": "web"}}}),
        ));
        assert_eq!(evict(&kube, "w0").await, 201);
        // The replacement exists at once but is not Ready: nothing more may go.
        assert_eq!(evict(&kube, "w1").await, 429);
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(
            evict(&kube, "w1").await,
            201,
            "the replacement is Ready now"
        );
        assert_eq!(
            kube.budget_shortfall("default/web"),
            Some(0),
            "never below it"
        );
        // A delete goes around the budget: two of three down where one is allowed.
        let deleted = reqwest::Client::new()
            .delete(format!("{}/api/v1/namespaces/default/pods/w2", kube.url))
            .send()
            .await
            .expect("fake kube answers");
        assert_eq!(deleted.status().as_u16(), 200);
        assert_eq!(kube.budget_shortfall("default/web"), Some(1));
        // What the Eviction API let through stays within the budget.
        assert_eq!(kube.eviction_shortfall("default/web"), Some(0));
    }

    /// Pending and finished pods are evicted without a budget's say; an unready running
    /// pod by `unhealthyPodEvictionPolicy`.
    #[tokio::test]
    async fn pending_finished_and_unready_pods() {
        let kube = FakeKube::start().await;
        kube.set_ready_delay(Duration::from_secs(3600));
        kube.insert(pod(
            "pending",
            json!({"app": "web"}),
            json!({"phase": "Pending"}),
        ));
        kube.insert(pod(
            "done",
            json!({"app": "web"}),
            json!({"phase": "Succeeded"}),
        ));
        kube.insert(pod("ready", json!({"app": "web"}), running()));
        kube.insert(pod(
            "unready",
            json!({"app": "web"}),
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
        ));
        kube.insert(budget(
            "web",
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
        ));
        assert_eq!(evict(&kube, "pending").await, 201);
        assert_eq!(evict(&kube, "done").await, 201);
        // One Ready pod of the two wanted: IfHealthyBudget (the default) keeps the
        // unready pod too, AlwaysAllow lets it go.
        assert_eq!(evict(&kube, "unready").await, 429);
        assert_eq!(evict(&kube, "ready").await, 429);
        kube.insert(budget("web", json!({"minAvailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow", "selector": {"matchLabels": {"app": "web"}}})));
        assert_eq!(evict(&kube, "unready").await, 201);
        assert_eq!(evict(&kube, "ready").await, 429);
    }

    async fn send(
        kube: &FakeKube,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Value)>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", kube.url));
        if let Some((content_type, b)) = body {
            request = request
                .header("content-type", content_type)
                .body(b.to_string());
        }
        let response = request.send().await.expect("fake kube answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    const SERVICES: &str = "/api/v1/namespaces/default/services";

    fn lb_service(name: &str, class: Option<&str>) -> Value {
        let mut spec = json!({"type": "LoadBalancer", "ports": [{"port": 80}]});
        if let Some(c) = class {
            spec["loadBalancerClass"] = json!(c);
        }
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    /// Finalizers: DELETE marks the object and answers 200 with it; it stays until the
    /// last finalizer is removed (here by a merge patch), then goes.
    #[tokio::test]
    async fn finalizers_hold_a_deleted_object_until_removed() {
        let kube = FakeKube::start().await;
        kube.insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "namespace": "default", "finalizers": ["example.com/a", "example.com/b"]}}));
        let path = "/api/v1/namespaces/default/configmaps/held";
        let (s, body) = send(&kube, reqwest::Method::DELETE, path, None).await;
        assert_eq!(s, 200);
        assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
        let (s, again) = send(&kube, reqwest::Method::DELETE, path, None).await;
        assert_eq!(
            (s, &again["metadata"]["deletionTimestamp"]),
            (200, &body["metadata"]["deletionTimestamp"])
        );
        let merge = "application/merge-patch+json";
        let (s, _) = send(
            &kube,
            reqwest::Method::PATCH,
            path,
            Some((
                merge,
                json!({"metadata": {"finalizers": ["example.com/b"]}}),
            )),
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            kube.get("v1", "ConfigMap", "default", "held").is_some(),
            "one finalizer left"
        );
        let (s, _) = send(
            &kube,
            reqwest::Method::PATCH,
            path,
            Some((merge, json!({"metadata": {"finalizers": null}}))),
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            kube.get("v1", "ConfigMap", "default", "held").is_none(),
            "released: gone"
        );
        let (s, _) = send(&kube, reqwest::Method::DELETE, path, None).await;
        assert_eq!(s, 404);
    }

    /// A LoadBalancer Service carries its controller's finalizer from creation; after its
    /// DELETE the controller removes it after a delay, or never when told so. Other
    /// Service types and unknown load balancer classes have none.
    #[tokio::test]
    async fn load_balancer_services_keep_their_controllers_finalizer() {
        use fleet_tests::fakes::kube::{
            LoadBalancerCleanup, AWS_LB_FINALIZER, LB_CLEANUP_FINALIZER,
        };
        let kube = FakeKube::start().await;
        kube.set_load_balancer_cleanup(LoadBalancerCleanup::After(Duration::from_millis(300)));
        let (s, created) = send(
            &kube,
            reqwest::Method::POST,
            SERVICES,
            Some(("application/json", lb_service("in-tree", None))),
        )
        .await;
        assert_eq!(s, 201);
        assert_eq!(
            created["metadata"]["finalizers"],
            json!([LB_CLEANUP_FINALIZER])
        );
        kube.insert(lb_service("nlb", Some("service.k8s.aws/nlb")));
        assert_eq!(
            kube.get("v1", "Service", "default", "nlb")
                .map(|s| s["metadata"]["finalizers"].clone()),
            Some(json!([AWS_LB_FINALIZER]))
        );
        kube.insert(lb_service("other", Some("example.com/lb")));
        kube.insert(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "plain", "namespace": "default"}, "spec": {"type": "ClusterIP"}}));
        for plain in ["other", "plain"] {
            let (s, _) = send(
                &kube,
                reqwest::Method::DELETE,
                &format!("{SERVICES}/{plain}"),
                None,
            )
            .await;
            assert_eq!(s, 200);
            assert!(
                kube.get("v1", "Service", "default", plain).is_none(),
                "{plain}: no finalizer, gone at once"
            );
        }
        let (s, held) = send(
            &kube,
            reqwest::Method::DELETE,
            &format!("{SERVICES}/in-tree"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert!(held["metadata"]["deletionTimestamp"].is_string());
        assert!(
            kube.get("v1", "Service", "default", "in-tree").is_some(),
            "held by the finalizer"
        );
        assert!(
            kube.wait_gone(
                "v1",
                "Service",
                "default",
                "in-tree",
                Duration::from_secs(5)
            )
            .await
        );

        kube.set_load_balancer_cleanup(LoadBalancerCleanup::Never);
        let (s, _) = send(
            &kube,
            reqwest::Method::DELETE,
            &format!("{SERVICES}/nlb"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            !kube
                .wait_gone(
                    "v1",
                    "Service",
                    "default",
                    "nlb",
                    Duration::from_millis(600)
                )
                .await,
            "never released"
        );
        let stuck = kube
            .get("v1", "Service", "default", "nlb")
            .unwrap_or_default();
        assert!(stuck["metadata"]["deletionTimestamp"].is_string());
    }

    const APPLY: &str = "application/apply-patch+yaml";
    const MERGE: &str = "application/merge-patch+json";

    /// Server-side apply of `body` at `path` as `manager` (`force` as given).
    async fn apply(
        kube: &FakeKube,
        path: &str,
        manager: &str,
        force: bool,
        body: Value,
    ) -> (u16, Value) {
        let query = format!(
            "?fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        );
        send(
            kube,
            reqwest::Method::PATCH,
            &format!("{path}{query}"),
            Some((APPLY, body)),
        )
        .await
    }

    /// A JSON merge patch recorded as `manager`'s update.
    async fn merge(kube: &FakeKube, path: &str, manager: &str, body: Value) -> (u16, Value) {
        let path = format!("{path}?fieldManager={manager}");
        send(kube, reqwest::Method::PATCH, &path, Some((MERGE, body))).await
    }

    fn namespace(kube: &FakeKube) {
        kube.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        );
    }

    /// Server-side apply: a key the manager applied before and no longer applies is
    /// removed; its managedFields say what it owns, in the real `fieldsV1` shape.
    #[tokio::test]
    async fn apply_removes_the_fields_its_manager_no_longer_applies() {
        let kube = FakeKube::start().await;
        namespace(&kube);
        let path = "/api/v1/namespaces/default/configmaps/settings";
        let cm = |data: Value| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default"}, "data": data})
        };
        let (s, _) = apply(&kube, path, "m1", false, cm(json!({"a": "1", "b": "2"}))).await;
        assert_eq!(s, 201);
        let (s, obj) = apply(&kube, path, "m1", false, cm(json!({"a": "1"}))).await;
        assert_eq!(s, 200);
        assert_eq!(obj["data"], json!({"a": "1"}));
        assert_eq!(
            kube.get("v1", "ConfigMap", "default", "settings").unwrap()["data"],
            json!({"a": "1"})
        );
        assert_eq!(
            obj["metadata"]["managedFields"],
            json!([{"manager": "m1", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
        );
    }

    /// A Secret in a namespace that does not exist is refused (404), as the API server's
    /// namespace lifecycle admission refuses it; once the namespace is there it applies.
    #[tokio::test]
    async fn a_secret_needs_its_namespace() {
        let kube = FakeKube::start().await;
        let path = "/api/v1/namespaces/flux-system/secrets/flux-system";
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "flux-system", "namespace": "flux-system"},
            "data": {"identity": "a2V5"}});
        let (s, _) = apply(&kube, path, "fleet", true, secret.clone()).await;
        assert_eq!(s, 404);
        kube.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
        );
        let (s, _) = apply(&kube, path, "fleet", true, secret).await;
        assert_eq!(s, 201);
    }

    /// `ready_after_reads`: the object's controller writes its status after that many
    /// reads of the object (reads of an absent object do not count), and that read sees it.
    #[tokio::test]
    async fn an_object_becomes_ready_after_the_reads_its_controller_takes() {
        let kube = FakeKube::start().await;
        namespace(&kube);
        kube.ready_after_reads(
            "apps/v1",
            "Deployment",
            Some("default"),
            "web",
            2,
            json!({"availableReplicas": 3}),
        );
        let (s, _) = send(&kube, reqwest::Method::GET, WEB, None).await;
        assert_eq!(s, 404, "absent: not worked on");
        kube.insert(deployment(
            json!([{"name": "web", "image": "web:1"}]),
            Some(3),
        ));
        let (_, first) = send(&kube, reqwest::Method::GET, WEB, None).await;
        assert!(first["status"]["availableReplicas"].is_null(), "{first}");
        let (_, second) = send(&kube, reqwest::Method::GET, WEB, None).await;
        assert_eq!(second["status"]["availableReplicas"], 3);
        let (_, third) = send(&kube, reqwest::Method::GET, WEB, None).await;
        assert_eq!(third["status"]["availableReplicas"], 3, "it stays");
    }

    fn deployment(containers: Value, replicas: Option<i64>) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": containers}}}});
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    const WEB: &str = "/apis/apps/v1/namespaces/default/deployments/web";

    /// Containers merge by name: the container the manager dropped goes, the one it keeps
    /// keeps a field another manager set on it, and `env` merges by name too.
    #[tokio::test]
    async fn apply_merges_containers_and_env_by_name() {
        let kube = FakeKube::start().await;
        namespace(&kube);
        let two = json!([
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "proxy:1"},
        ]);
        assert_eq!(
            apply(&kube, WEB, "m1", false, deployment(two, None))
                .await
                .0,
            201
        );
        // Another client (a merge patch replaces the whole list, as JSON merge patch does)
        // adds resources to the app container and an env var of its own: it owns those.
        let patched = json!([
            {"name": "app", "image": "app:1", "resources": {"limits": {"cpu": "1"}},
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "EXTRA", "value": "x"}]},
            {"name": "sidecar", "image": "proxy:1"},
        ]);
        let (s, _) = merge(
            &kube,
            WEB,
            "tuner",
            json!({"spec": {"template": {"spec": {"containers": patched}}}}),
        )
        .await;
        assert_eq!(s, 200);

        let one = json!([{"name": "app", "image": "app:2", "env": [{"name": "A", "value": "10"}]}]);
        let (s, obj) = apply(&kube, WEB, "m1", false, deployment(one, None)).await;
        assert_eq!(s, 200, "{obj}");
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "app:2", "resources": {"limits": {"cpu": "1"}},
                "env": [{"name": "A", "value": "10"}, {"name": "EXTRA", "value": "x"}]}])
        );
    }

    /// A field another manager owns survives an apply that does not mention it; applying
    /// a different value is a 409 Conflict naming the field and the manager, unless forced,
    /// which takes it over.
    #[tokio::test]
    async fn apply_conflicts_on_fields_other_managers_own() {
        let kube = FakeKube::start().await;
        namespace(&kube);
        let app = || json!([{"name": "app", "image": "app:1"}]);
        assert_eq!(
            apply(&kube, WEB, "m1", false, deployment(app(), Some(1)))
                .await
                .0,
            201
        );
        let (s, _) = merge(&kube, WEB, "hpa", json!({"spec": {"replicas": 4}})).await;
        assert_eq!(s, 200);

        // m1 stops setting replicas: hpa owns it now, so it stays.
        let (s, obj) = apply(&kube, WEB, "m1", false, deployment(app(), None)).await;
        assert_eq!((s, &obj["spec"]["replicas"]), (200, &json!(4)), "{obj}");
        // The same value is no conflict (both own it then).
        let (s, _) = apply(&kube, WEB, "m1", false, deployment(app(), Some(4))).await;
        assert_eq!(s, 200);
        let (s, status) = apply(&kube, WEB, "m1", false, deployment(app(), Some(2))).await;
        assert_eq!(
            (s, status["reason"].as_str()),
            (409, Some("Conflict")),
            "{status}"
        );
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("\"hpa\"") && message.contains(".spec.replicas"),
            "{message}"
        );
        assert_eq!(
            kube.get("apps/v1", "Deployment", "default", "web").unwrap()["spec"]["replicas"],
            4
        );

        let (s, obj) = apply(&kube, WEB, "m1", true, deployment(app(), Some(2))).await;
        assert_eq!((s, &obj["spec"]["replicas"]), (200, &json!(2)), "{obj}");
        // hpa lost it: m1 now drops it and it goes.
        let (s, obj) = apply(&kube, WEB, "m1", false, deployment(app(), None)).await;
        assert_eq!((s, &obj["spec"]["replicas"]), (200, &Value::Null), "{obj}");
    }

    /// A custom resource has no merge keys: its lists are replaced whole, even items that
    /// look like containers.
    #[tokio::test]
    async fn a_custom_resources_lists_are_atomic() {
        let kube = FakeKube::start().await;
        namespace(&kube);
        kube.insert(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        );
        let path = "/apis/example.com/v1/namespaces/default/widgets/w";
        let widget = |containers: Value| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"}, "spec": {"containers": containers}})
        };
        let (s, _) = apply(
            &kube,
            path,
            "m1",
            false,
            widget(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])),
        )
        .await;
        assert_eq!(s, 201);
        let (s, obj) = apply(
            &kube,
            path,
            "m2",
            true,
            widget(json!([{"name": "a", "image": "a2"}])),
        )
        .await;
        assert_eq!(s, 200, "{obj}");
        assert_eq!(
            obj["spec"]["containers"],
            json!([{"name": "a", "image": "a2"}])
        );
        // Without force, the list as a whole is m2's now: m1 conflicts on it.
        let (s, status) = apply(
            &kube,
            path,
            "m1",
            false,
            widget(json!([{"name": "b", "image": "b"}])),
        )
        .await;
        assert_eq!(s, 409, "{status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .contains(".spec.containers"),
            "{status}"
        );
    }

    // What `kubectl drain` (1.20, Debian 12's) asks of the API, request by request, and
    // what a real API server answers (kubectl's drain.go, cordon.go, cmd/drain/drain.go).

    /// Discovery as kubectl's `CheckEvictionSupport` reads it: the `policy` group in
    /// `/apis` with its preferred version, and `/api/v1` listing the `pods/eviction`
    /// subresource with kind `Eviction` (without it kubectl deletes pods instead).
    #[tokio::test]
    async fn discovery_lists_the_eviction_subresource() {
        let kube = FakeKube::start().await;
        let (s, groups) = send(&kube, reqwest::Method::GET, "/apis", None).await;
        assert_eq!(s, 200);
        let policy = groups["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["name"] == "policy"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            policy["preferredVersion"]["groupVersion"], "policy/v1",
            "{groups}"
        );
        let (s, core) = send(&kube, reqwest::Method::GET, "/api/v1", None).await;
        assert_eq!(s, 200);
        let eviction = core["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "pods/eviction"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(eviction["kind"], "Eviction", "{core}");
        assert_eq!(
            (&eviction["group"], &eviction["version"]),
            (&json!("policy"), &json!("v1"))
        );
        assert_eq!(eviction["verbs"], json!(["create"]));
    }

    async fn post_eviction(kube: &FakeKube, name: &str, body: Value) -> (u16, Value) {
        let path = format!("/api/v1/namespaces/default/pods/{name}/eviction");
        send(
            kube,
            reqwest::Method::POST,
            &path,
            Some(("application/json", body)),
        )
        .await
    }

    /// The eviction subresource takes kubectl 1.20's body (policy/v1beta1, whatever
    /// discovery prefers, `creationTimestamp: null`, empty `deleteOptions`) as well as a
    /// policy/v1 one; it refuses with 400 a body naming another pod, another namespace
    /// or another kind.
    #[tokio::test]
    async fn evictions_take_v1beta1_and_v1_bodies_naming_the_pod() {
        let kube = FakeKube::start().await;
        for name in ["a", "b", "c"] {
            kube.insert(pod(name, json!({"app": "web"}), running()));
        }
        let kubectl_120 = |name: &str| {
            json!({"kind": "Eviction", "apiVersion": "policy/v1beta1",
                "metadata": {"name": name, "namespace": "default", "creationTimestamp": null},
                "deleteOptions": {}})
        };
        let v1 = |name: &str, ns: &str| {
            json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": ns}})
        };
        let (s, b) = post_eviction(&kube, "a", v1("b", "default")).await;
        assert_eq!((s, &b["reason"]), (400, &json!("BadRequest")), "{b}");
        assert_eq!(
            b["message"],
            "name in URL does not match name in Eviction object"
        );
        let (s, b) = post_eviction(&kube, "a", v1("a", "kube-system")).await;
        assert_eq!(s, 400, "{b}");
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}});
        assert_eq!(post_eviction(&kube, "a", deployment).await.0, 400);
        let v2 = json!({"apiVersion": "policy/v2", "kind": "Eviction", "metadata": {"name": "a"}});
        assert_eq!(post_eviction(&kube, "a", v2).await.0, 400);
        assert!(
            kube.get("v1", "Pod", "default", "a")
                .is_some_and(|p| p["metadata"]["deletionTimestamp"].is_null()),
            "a refused eviction leaves the pod alone"
        );
        let (s, b) = post_eviction(&kube, "a", kubectl_120("a")).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(post_eviction(&kube, "b", v1("b", "default")).await.0, 201);
        // Without apiVersion and kind the endpoint's own (policy/v1 Eviction) is meant.
        let bare = json!({"metadata": {"name": "c"}});
        assert_eq!(post_eviction(&kube, "c", bare).await.0, 201);
        // The request log keeps each answer's status.
        let answered: Vec<Option<u16>> = kube
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/eviction"))
            .map(|r| r.status)
            .collect();
        assert_eq!(
            answered,
            [400, 400, 400, 400, 201, 201, 201].map(Some).to_vec()
        );
    }

    /// After an accepted eviction kubectl polls `GET pod` every second until 404 (or a
    /// pod of another UID): the pod is there, terminating, for its grace period, then
    /// gone; the node counts as empty once only DaemonSet and mirror pods are left.
    #[tokio::test]
    async fn an_evicted_pod_is_there_terminating_then_404() {
        let kube = FakeKube::start().await;
        kube.insert(pod("web-1", json!({"app": "web"}), running()));
        let mut ds = pod("ds-1", json!({}), running());
        ds["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "d", "controller": true}]);
        kube.insert(ds);
        kube.watch_node_empty("node-a");
        assert_eq!(kube.node_emptied_at("node-a"), None);
        let body = json!({"kind": "Eviction", "apiVersion": "policy/v1beta1",
            "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": null}, "deleteOptions": {}});
        assert_eq!(post_eviction(&kube, "web-1", body).await.0, 201);
        let path = "/api/v1/namespaces/default/pods/web-1";
        let (s, p) = send(&kube, reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200);
        assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
        assert_eq!(
            kube.node_emptied_at("node-a"),
            None,
            "terminating: still there"
        );
        let evicted_at = std::time::Instant::now();
        // Grace period 1 s.
        let mut gone = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (s, b) = send(&kube, reqwest::Method::GET, path, None).await;
            if s == 404 {
                assert_eq!(b["reason"], "NotFound");
                gone = true;
                break;
            }
        }
        assert!(gone, "the pod went after its grace period");
        let emptied = kube.node_emptied_at("node-a").expect("the node emptied");
        assert!(emptied >= evicted_at + Duration::from_millis(900));
        // The replacement is on another node; the DaemonSet pod stays.
        assert!(kube.get("v1", "Pod", "default", "ds-1").is_some());
    }

    /// A patch that makes `metadata` something other than an object, or renames the
    /// object, is refused (422) and changes nothing; one that sets or clears
    /// `deletionTimestamp` is answered but that field stays as it was (only a DELETE sets
    /// it). Nothing panics: the API answers the next request.
    #[tokio::test]
    async fn patches_cannot_break_metadata_or_set_deletion() {
        const MERGE: &str = "application/merge-patch+json";
        let kube = FakeKube::start().await;
        kube.insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}));
        for bad in [
            json!({"metadata": 5}),
            json!({"metadata": {"name": "node-b"}}),
        ] {
            let (s, answer) = send(
                &kube,
                reqwest::Method::PATCH,
                "/api/v1/nodes/node-a",
                Some((MERGE, bad.clone())),
            )
            .await;
            assert_eq!(s, 422, "{bad}: {answer}");
        }
        let (s, node) = send(
            &kube,
            reqwest::Method::PATCH,
            "/api/v1/nodes/node-a",
            Some((
                MERGE,
                json!({"metadata": {"deletionTimestamp": "2026-11-23T10:00:00Z", "labels": {"a": "b"}}}),
            )),
        )
        .await;
        assert_eq!(s, 200, "{node}");
        assert!(node["metadata"]["deletionTimestamp"].is_null(), "{node}");
        assert_eq!(node["metadata"]["labels"]["a"], "b");
        let (s, _) = send(&kube, reqwest::Method::GET, "/api/v1/nodes/node-a", None).await;
        assert_eq!(s, 200);
    }

    /// kubectl's cordon: `PATCH` of the node with a strategic merge patch
    /// (cordon.go `PatchOrReplace`, `types.StrategicMergePatchType`). Maps merge, lists
    /// with a merge key merge item by item, `$patch: delete` removes an item,
    /// finalizers merge as a set; a custom resource takes no strategic merge patch (415).
    #[tokio::test]
    async fn strategic_merge_patches_cordon_and_merge_by_key() {
        const SMP: &str = "application/strategic-merge-patch+json";
        let kube = FakeKube::start().await;
        kube.insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a", "finalizers": ["x"]},
            "spec": {"providerID": "aws:///eu-west-1a/i-1"}}));
        let (s, node) = send(
            &kube,
            reqwest::Method::PATCH,
            "/api/v1/nodes/node-a",
            Some((SMP, json!({"spec": {"unschedulable": true}}))),
        )
        .await;
        assert_eq!(s, 200, "{node}");
        assert_eq!(node["spec"]["unschedulable"], true);
        assert_eq!(node["spec"]["providerID"], "aws:///eu-west-1a/i-1");
        let (s, node) = send(
            &kube,
            reqwest::Method::PATCH,
            "/api/v1/nodes/node-a",
            Some((SMP, json!({"metadata": {"finalizers": ["y"]}}))),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(node["metadata"]["finalizers"], json!(["x", "y"]));
        let mut p = pod("web-1", json!({"app": "web"}), running());
        p["spec"]["containers"] =
            json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]);
        kube.insert(p);
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "c:1"}]}});
        let (s, p) = send(
            &kube,
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/pods/web-1",
            Some((SMP, patch)),
        )
        .await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(
            p["spec"]["containers"],
            json!([{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}])
        );
        // The same patch as a JSON merge patch replaces the list whole.
        let (s, p) = send(
            &kube,
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/pods/web-1",
            Some((
                MERGE,
                json!({"spec": {"containers": [{"name": "d", "image": "d:1"}]}}),
            )),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            p["spec"]["containers"],
            json!([{"name": "d", "image": "d:1"}])
        );
        kube.insert(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        );
        kube.insert(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"}, "spec": {"size": 1}}));
        let (s, b) = send(
            &kube,
            reqwest::Method::PATCH,
            "/apis/example.com/v1/namespaces/default/widgets/w",
            Some((SMP, json!({"spec": {"size": 2}}))),
        )
        .await;
        assert_eq!(
            (s, &b["reason"]),
            (415, &json!("UnsupportedMediaType")),
            "{b}"
        );
    }
}

/// The fake Kubernetes API in EKS mode refuses what an EKS cluster's API refuses: it is
/// HTTPS only, and a request goes on only with a token aws-iam-authenticator accepts and
/// STS (moto) vouches for. Every refusal is a 401 Unauthorized Status, and the request
/// never reaches the API.
mod kube_eks {
    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use base64::Engine;
    use fleet_shared::kube::eks_token;
    use fleet_tests::eks_auth::moto_iam_user;
    use fleet_tests::fakes::kube::FakeKube;
    use fleet_tests::{moto, sdk_with_credentials, unique, REGION};
    use serde_json::Value;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// A fake for a new cluster, and a moto IAM user's credentials and ARN.
    async fn cluster() -> (FakeKube, String, Credentials, String) {
        let name = unique("eks");
        let user = unique("kube-admin");
        let (credentials, arn) = moto_iam_user(&moto().endpoint, &user).await;
        assert!(arn.ends_with(&format!(":user/{user}")), "{arn}");
        let kube = FakeKube::start_eks(&name, &sdk_with_credentials(credentials.clone())).await;
        (kube, name, credentials, arn)
    }

    fn trusting(kube: &FakeKube) -> reqwest::Client {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(kube.ca_data())
            .expect("base64 CA");
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM CA")])
            .build()
            .expect("client")
    }

    /// GET /api/v1/namespaces with `authorization` as the header.
    async fn namespaces(kube: &FakeKube, authorization: Option<String>) -> (u16, Value) {
        let mut request = trusting(kube).get(format!("{}/api/v1/namespaces", kube.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("fake kube answers over TLS");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    fn bearer(token: &str) -> Option<String> {
        Some(format!("Bearer {token}"))
    }

    /// A token whose presigned URL is `edit`ed after signing.
    fn edited(token: &str, edit: impl Fn(String) -> String) -> String {
        let url = String::from_utf8(
            B64.decode(token.strip_prefix("k8s-aws-v1.").expect("prefix"))
                .expect("base64url"),
        )
        .expect("utf8");
        format!("k8s-aws-v1.{}", B64.encode(edit(url)))
    }

    /// Every token that is not a good one for this cluster: each gets a 401 Status, for
    /// the reason aws-iam-authenticator (or STS's signature check) gives.
    #[tokio::test]
    async fn eks_mode_refuses_bad_tokens_with_401() {
        let (kube, name, credentials, _) = cluster().await;
        let now = SystemTime::now();
        let good = eks_token(&credentials, REGION, &name, now).expect("token");
        let wrong_secret = Credentials::new(
            credentials.access_key_id(),
            "not-the-secret",
            None,
            None,
            "test",
        );
        let unknown_key = Credentials::new("AKIAUNKNOWN", "secret", None, None, "test");
        let cases: Vec<(&str, Option<String>, &str)> = vec![
            ("no header", None, "no Authorization header"),
            (
                "not a bearer token",
                Some("Basic a3ViZTprdWJl".into()),
                "no bearer token",
            ),
            ("not base64url", bearer("k8s-aws-v1.%%%"), "not base64url"),
            (
                "wrong prefix",
                bearer(&good.replacen("k8s-aws-v1.", "k8s-aws-v2.", 1)),
                "prefix",
            ),
            (
                "a URL not to STS",
                bearer(&edited(&good, |u| {
                    u.replace("sts.eu-west-1.amazonaws.com", "sts.eu-west-1.example.com")
                })),
                "unexpected hostname",
            ),
            (
                "STS on another port",
                bearer(&edited(&good, |u| {
                    u.replace("amazonaws.com/", "amazonaws.com:8443/")
                })),
                "unexpected hostname",
            ),
            (
                "plain http",
                bearer(&edited(&good, |u| u.replacen("https://", "http://", 1))),
                "unexpected scheme",
            ),
            (
                "another action",
                bearer(&edited(&good, |u| {
                    u.replace("Action=GetCallerIdentity", "Action=AssumeRole")
                })),
                "unexpected action",
            ),
            (
                "an extra parameter",
                bearer(&edited(&good, |u| format!("{u}&RoleArn=x"))),
                "non-whitelisted",
            ),
            (
                "a duplicate parameter",
                bearer(&edited(&good, |u| format!("{u}&action=GetCallerIdentity"))),
                "duplicate",
            ),
            (
                "the cluster header not signed",
                bearer(&edited(&good, |u| {
                    u.replace(
                        "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
                        "X-Amz-SignedHeaders=host",
                    )
                })),
                "did not sign the x-k8s-aws-id header",
            ),
            (
                "expires past 15 minutes",
                bearer(&edited(&good, |u| {
                    u.replace("X-Amz-Expires=60", "X-Amz-Expires=901")
                })),
                "X-Amz-Expires",
            ),
            (
                "signed 16 minutes ago",
                bearer(
                    &eks_token(
                        &credentials,
                        REGION,
                        &name,
                        now - Duration::from_secs(16 * 60),
                    )
                    .expect("token"),
                ),
                "expired",
            ),
            (
                "a token for another cluster",
                bearer(&eks_token(&credentials, REGION, "another-cluster", now).expect("token")),
                "SignatureDoesNotMatch",
            ),
            (
                "a wrong secret",
                bearer(&eks_token(&wrong_secret, REGION, &name, now).expect("token")),
                "SignatureDoesNotMatch",
            ),
            (
                "a key STS does not know",
                bearer(&eks_token(&unknown_key, REGION, &name, now).expect("token")),
                "InvalidClientTokenId",
            ),
            (
                "the signature altered",
                bearer(&edited(&good, |u| {
                    let at = u.find("X-Amz-Signature=").expect("signature") + 16;
                    let flipped = if &u[at..at + 1] == "0" { "1" } else { "0" };
                    format!("{}{flipped}{}", &u[..at], &u[at + 1..])
                })),
                "SignatureDoesNotMatch",
            ),
        ];
        for (i, (case, authorization, reason)) in cases.into_iter().enumerate() {
            let (status, body) = namespaces(&kube, authorization).await;
            assert_eq!(status, 401, "{case}: {body}");
            assert_eq!(body["kind"], "Status", "{case}");
            assert_eq!(body["reason"], "Unauthorized", "{case}");
            assert_eq!(body["code"], 401, "{case}");
            let rejections = kube.rejections();
            assert_eq!(rejections.len(), i + 1, "{case}");
            assert!(
                rejections[i].contains(reason),
                "{case}: refused for {:?}, expected {reason:?}",
                rejections[i]
            );
        }
        assert!(kube.authenticated_arns().is_empty());
        assert!(
            kube.requests().is_empty(),
            "no refused request reached the API"
        );
    }

    /// A token made as `aws eks get-token` makes it, with the caller's own keys: 200, and
    /// the caller's ARN is what moto's STS answered for the presigned call. The token is
    /// then trusted from the cache, as the API server caches it.
    #[tokio::test]
    async fn eks_mode_accepts_a_token_sts_vouches_for() {
        let (kube, name, credentials, arn) = cluster().await;
        let token = eks_token(&credentials, REGION, &name, SystemTime::now()).expect("token");
        let (status, body) = namespaces(&kube, bearer(&token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["kind"], "NamespaceList");
        assert_eq!(kube.authenticated_arns(), vec![arn.clone()]);
        let (status, _) = namespaces(&kube, bearer(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(
            kube.authenticated_arns(),
            vec![arn],
            "cached: STS asked once"
        );
        assert_eq!(kube.requests().len(), 2);
    }

    /// HTTPS only, with its own CA: plain HTTP to its port gets no answer, and a client
    /// that does not trust the CA refuses the certificate.
    #[tokio::test]
    async fn eks_mode_serves_only_tls_with_its_own_ca() {
        let (kube, _, _, _) = cluster().await;
        let plain = kube.url.replacen("https://", "http://", 1);
        let err = reqwest::get(format!("{plain}/api/v1/namespaces"))
            .await
            .expect_err("plain HTTP to the TLS port");
        assert!(!err.is_status(), "{err:?}");
        let err = reqwest::Client::builder()
            .tls_certs_only([])
            .build()
            .expect("client")
            .get(format!("{}/api/v1/namespaces", kube.url))
            .send()
            .await
            .expect_err("a client that does not trust the fake's CA");
        assert!(err.is_connect(), "{err:?}");
        let other = FakeKube::start_eks("other", &fleet_tests::sdk()).await;
        assert_ne!(other.ca_data(), kube.ca_data(), "each fake has its own CA");
    }
}
