//! Unknown keys are errors: the TOML is read once for the config and once for the paths
//! of the keys nobody read, each named with where a key of that name belongs.

use crate::error::{FleetError, Result};

use super::*;

/// One step of a key's path: a table key or an array index.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// The config and the paths of the keys nobody reads.
pub(super) fn deserialize(text: &str) -> Result<(FleetConfig, Vec<Vec<Segment>>)> {
    let mut unknown = Vec::new();
    let de = toml::Deserializer::parse(text)
        .map_err(|e| FleetError::config("(file)", format!("not valid TOML: {}", e.message())))?;
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(segments(&path));
    let ignored = serde_ignored::Deserializer::new(de, &mut on_unknown);
    let config: FleetConfig = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let key = e.path().to_string();
        FleetError::config(key, e.into_inner().message().to_string())
    })?;
    Ok((config, unknown))
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    match path {
        Path::Root => vec![],
        Path::Seq { parent, index } => {
            let mut s = segments(parent);
            s.push(Segment::Index(*index));
            s
        }
        Path::Map { parent, key } => {
            let mut s = segments(parent);
            s.push(Segment::Key(key.clone()));
            s
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    }
}

/// `cluster[0].blueprint.protect`: the form every config error names keys in.
pub(super) fn key_name(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The table at `path` in `doc`, if there is one.
fn table_at<'a>(doc: &'a mut toml::Table, path: &[Segment]) -> Option<&'a mut toml::Table> {
    let mut value: Option<&mut toml::Value> = None;
    let mut table = Some(doc);
    for s in path {
        let next = match (s, table.take(), value.take()) {
            (Segment::Key(k), Some(t), _) => t.get_mut(k),
            (Segment::Index(i), None, Some(toml::Value::Array(a))) => a.get_mut(*i),
            _ => None,
        }?;
        match next {
            toml::Value::Table(t) => table = Some(t),
            other => value = Some(other),
        }
    }
    table
}

/// "unknown key", and where a key of that name would be read: the nearest enclosing
/// table where the same key, with the same value, is not unknown. Found by parsing a copy
/// with the key moved there, so the structs themselves are the list of known keys.
pub(super) fn unknown_key(doc: &toml::Table, path: &[Segment]) -> String {
    let (Some(Segment::Key(key)), Some(value)) = (path.last(), value_at(doc, path)) else {
        return "unknown key".into();
    };
    for level in (0..path.len().saturating_sub(1)).rev() {
        let enclosing = &path[..level];
        let mut copy = doc.clone();
        let Some(table) = table_at(&mut copy, enclosing) else {
            continue;
        };
        table.entry(key.clone()).or_insert(value.clone());
        let mut moved = enclosing.to_vec();
        moved.push(Segment::Key(key.clone()));
        let known = match toml::to_string(&copy)
            .map_err(|_| ())
            .map(|t| deserialize(&t))
        {
            Ok(Ok((_, unknown))) => !unknown.contains(&moved),
            // A type error there still means the key is read there.
            Ok(Err(FleetError::Config { key: k, .. })) => k == key_name(&moved),
            _ => false,
        };
        if known {
            return format!(
                "unknown key; did you mean {}? (in TOML a key after a [table] header belongs to that table: write it above the header)",
                key_name(&moved)
            );
        }
    }
    "unknown key".into()
}

fn value_at(doc: &toml::Table, path: &[Segment]) -> Option<toml::Value> {
    let (Segment::Key(key), parent) = path.split_last()? else {
        return None;
    };
    let mut copy = doc.clone();
    table_at(&mut copy, parent)?.get(key).cloned()
}
