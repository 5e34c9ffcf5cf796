//! Morning bootstrap: the blueprint's secrets and manifests applied to a rebuilt cluster
//! with server-side apply (field manager `fleet`), before `Cluster Ready` is published.
//!
//! Order: `bootstrap_secrets` first (their namespaces, then the Secrets: Flux's
//! source-controller needs its deploy key the moment it starts), then
//! CustomResourceDefinitions, then (on a later tick if they are not yet)
//! wait until they are Established, then Namespaces, then everything else. Re-applying is
//! a no-op, so a tick that stops halfway is simply repeated. This is how Flux
//! (`gotk-components.yaml` + `gotk-sync.yaml`) comes back every morning.

use std::path::PathBuf;

use base64::Engine;
use fleet_shared::config::{is_secret_key, BootstrapSecret, SecretSource};
use fleet_shared::kube::kube_error;
use fleet_shared::{FleetError, Result};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use serde_json::Value;

pub const FIELD_MANAGER: &str = "fleet";

/// One document of a manifest source.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub source: String,
    /// 1-based position among its source's non-empty documents.
    pub index: usize,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub body: Value,
}

impl Manifest {
    /// `Kind namespace/name (source #n)`: how errors name a document.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{} {ns}/{} ({} #{})",
                self.kind, self.name, self.source, self.index
            ),
            None => format!(
                "{} {} ({} #{})",
                self.kind, self.name, self.source, self.index
            ),
        }
    }

    fn is_crd(&self) -> bool {
        self.kind == "CustomResourceDefinition"
            && self.api_version.starts_with("apiextensions.k8s.io/")
    }

    fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.api_version == "v1"
    }
}

fn bootstrap_error(what: &str, message: impl std::fmt::Display) -> FleetError {
    FleetError::bad_request("blueprint.bootstrap", format!("{what}: {message}"))
}

/// Parses a multi-document YAML source. Empty documents are skipped; a document that is
/// not a Kubernetes object fails naming its position.
pub fn parse(source: &str, text: &str) -> Result<Vec<Manifest>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| bootstrap_error(source, format!("not valid YAML: {e}")))?;
    let mut out = Vec::new();
    for (i, body) in docs.into_iter().enumerate() {
        let index = i + 1;
        if body.is_null() {
            continue;
        }
        let field = |f: &str| body.pointer(f).and_then(Value::as_str).map(String::from);
        let (Some(api_version), Some(kind), Some(name)) = (
            field("/apiVersion"),
            field("/kind"),
            field("/metadata/name"),
        ) else {
            return Err(bootstrap_error(
                &format!("{source} #{index}"),
                "not a Kubernetes object (needs apiVersion, kind and metadata.name)",
            ));
        };
        out.push(Manifest {
            source: source.to_string(),
            index,
            api_version,
            kind,
            namespace: field("/metadata/namespace"),
            name,
            body,
        });
    }
    Ok(out)
}

/// The three phases, each in source order.
pub fn phases(all: Vec<Manifest>) -> (Vec<Manifest>, Vec<Manifest>, Vec<Manifest>) {
    let (crds, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(Manifest::is_crd);
    let (namespaces, rest): (Vec<_>, Vec<_>) = rest.into_iter().partition(Manifest::is_namespace);
    (crds, namespaces, rest)
}

/// Reads a manifest source: `s3://bucket/key`, or a path bundled with the function
/// (relative to `LAMBDA_TASK_ROOT` in Lambda, to the working directory locally).
pub async fn load(s3: &aws_sdk_s3::Client, source: &str) -> Result<String> {
    if let Some(rest) = source.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| bootstrap_error(source, "expected s3://bucket/key"))?;
        let out = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| FleetError::aws("S3", "GetObject", e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| bootstrap_error(source, format!("reading the object: {e}")))?
            .into_bytes();
        return String::from_utf8(bytes.to_vec())
            .map_err(|_| bootstrap_error(source, "not UTF-8 text"));
    }
    let path = PathBuf::from(source);
    let path = if path.is_absolute() {
        path
    } else {
        std::env::var_os("LAMBDA_TASK_ROOT")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(path)
    };
    tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| bootstrap_error(source, format!("cannot read {}: {e}", path.display())))
}

/// A Kubernetes Secret built from a bootstrap secret's value. Its `Debug` never shows the
/// data: only [`apply_secrets`] sends it.
pub struct SecretObject {
    /// `bootstrap_secrets[j]`, how errors name it.
    pub key: String,
    pub namespace: String,
    pub name: String,
    body: Value,
}

impl std::fmt::Debug for SecretObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret {}/{} ({}, data redacted)",
            self.namespace, self.name, self.key
        )
    }
}

