//! Section 7: the AWS, Cloudflare and Cost Explorer requests a no-change run makes.

use std::fmt::Write as _;

use serde_json::json;

use super::verdict;
use crate::CallCounter;

/// 7. API economy: a no-change DNS sync, and Cost Explorer requests per report.
pub(super) async fn api_economy(md: &mut String) -> Result<(), String> {
    let mut dns = String::from("[cluster.dns]\ningress_service = \"ingress-nginx/ingress-nginx-controller\"\ningress_wait_seconds = 0\n");
    for i in 0..10 {
        write!(dns, "[[cluster.dns.record]]\nprovider = \"cloudflare\"\nzone = \"{{zone}}\"\nname = \"r{i}.{{zone}}\"\n[[cluster.dns.record]]\nprovider = \"route53\"\nzone_id = \"{{zone_id}}\"\nname = \"r{i}.{{zone}}\"\n").ok();
    }
    let mut f = crate::fixtures::dns::DnsFixture::start(&dns).await;
    let counter = CallCounter::default();
    let counted = dns_updater::route53::Route53::from_client(aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&f.sdk)
            .interceptor(counter.clone())
            .build(),
    ));
    let places = f.updater.route53.places().clone();
    f.updater.route53 = fleet_shared::place::PerPlace::new(places, move |_| counted.clone());
    f.set_ingress(Some("k8s-ingress-0123456789.eu-west-1.elb.amazonaws.com"));
    f.ready("g1").await.map_err(|e| e.to_string())?;
    f.cloudflare.clear_requests();
    let before = counter.count();
    f.ready("g1").await.map_err(|e| e.to_string())?;
    let cf_reads = f.cloudflare.requests().len();
    let cf_writes = f.cloudflare.writes().len();
    let r53 = counter.count() - before;
    writeln!(
        md,
        "## 7. API economy\n\n| measure | value | target | verdict |\n|---|---|---|---|"
    )
    .ok();
    writeln!(md, "| no-change sync of 20 records (10 Cloudflare, 10 Route53): Cloudflare requests | {cf_reads} reads, {cf_writes} writes | ≤ 1 read per record, no writes | {} |", verdict(cf_reads <= 10 && cf_writes == 0)).ok();
    writeln!(md, "| the same sync: Route53 requests | {r53} (`ListResourceRecordSets`) | ≤ 1 per record, no changes | {} |", verdict(r53 <= 10)).ok();
    let cost = crate::fixtures::cost::CostFixture::start(
        &[("destroy", "Mon-Fri 08:00-20:00 UTC")],
        "",
        crate::fixtures::cost::forecast_rule(1.0, 1.0, 1.0),
    )
    .await;
    let first = cost
        .call(json!({"action": "report"}), "2026-11-23T06:00:00Z")
        .await
        .map_err(|e| e.to_string())?;
    let second = cost
        .call(json!({"action": "report"}), "2026-11-23T09:00:00Z")
        .await
        .map_err(|e| e.to_string())?;
    let (a, b) = (
        first["cost_explorer_requests"].as_u64().unwrap_or(99),
        second["cost_explorer_requests"].as_u64().unwrap_or(99),
    );
    writeln!(md, "| Cost Explorer requests: a daily report, then a second one the same day | {a}, then {b} | ≤ 3, then 0 | {} |\n", verdict(a <= 3 && b == 0)).ok();
    eprintln!("economy: cloudflare {cf_reads}/{cf_writes}, route53 {r53}, ce {a}/{b}");
    Ok(())
}
