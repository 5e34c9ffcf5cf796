//! DNS records: Cloudflare's rules for a record about to be written, and the
//! `dns_records` endpoints.

use std::collections::HashMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Value};

use super::{envelope, error, Store};

pub(super) fn lower(v: &Value) -> String {
    v.as_str()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

impl Store {
    /// Cloudflare's rules for a record about to be written (`id` = the one being changed).
    pub(super) fn validate(
        &self,
        zone_id: &str,
        id: Option<&str>,
        r: &Value,
    ) -> Result<(), (u16, u32, &'static str)> {
        let t = r["type"].as_str().unwrap_or_default();
        let content = r["content"].as_str().unwrap_or_default();
        if r["name"].as_str().unwrap_or_default().is_empty() || content.is_empty() {
            return Err((400, 9000, "DNS name is invalid."));
        }
        match t {
            "A" if content.parse::<std::net::Ipv4Addr>().is_err() => {
                return Err((
                    400,
                    9005,
                    "Content for A record must be a valid IPv4 address.",
                ))
            }
            "AAAA" if content.parse::<std::net::Ipv6Addr>().is_err() => {
                return Err((
                    400,
                    9006,
                    "Content for AAAA record must be a valid IPv6 address.",
                ))
            }
            "A" | "AAAA" | "CNAME" | "TXT" | "MX" => {}
            _ => return Err((400, 9004, "This record type is not supported.")),
        }
        let ttl = r["ttl"].as_u64().unwrap_or(1);
        if ttl != 1 && !(60..=86400).contains(&ttl) {
            return Err((
                400,
                9021,
                "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
            ));
        }
        if r["comment"]
            .as_str()
            .is_some_and(|c| c.chars().count() > 100)
        {
            return Err((
                400,
                9101,
                "DNS record comment cannot be longer than 100 characters.",
            ));
        }
        let name = lower(&r["name"]);
        for (other_id, o) in &self.records {
            if Some(other_id.as_str()) == id || o["zone_id"] != zone_id || lower(&o["name"]) != name
            {
                continue;
            }
            let ot = o["type"].as_str().unwrap_or_default();
            let address = |t: &str| matches!(t, "A" | "AAAA" | "CNAME");
            if (t == "CNAME" && address(ot)) || (ot == "CNAME" && address(t)) {
                return Err((
                    400,
                    81053,
                    "An A, AAAA, or CNAME record with that host already exists.",
                ));
            }
            // A CNAME shares its name with no record of any type (RFC 1034 3.6.2), except
            // at the zone apex, where CNAME flattening answers for it.
            let apex = self
                .zones
                .iter()
                .any(|(id, zone, _)| id == zone_id && *zone == name);
            if (t == "CNAME" || ot == "CNAME") && !apex {
                return Err((400, 81054, "A CNAME record with that host already exists."));
            }
            if ot == t && lower(&o["content"]) == content.to_ascii_lowercase() {
                return Err((
                    400,
                    81058,
                    "A record with the same settings already exists.",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn stamp(r: &mut Value) {
        if r["proxied"].as_bool() == Some(true) {
            r["ttl"] = json!(1);
        }
        if r.get("ttl").is_none_or(Value::is_null) {
            r["ttl"] = json!(1);
        }
        if r.get("proxied").is_none_or(Value::is_null) {
            r["proxied"] = json!(false);
        }
        let proxiable = matches!(r["type"].as_str(), Some("A" | "AAAA" | "CNAME"));
        r["proxiable"] = json!(proxiable);
        r["modified_on"] = json!("2026-11-23T07:00:00Z");
    }
}

/// The `zones/<zone>/dns_records[/<id>]` endpoints: list (filters, pages), create,
/// change (PATCH, PUT), delete, each write checked by [`Store::validate`].
pub(super) fn dns_records(
    s: &mut Store,
    method: &Method,
    zone: String,
    rest: &[&str],
    q: &HashMap<String, String>,
    body: Value,
) -> Response {
    if !s.zones.iter().any(|(id, _, _)| *id == zone) {
        return error(
            404,
            7003,
            "Could not route to /zones/dns_records, perhaps your object identifier is invalid?",
        );
    }
    match (method.as_str(), rest) {
        ("GET", []) => {
            // `name` is an exact match, as `name.exact` says explicitly.
            let name = q
                .get("name.exact")
                .or_else(|| q.get("name"))
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
            let t = q.get("type");
            let per_page: usize = q
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(100)
                .clamp(5, 5000);
            let page: usize = q
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let all: Vec<Value> = s
                .records
                .values()
                .filter(|r| r["zone_id"] == zone.as_str())
                .filter(|r| name.as_ref().is_none_or(|n| lower(&r["name"]) == *n))
                .filter(|r| t.is_none_or(|t| r["type"] == t.as_str()))
                .cloned()
                .collect();
            let total = all.len();
            let pages = total.div_ceil(per_page).max(1);
            let items: Vec<Value> = all
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            let count = items.len();
            envelope(
                200,
                json!(items),
                Some(
                    json!({"page": page, "per_page": per_page, "count": count, "total_count": total, "total_pages": pages}),
                ),
            )
        }
        ("POST", []) => {
            let mut r = body;
            if let Err((status, code, message)) = s.validate(&zone, None, &r) {
                return error(status, code, message);
            }
            s.next_id += 1;
            let id = format!("{:032x}", s.next_id);
            r["id"] = json!(id);
            r["zone_id"] = json!(zone);
            r["created_on"] = json!("2026-11-23T07:00:00Z");
            Store::stamp(&mut r);
            s.records.insert(id, r.clone());
            envelope(200, r, None)
        }
        (m @ ("PATCH" | "PUT"), [id]) => {
            let id = id.to_string();
            let Some(current) = s.records.get(&id).cloned() else {
                return error(404, 81044, "Record does not exist.");
            };
            let mut r = if m == "PUT" {
                json!({"id": id, "zone_id": zone, "created_on": current["created_on"]})
            } else {
                current
            };
            if let Some(fields) = body.as_object() {
                for (k, v) in fields {
                    if k != "id" && k != "zone_id" {
                        r[k] = v.clone();
                    }
                }
            }
            if let Err((status, code, message)) = s.validate(&zone, Some(&id), &r) {
                return error(status, code, message);
            }
            Store::stamp(&mut r);
            s.records.insert(id, r.clone());
            envelope(200, r, None)
        }
        ("DELETE", [id]) => match s.records.remove(*id) {
            Some(_) => envelope(200, json!({"id": id}), None),
            None => error(404, 81044, "Record does not exist."),
        },
        _ => error(405, 10000, "Method not allowed"),
    }
}