/// Builds the Secret from a value read from Secrets Manager or SSM: with `key`, the whole
/// value under that key; without, a JSON object's members become the Secret's keys
/// (strings as they are, numbers and booleans as their JSON text), anything else is an
/// error naming `key`. `key` (`blueprint.bootstrap_secrets[j]`)
/// names the entry in errors; errors never hold the value.
pub fn secret_object(entry: &BootstrapSecret, key: &str, value: &str) -> Result<SecretObject> {
    let bad = |k: &str, message: String| FleetError::config(format!("{key}.{k}"), message);
    let mut data = serde_json::Map::new();
    let b64 = |v: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(v));
    match (entry.key.as_deref(), serde_json::from_str::<Value>(value)) {
        // A key named: the whole value under it, JSON or not (a `.dockerconfigjson`).
        (Some(k), _) => {
            data.insert(k.to_string(), b64(value));
        }
        (None, Ok(Value::Object(members))) => {
            for (k, v) in members {
                if !is_secret_key(&k) {
                    return Err(bad("from", format!("the JSON member `{k}` is not a Secret key (letters, digits, '-', '_', '.')")));
                }
                let text = match v {
                    Value::String(s) => s,
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => {
                        return Err(bad(
                            "from",
                            format!("the JSON member `{k}` is not a string, number or boolean"),
                        ))
                    }
                };
                data.insert(k, b64(&text));
            }
        }
        (None, _) => {
            return Err(bad(
                "key",
                "the value is not a JSON object: name the Secret key it goes under (key = \"...\")"
                    .into(),
            ));
        }
    }
    Ok(SecretObject {
        key: key.to_string(),
        namespace: entry.namespace.clone(),
        name: entry.name.clone(),
        body: serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": entry.name,
                "namespace": entry.namespace,
                "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
            },
            "type": "Opaque",
            "data": data,
        }),
    })
}

/// Reads a bootstrap secret's value: Secrets Manager's `SecretString`, or an SSM
/// parameter decrypted. Errors name the entry and the call, never a value.
pub async fn read_secret(
    sm: &aws_sdk_secretsmanager::Client,
    ssm: &aws_sdk_ssm::Client,
    entry: &BootstrapSecret,
    key: &str,
) -> Result<String> {
    let missing = || {
        FleetError::config(
            format!("{key}.from"),
            format!("`{}` has no string value", entry.from),
        )
    };
    match entry.source() {
        Some(SecretSource::SecretsManager(id)) => sm
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| FleetError::aws("Secrets Manager", "GetSecretValue", e))?
            .secret_string
            .ok_or_else(missing),
        Some(SecretSource::Ssm(name)) => ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| FleetError::aws("SSM", "GetParameter", e))?
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(missing),
        None => Err(FleetError::config(
            format!("{key}.from"),
            "neither secretsmanager: nor ssm:",
        )),
    }
}

/// Applies the Secrets, each after its namespace (created with server-side apply if it
/// is not there: the real API refuses a Secret in a namespace that does not exist).
pub async fn apply_secrets(client: &kube::Client, secrets: &[SecretObject]) -> Result<()> {
    let mut namespaces: Vec<&str> = secrets.iter().map(|s| s.namespace.as_str()).collect();
    namespaces.dedup();
    for ns in namespaces {
        let m = Manifest {
            source: "bootstrap_secrets".into(),
            index: 0,
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: ns.to_string(),
            body: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        };
        apply_one(client, &m).await?;
    }
    for s in secrets {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &s.namespace,
            &kube::api::ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Secret")),
        );
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&s.name, &params, &Patch::Apply(&s.body))
            .await
            .map_err(|e| match kube_error(e) {
                FleetError::Kube {
                    status,
                    reason,
                    message,
                } => FleetError::Kube {
                    status,
                    reason,
                    message: format!(
                        "bootstrap Secret {}/{} ({}): {message}",
                        s.namespace, s.name, s.key
                    ),
                },
                other => other,
            })?;
    }
    Ok(())
}

/// What one bootstrap pass achieved.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Every document applied.
    Applied(usize),
    /// CRDs applied but not Established yet; the rest waits for a later tick.
    WaitingForCrds(Vec<String>),
}

/// Applies the manifests in order. Errors name the document.
pub async fn apply(client: &kube::Client, manifests: Vec<Manifest>) -> Result<Progress> {
    let total = manifests.len();
    let (crds, namespaces, rest) = phases(manifests);
    for m in &crds {
        apply_one(client, m).await?;
    }
    let mut pending = Vec::new();
    let crd_api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    for m in &crds {
        let crd = crd_api
            .get(&m.name)
            .await
            .map_err(|e| named(m, kube_error(e)))?;
        if !is_established(&crd.data) {
            pending.push(m.name.clone());
        }
    }
    if !pending.is_empty() {
        return Ok(Progress::WaitingForCrds(pending));
    }
    for m in namespaces.iter().chain(rest.iter()) {
        apply_one(client, m).await?;
    }
    Ok(Progress::Applied(total))
}

fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

fn named(m: &Manifest, e: FleetError) -> FleetError {
    match e {
        FleetError::Kube {
            status,
            reason,
            message,
        } => FleetError::Kube {
            status,
            reason,
            message: format!("bootstrap {}: {message}", m.describe()),
        },
        other => bootstrap_error(&m.describe(), other),
    }
}

async fn apply_one(client: &kube::Client, m: &Manifest) -> Result<()> {
    let (group, version) = match m.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", m.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &m.kind);
    let (resource, caps) = pinned_kind(client, &gvk)
        .await
        .map_err(|e| named(m, kube_error(e)))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            m.namespace.as_deref().unwrap_or("default"),
            &resource,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&m.name, &params, &Patch::Apply(&m.body))
        .await
        .map_err(|e| named(m, kube_error(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLUX_LIKE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: kustomizations.kustomize.toolkit.fluxcd.io
spec:
  group: kustomize.toolkit.fluxcd.io
---
# an empty document between objects is allowed
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
"#;

    #[test]
    fn parses_and_orders_crds_then_namespaces_then_the_rest() {
        let docs = parse("gotk.yaml", FLUX_LIKE).expect("parses");
        assert_eq!(docs.len(), 3);
        assert_eq!(
            docs[2].describe(),
            "Kustomization flux-system/flux-system (gotk.yaml #3)"
        );
        let (crds, namespaces, rest) = phases(docs);
        assert_eq!(crds[0].name, "kustomizations.kustomize.toolkit.fluxcd.io");
        assert_eq!(namespaces[0].name, "flux-system");
        assert_eq!(rest[0].kind, "Kustomization");
    }

    #[test]
    fn bad_documents_are_named() {
        let err =
            parse("x.yaml", "apiVersion: v1\nkind: ConfigMap\n---\n[1, 2").expect_err("bad yaml");
        assert!(err.to_string().contains("x.yaml: not valid YAML"), "{err}");
        let err = parse("x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
            .expect_err("no name");
        assert!(
            err.to_string()
                .contains("x.yaml #1: not a Kubernetes object"),
            "{err}"
        );
    }

    fn entry(key: Option<&str>) -> BootstrapSecret {
        BootstrapSecret {
            namespace: "flux-system".into(),
            name: "flux-system".into(),
            from: "secretsmanager:fleet/flux-deploy-key".into(),
            key: key.map(String::from),
        }
    }

    #[test]
    fn a_json_object_becomes_the_secrets_keys_and_a_string_one_named_key() {
        let value = r#"{"identity": "-----BEGIN OPENSSH PRIVATE KEY-----CANARY", "known_hosts": "github.com ssh-ed25519 AAAA", "port": 22}"#;
        let s =
            secret_object(&entry(None), "blueprint.bootstrap_secrets[0]", value).expect("object");
        let data = &s.body["data"];
        let decode = |k: &str| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(data[k].as_str().expect("string"))
                    .expect("base64"),
            )
            .expect("utf-8")
        };
        assert_eq!(decode("known_hosts"), "github.com ssh-ed25519 AAAA");
        assert_eq!(decode("port"), "22");
        assert_eq!(s.body["metadata"]["namespace"], "flux-system");
        // Neither Debug nor an error shows the value.
        assert!(!format!("{s:?}").contains("CANARY"));
        let s = secret_object(&entry(Some("age.agekey")), "k", "AGE-SECRET-KEY-1CANARY")
            .expect("string");
        assert_eq!(s.body["data"].as_object().map(|o| o.len()), Some(1));
        let err = secret_object(
            &entry(None),
            "blueprint.bootstrap_secrets[1]",
            "AGE-SECRET-KEY-1CANARY",
        )
        .expect_err("no key");
        assert!(
            err.to_string()
                .contains("blueprint.bootstrap_secrets[1].key"),
            "{err}"
        );
        assert!(!err.to_string().contains("CANARY"));
        let err = secret_object(&entry(None), "k", r#"{"a b": "CANARY"}"#).expect_err("bad key");
        assert!(
            err.to_string().contains("`a b`") && !err.to_string().contains("CANARY"),
            "{err}"
        );
        let err =
            secret_object(&entry(None), "k", r#"{"a": {"nested": "CANARY"}}"#).expect_err("nested");
        assert!(!err.to_string().contains("CANARY"), "{err}");
    }

    #[test]
    fn established_condition() {
        assert!(is_established(
            &serde_json::json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}})
        ));
        assert!(!is_established(
            &serde_json::json!({"status": {"conditions": [{"type": "Established", "status": "False"}]}})
        ));
        assert!(!is_established(&serde_json::json!({})));
    }
}
