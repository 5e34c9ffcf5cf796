//! The Grafana dashboards of `infra/grafana/` against the code that feeds them.
//!
//! `fleet.json` (CloudWatch) and `dora.json` (Prometheus, over the Pushgateway) are
//! imported as they are: a metric renamed in a function, or a typo in a dashboard, would
//! show as an empty panel and nothing else. So:
//!
//! - Both are dashboards Grafana imports: a title, a uid, a schema version, panels with an
//!   id and a `gridPos` inside the 24 columns, not overlapping, one data source to pick on
//!   import (`__inputs`) that every panel and query uses, every `$variable` defined.
//! - CloudWatch: the truth is the code. The namespaces are the functions' own
//!   `METRICS_NAMESPACE` constants. The metric names and their dimension names are read
//!   from the source of the function that sends them: the `fn` whose body calls
//!   `metrics::put` or `put_or_warn` with `METRICS_NAMESPACE`, each
//!   `datum("Name", value, unit, &dims)` in it (or a closure over `datum` called with the
//!   name), its dimensions from the `[("Key", value), …]` it is given. The names live only
//!   as string literals in those bodies, so the source is read as tokens (comments,
//!   strings, nesting: formatting does not matter), and a shape the reader does not know
//!   fails loudly instead of finding nothing; what it finds must cover
//!   `fleet_shared::metrics::SUMMARY`, so it cannot go blind quietly. (Running the four
//!   functions against moto would see the same names at far more cost; their own tests do
//!   that for some.) Besides those: the template's log metric filters (whose log line the
//!   function must write) and Lambda's `Errors` by `FunctionName` for each function of the
//!   template.
//!   Every query of `fleet.json` names such a metric with exactly its dimension names (the
//!   queries match exactly, so a missing or extra dimension would find nothing), and every
//!   metric sent has a panel. The template's own dashboard names only metrics sent, all of
//!   `SUMMARY` among them, with the dimension names and values `fleet.json` uses for them.
//! - Prometheus: the truth is `dora_aggregator::handler::exposition`, the function that
//!   builds the text the aggregator pushes, run here on a report with every gauge present,
//!   and the grouping key of its push URL (`/metrics/job/fleet_dora`, in its source). Every
//!   metric and label a query, a variable or a legend of `dora.json` names is one of those
//!   (or the Pushgateway's own `push_time_seconds`), every `job` matcher is the pushed
//!   job, and every gauge pushed has a panel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fleet_tests::workspace_root;
use serde_json::Value;

/// Grafana's grid is 24 columns wide.
const GRID_COLUMNS: u64 = 24;

fn read(relative: &str) -> String {
    let path = workspace_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard(name: &str) -> Value {
    serde_json::from_str(&read(&format!("infra/grafana/{name}")))
        .unwrap_or_else(|e| panic!("infra/grafana/{name} is not JSON: {e}"))
}

fn template() -> Value {
    serde_saphyr::from_str(&read("infra/template.yaml")).expect("the template is YAML")
}

// ------------------------------------------------------------------ the dashboard model

/// Every panel, those inside collapsed rows too.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every query of a dashboard, with its panel's title.
fn targets(d: &Value) -> Vec<(String, &Value)> {
    panels(d)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (title.clone(), t))
        })
        .collect()
}

/// Every string in `v`, however deep.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s.as_str()),
        Value::Array(items) => {
            for x in items {
                strings(x, out);
            }
        }
        Value::Object(fields) => {
            for x in fields.values() {
                strings(x, out);
            }
        }
        _ => {}
    }
}

/// The variables a string refers to (`$name`, `${name}`, `${name:format}`), not Grafana's
/// own (`$__interval`) nor CloudWatch's dynamic labels (`${PROP('Dim.Cluster')}`).
fn variables_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let braced = rest.starts_with('{');
        let body = if braced { &rest[1..] } else { rest };
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let dynamic_label = braced && body[name.len()..].starts_with('(');
        if !name.is_empty() && !name.starts_with("__") && !dynamic_label {
            out.push(name);
        }
    }
    out
}

/// What Grafana needs to import `d` as it is, every query on the data source of the
/// import's input `input` (`DS_CLOUDWATCH`), of the plugin `plugin` (`cloudwatch`).
fn check_importable(name: &str, d: &Value, input: &str, plugin: &str) {
    let title = d["title"].as_str().unwrap_or_default();
    assert!(!title.trim().is_empty(), "{name}: a title");
    let uid = d["uid"].as_str().unwrap_or_default();
    assert!(
        !uid.is_empty()
            && uid.len() <= 40
            && uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{name}: uid {uid:?} (at most 40 of letters, digits, - and _)"
    );
    assert!(
        d["id"].is_null(),
        "{name}: no id (Grafana gives one on import)"
    );
    let schema = d["schemaVersion"].as_u64().unwrap_or_default();
    assert!(
        schema >= 36,
        "{name}: schemaVersion {schema} (data sources by uid)"
    );

    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert_eq!(inputs.len(), 1, "{name}: one data source to pick on import");
    assert_eq!(inputs[0]["name"], input, "{name}: __inputs");
    assert_eq!(inputs[0]["type"], "datasource", "{name}: __inputs");
    assert_eq!(inputs[0]["pluginId"], plugin, "{name}: __inputs");
    let requires = d["__requires"].as_array().expect("__requires");
    let required =
        |kind: &str, id: &str| requires.iter().any(|r| r["type"] == kind && r["id"] == id);
    assert!(
        required("datasource", plugin),
        "{name}: __requires {plugin}"
    );
    let ds = serde_json::json!({"type": plugin, "uid": format!("${{{input}}}")});

    let mut ids = BTreeSet::new();
    for p in panels(d) {
        let title = p["title"].as_str().unwrap_or_default();
        let kind = p["type"].as_str().unwrap_or_default();
        assert!(
            !title.is_empty() && !kind.is_empty(),
            "{name}: a panel without a title or a type: {p}"
        );
        let id = p["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {title}: an id"));
        assert!(ids.insert(id), "{name}: panel id {id} twice");
        let [x, _, w, h] = grid(name, p);
        assert!(
            w >= 1 && h >= 1 && x + w <= GRID_COLUMNS,
            "{name}: {title}: gridPos {}",
            p["gridPos"]
        );
        if kind == "row" {
            continue;
        }
        assert!(required("panel", kind), "{name}: __requires panel {kind}");
        assert_eq!(p["datasource"], ds, "{name}: {title}: the data source");
        let queries = p["targets"].as_array().expect("targets");
        assert!(!queries.is_empty(), "{name}: {title}: no query");
        let mut refs = BTreeSet::new();
        for t in queries {
            let r = t["refId"].as_str().unwrap_or_default();
            assert!(
                !r.is_empty() && refs.insert(r),
                "{name}: {title}: refId {r:?} missing or twice"
            );
            assert_eq!(t["datasource"], ds, "{name}: {title} {r}: the data source");
        }
    }

    // The top level's panels (rows' collapsed panels sit under their row) do not overlap.
    let boxes: Vec<(&str, [u64; 4])> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| (p["title"].as_str().unwrap_or_default(), grid(name, p)))
        .collect();
    assert!(!boxes.is_empty(), "{name}: no panel");
    for (i, &(a, [ax, ay, aw, ah])) in boxes.iter().enumerate() {
        for &(b, [bx, by, bw, bh]) in &boxes[i + 1..] {
            let apart = ax + aw <= bx || bx + bw <= ax || ay + ah <= by || by + bh <= ay;
            assert!(apart, "{name}: {a:?} and {b:?} overlap");
        }
    }

    // Every variable is defined; every data source reference is the input.
    let list = d["templating"]["list"].as_array().expect("templating.list");
    let defined: BTreeSet<&str> = list.iter().filter_map(|v| v["name"].as_str()).collect();
    for v in list {
        if !v["datasource"].is_null() {
            assert_eq!(v["datasource"], ds, "{name}: variable {}", v["name"]);
        }
    }
    let mut texts = Vec::new();
    strings(&d["panels"], &mut texts);
    strings(&d["templating"], &mut texts);
    for text in texts {
        for var in variables_in(text) {
            if var.starts_with("DS_") {
                assert_eq!(var, input, "{name}: {text:?}: not the import's data source");
            } else {
                assert!(
                    defined.contains(var.as_str()),
                    "{name}: {text:?}: ${var} is not a variable of the dashboard"
                );
            }
        }
    }
}

/// A panel's `gridPos` as `[x, y, w, h]`.
fn grid(name: &str, p: &Value) -> [u64; 4] {
    ["x", "y", "w", "h"].map(|k| {
        p["gridPos"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {}: gridPos.{k}", p["title"]))
    })
}

#[test]
fn both_dashboards_import_as_they_are() {
    let fleet = dashboard("fleet.json");
    check_importable("fleet.json", &fleet, "DS_CLOUDWATCH", "cloudwatch");
    let dora = dashboard("dora.json");
    check_importable("dora.json", &dora, "DS_PROMETHEUS", "prometheus");
    assert_ne!(fleet["uid"], dora["uid"], "one uid each");

    // CloudWatch: the region picked once for the dashboard, the data source's own by
    // default.
    let region = fleet["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .find(|v| v["name"] == "region")
        .expect("a region variable");
    assert_eq!(region["current"]["value"], "default");
    for (panel, t) in targets(&fleet) {
        assert_eq!(t["region"], "$region", "{panel}");
    }
}

// ------------------------------------------------------------------ reading Rust source

/// A token of Rust (or, below, PromQL) source: comments and whitespace are gone.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word: an identifier, a keyword, or a number.
    Ident(String),
    /// A string literal's text, escapes resolved.
    Str(String),
    Punct(char),
}

fn is_ident(t: &Tok, word: &str) -> bool {
    matches!(t, Tok::Ident(w) if w == word)
}

/// A string literal's text from `i` (just after the opening quote), and the index just
/// after its closing quote.
fn string_literal(c: &[char], mut i: usize, quote: char) -> (String, usize) {
    let mut s = String::new();
    while i < c.len() && c[i] != quote {
        if c[i] == '\\' {
            i += 1;
            match c.get(i) {
                Some('n') => s.push('\n'),
                Some('t') => s.push('\t'),
                // A line continuation: the next line's indentation is not in the string.
                Some('\n') => {
                    while c.get(i + 1).is_some_and(|x| x.is_whitespace()) {
                        i += 1;
                    }
                }
                Some(&x) => s.push(x),
                None => {}
            }
        } else {
            s.push(c[i]);
        }
        i += 1;
    }
    (s, i + 1)
}

/// Rust source as tokens.
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (s, next) = string_literal(&c, i + 1, '"');
            out.push(Tok::Str(s));
            i = next;
        } else if ch == '\'' {
            // A char literal ('a', '"', '\n', '\u{2014}'), else a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push(Tok::Punct('\''));
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if (word == "r" || word == "br") && matches!(c.get(i), Some('"' | '#')) {
                let mut hashes = 0;
                while c.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(i + hashes) == Some(&'"') {
                    // A raw string: r"…", r#"…"#.
                    let start = i + hashes + 1;
                    let closes = |at: usize| {
                        c[at] == '"' && (1..=hashes).all(|k| c.get(at + k) == Some(&'#'))
                    };
                    let mut end = start;
                    while end < c.len() && !closes(end) {
                        end += 1;
                    }
                    out.push(Tok::Str(c[start..end.min(c.len())].iter().collect()));
                    i = end + 1 + hashes;
                    continue;
                }
                // r#ident: a raw identifier, lexed on the next turn without its `r#`.
                i += hashes;
                continue;
            }
            out.push(Tok::Ident(word));
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// The index of the bracket closing the one at `open`.
fn closing(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced brackets from {:?}", toks.get(open))
}

/// The items between the bracket at `open` and its closing one, split at their commas:
/// a call's arguments, an array's elements.
fn items(toks: &[Tok], open: usize) -> Vec<&[Tok]> {
    let close = closing(toks, open);
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = open + 1;
    for (i, t) in toks.iter().enumerate().take(close).skip(open + 1) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < close {
        out.push(&toks[start..close]);
    }
    out
}

/// The tokens without `#[cfg(test)]` items (the unit tests' modules and functions).
fn without_tests(toks: Vec<Tok>) -> Vec<Tok> {
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !toks[i..].starts_with(&cfg_test) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        // The item runs to its `;`, or to the end of its first `{ … }` block.
        i += cfg_test.len();
        let mut depth = 0i32;
        while i < toks.len() {
            match &toks[i] {
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth -= 1,
                Tok::Punct(';') if depth == 0 => break,
                Tok::Punct('{') if depth == 0 => {
                    i = closing(&toks, i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    out
}

/// Each `fn` with a body: its name, and its body from `{` to `}`.
fn functions(toks: &[Tok]) -> Vec<(String, &[Tok])> {
    let mut out = Vec::new();
    for (i, pair) in toks.windows(2).enumerate() {
        let [Tok::Ident(keyword), Tok::Ident(name)] = pair else {
            continue;
        };
        if keyword != "fn" {
            continue;
        }
        // The signature runs to the body's `{`, or to `;` for a declaration.
        let mut depth = 0i32;
        let mut body = None;
        for (j, t) in toks.iter().enumerate().skip(i + 2) {
            match t {
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth -= 1,
                Tok::Punct(';') if depth == 0 => break,
                Tok::Punct('{') if depth == 0 => {
                    body = Some(j);
                    break;
                }
                _ => {}
            }
        }
        if let Some(open) = body {
            out.push((name.clone(), &toks[open..=closing(toks, open)]));
        }
    }
    out
}

/// The `let` bindings of a body: where, the name, the value's tokens (to its `;`).
/// Patterns (`let (a, b) = …`, `if let Some(x) = …`) are not read: no metric is made
/// through one.
fn lets(body: &[Tok]) -> Vec<(usize, String, &[Tok])> {
    let mut out = Vec::new();
    for (i, t) in body.iter().enumerate() {
        if !is_ident(t, "let") {
            continue;
        }
        let mut j = i + 1;
        if body.get(j).is_some_and(|t| is_ident(t, "mut")) {
            j += 1;
        }
        let Some(Tok::Ident(name)) = body.get(j) else {
            continue;
        };
        if matches!(body.get(j + 1), Some(Tok::Punct('(' | '{'))) {
            continue;
        }
        let Some(eq) = (j + 1..body.len()).find(|&k| body[k] == Tok::Punct('=')) else {
            continue;
        };
        let mut depth = 0i32;
        let mut end = body.len();
        for (k, t) in body.iter().enumerate().skip(eq + 1) {
            match t {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => {
                    depth -= 1;
                    if depth < 0 {
                        end = k;
                        break;
                    }
                }
                Tok::Punct(';') if depth == 0 => {
                    end = k;
                    break;
                }
                _ => {}
            }
        }
        out.push((i, name.clone(), &body[eq + 1..end]));
    }
    out
}

/// The calls in `body` of the shared `metrics::put` or `put_or_warn` (by a path: a closure
/// named `put` is not one), each as its arguments.
fn shared_puts(body: &[Tok]) -> Vec<Vec<&[Tok]>> {
    let mut out = Vec::new();
    for (k, w) in body.windows(4).enumerate() {
        if w[0] == Tok::Punct(':')
            && w[1] == Tok::Punct(':')
            && (is_ident(&w[2], "put") || is_ident(&w[2], "put_or_warn"))
            && w[3] == Tok::Punct('(')
        {
            out.push(items(body, k + 3));
        }
    }
    out
}

/// The dimension names of a `datum`'s last argument: `&[]`, `&[("Key", value), …]`, or
/// `&dims` bound so by a `let` before `at`.
fn dimension_names(
    arg: &[Tok],
    bindings: &[(usize, String, &[Tok])],
    at: usize,
    what: &str,
) -> BTreeSet<String> {
    let arg = match arg.first() {
        Some(Tok::Punct('&')) => &arg[1..],
        _ => arg,
    };
    let array: &[Tok] = match arg {
        [Tok::Punct('['), .., Tok::Punct(']')] => arg,
        [Tok::Ident(name)] => bindings
            .iter()
            .rev()
            .find(|(p, n, _)| *p < at && n == name)
            .map(|(_, _, value)| *value)
            .unwrap_or_else(|| panic!("{what}: no `let {name}` before the datum")),
        _ => panic!("{what}: dimensions {arg:?} this test cannot read"),
    };
    assert!(
        array.first() == Some(&Tok::Punct('[')) && closing(array, 0) == array.len() - 1,
        "{what}: dimensions {array:?} this test cannot read"
    );
    items(array, 0)
        .into_iter()
        .map(|pair| match pair {
            [Tok::Punct('('), Tok::Str(key), Tok::Punct(','), ..] => key.clone(),
            _ => panic!("{what}: a dimension {pair:?} this test cannot read"),
        })
        .collect()
}

/// Metric name -> each set of dimension names it is made with, in the body of a function
/// that sends metrics: `datum("Name", value, unit, dims)` calls, and calls with the name
/// of a closure that calls `datum` (`let cluster = |name, v| datum(name, v, unit, &dims)`).
fn data_in(body: &[Tok], what: &str) -> BTreeMap<String, BTreeSet<BTreeSet<String>>> {
    let bindings = lets(body);
    let mut out: BTreeMap<String, BTreeSet<BTreeSet<String>>> = BTreeMap::new();
    for (i, w) in body.windows(3).enumerate() {
        let [Tok::Ident(callee), Tok::Punct('('), Tok::Str(name)] = w else {
            continue;
        };
        let what = format!("{what}: {name}");
        let dims = if callee == "datum" {
            let args = items(body, i + 1);
            let dims = args
                .get(3)
                .unwrap_or_else(|| panic!("{what}: datum's 4 arguments"));
            dimension_names(dims, &bindings, i, &what)
        } else if let Some((at, _, value)) = bindings
            .iter()
            .rev()
            .find(|(p, n, _)| *p < i && n == callee)
        {
            let Some(d) = value
                .windows(2)
                .position(|w| is_ident(&w[0], "datum") && w[1] == Tok::Punct('('))
            else {
                continue;
            };
            let args = items(value, d + 1);
            let dims = args
                .get(3)
                .unwrap_or_else(|| panic!("{what}: datum's 4 arguments"));
            dimension_names(dims, &bindings, *at, &what)
        } else {
            continue;
        };
        out.entry(name.clone()).or_default().insert(dims);
    }
    out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// (namespace, metric name) -> each set of dimension names it is sent with.
type Sent = BTreeMap<(String, String), BTreeSet<BTreeSet<String>>>;

/// The functions that send custom metrics, by crate, each to its own `METRICS_NAMESPACE`.
fn namespaces() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("cost-reporter", cost_reporter::handler::METRICS_NAMESPACE),
        ("dns-updater", dns_updater::handler::METRICS_NAMESPACE),
        (
            "dora-aggregator",
            dora_aggregator::handler::METRICS_NAMESPACE,
        ),
        ("spot-drainer", spot_drainer::handler::METRICS_NAMESPACE),
    ])
}

/// What the functions' code sends to CloudWatch, and the string literals of each crate.
fn sent_by_code() -> (Sent, BTreeMap<String, BTreeSet<String>>) {
    let namespaces = namespaces();
    let mut sent = Sent::new();
    let mut literals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut senders = BTreeSet::new();
    for entry in std::fs::read_dir(workspace_root().join("functions")).expect("functions/") {
        let dir = entry.expect("functions/ entry").path();
        let krate = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let toks = without_tests(lex(&text));
            literals
                .entry(krate.clone())
                .or_default()
                .extend(toks.iter().filter_map(|t| match t {
                    Tok::Str(s) => Some(s.clone()),
                    _ => None,
                }));
            for (name, body) in functions(&toks) {
                let puts = shared_puts(body);
                if puts.is_empty() {
                    continue;
                }
                let what = format!("{}: fn {name}", file.display());
                let namespace = Tok::Ident("METRICS_NAMESPACE".into());
                for args in &puts {
                    assert!(
                        args.iter().any(|a| a.contains(&namespace)),
                        "{what}: sends metrics to another namespace than METRICS_NAMESPACE: teach this test where"
                    );
                }
                let ns = namespaces.get(krate.as_str()).unwrap_or_else(|| {
                    panic!(
                        "{what}: {krate} sends metrics: add its METRICS_NAMESPACE to namespaces()"
                    )
                });
                let data = data_in(body, &what);
                assert!(
                    !data.is_empty(),
                    "{what}: calls metrics::put, but no datum(\"Name\", …) this test can read is in the same function"
                );
                for (metric, dims) in data {
                    sent.entry((ns.to_string(), metric))
                        .or_default()
                        .extend(dims);
                }
                senders.insert(krate.clone());
            }
        }
    }
    let expected: BTreeSet<String> = namespaces.keys().map(|k| k.to_string()).collect();
    assert_eq!(senders, expected, "the crates that send custom metrics");
    for (ns, name) in fleet_shared::metrics::SUMMARY {
        assert!(
            sent.contains_key(&(ns.to_string(), name.to_string())),
            "{ns} {name} is in SUMMARY, yet not found in the code: this test's reader went blind"
        );
    }
    (sent, literals)
}

/// A function of the template: its crate, its logical id, its `FunctionName` (`Fn::Sub`).
struct Function {
    binary: String,
    logical_id: String,
    name: String,
}

fn template_functions(t: &Value) -> Vec<Function> {
    t["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| Function {
            binary: r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("BuildProperties.Binary")
                .to_string(),
            logical_id: id.clone(),
            name: r["Properties"]["FunctionName"]["Fn::Sub"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: FunctionName as Fn::Sub"))
                .to_string(),
        })
        .collect()
}

/// Everything sent: the functions' custom metrics, the template's log metric filters
/// (checked against the log line the function writes) and Lambda's `Errors` of each
/// function.
fn sent(t: &Value) -> Sent {
    let (mut sent, literals) = sent_by_code();
    let functions = template_functions(t);
    let resources = t["Resources"].as_object().expect("resources");
    for (id, r) in resources {
        if r["Type"] != "AWS::Logs::MetricFilter" {
            continue;
        }
        let group = r["Properties"]["LogGroupName"]["Ref"]
            .as_str()
            .unwrap_or_default();
        let binary = functions
            .iter()
            .find(|f| {
                resources[&f.logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] == group
            })
            .map(|f| f.binary.clone())
            .unwrap_or_else(|| panic!("{id}: the log group of a function"));
        // `{ $.fields.message = "storing webhook events failed" }`: a line the code logs.
        let pattern = r["Properties"]["FilterPattern"]
            .as_str()
            .unwrap_or_default();
        let message = pattern.split('"').nth(1).unwrap_or_default();
        assert!(
            literals.get(&binary).is_some_and(|l| l.contains(message)),
            "{id}: {binary} never logs {message:?}"
        );
        for m in r["Properties"]["MetricTransformations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let dims: BTreeSet<String> = m["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["Key"].as_str().map(String::from))
                .collect();
            let key = (
                m["MetricNamespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["MetricName"].as_str().unwrap_or_default().to_string(),
            );
            sent.entry(key).or_default().insert(dims);
        }
    }
    sent.entry(("AWS/Lambda".into(), "Errors".into()))
        .or_default()
        .insert(BTreeSet::from(["FunctionName".to_string()]));
    sent
}

// ------------------------------------------------------------------ CloudWatch

/// A query of `fleet.json`.
struct Query {
    panel: String,
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
}

/// The queries of `fleet.json`, each checked for the fields Grafana's CloudWatch query
/// editor (builder mode, exact match) needs.
fn fleet_queries(d: &Value) -> Vec<Query> {
    targets(d)
        .into_iter()
        .map(|(panel, t)| {
            let r = t["refId"].as_str().unwrap_or_default();
            let at = format!("{panel} {r}");
            assert_eq!(t["queryMode"], "Metrics", "{at}");
            assert_eq!(t["metricQueryType"], 0, "{at}: a metric search");
            assert_eq!(t["metricEditorMode"], 0, "{at}: the builder");
            assert_eq!(t["matchExact"].as_bool(), Some(true), "{at}");
            let statistic = t["statistic"].as_str().unwrap_or_default();
            assert!(
                ["Average", "Sum", "Minimum", "Maximum", "SampleCount"].contains(&statistic)
                    || statistic
                        .strip_prefix('p')
                        .is_some_and(|p| p.parse::<f64>().is_ok()),
                "{at}: statistic {statistic:?}"
            );
            let period = t["period"].as_str().unwrap_or_default();
            assert!(
                period.is_empty() || period.parse::<u32>().is_ok_and(|p| p > 0 && p % 60 == 0),
                "{at}: period {period:?} (seconds, a multiple of 60)"
            );
            let dimensions = t["dimensions"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: dimensions"))
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: {k}: one value or a variable"));
                    (k.clone(), v.to_string())
                })
                .collect();
            Query {
                panel: at,
                namespace: t["namespace"].as_str().unwrap_or_default().to_string(),
                metric: t["metricName"].as_str().unwrap_or_default().to_string(),
                dimensions,
            }
        })
        .collect()
}

/// A metric the template's dashboard reads: its dimensions with their values (`None`: any,
/// a SEARCH's).
struct Read {
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, Option<String>>,
}

/// The metrics of the template's CloudWatch dashboard: SEARCH expressions
/// (`{Fleet/Cost,Cluster} MetricName="HoursUp"`) and metric arrays
/// (`["Fleet/DORA", "LeadTimeHours", "Service", "all", …]`, where `"."` repeats the previous
/// array's item at that place and `"..."` its items before those that follow).
fn template_dashboard(t: &Value) -> Vec<Read> {
    let dashboards: Vec<&Value> = t["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Dashboard")
        .collect();
    assert_eq!(
        dashboards.len(),
        1,
        "one CloudWatch dashboard in the template"
    );
    let text = dashboards[0]["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody as Fn::Sub");
    // Its `${…}` substitutions are all inside JSON strings.
    let body: Value = serde_json::from_str(text).expect("the dashboard body is JSON");
    let mut out = Vec::new();
    for w in body["widgets"].as_array().expect("widgets") {
        let mut previous: Vec<String> = Vec::new();
        for row in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().expect("a metric row is an array");
            if let Some(expression) = row.first().and_then(|m| m["expression"].as_str()) {
                out.push(search(expression));
                continue;
            }
            let given: Vec<String> = row
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            let full: Vec<String> = if given.first().map(String::as_str) == Some("...") {
                let keep = previous.len().saturating_sub(given.len() - 1);
                previous[..keep]
                    .iter()
                    .chain(&given[1..])
                    .cloned()
                    .collect()
            } else {
                given
                    .iter()
                    .enumerate()
                    .map(|(k, g)| match g.as_str() {
                        "." => previous.get(k).cloned().unwrap_or_default(),
                        _ => g.clone(),
                    })
                    .collect()
            };
            assert!(
                full.len() >= 2 && full.len() % 2 == 0,
                "a metric row: namespace, name, then dimension pairs: {full:?}"
            );
            out.push(Read {
                namespace: full[0].clone(),
                metric: full[1].clone(),
                dimensions: full[2..]
                    .chunks(2)
                    .map(|kv| (kv[0].clone(), Some(kv[1].clone())))
                    .collect(),
            });
            previous = full;
        }
    }
    out
}

/// `SEARCH('{Fleet/Cost,Cluster} MetricName="HoursUp"', 'Maximum', 86400)`.
fn search(expression: &str) -> Read {
    let schema = expression
        .split_once('{')
        .and_then(|(_, r)| r.split_once('}'))
        .map(|(s, _)| s)
        .unwrap_or_else(|| panic!("a SEARCH schema in {expression}"));
    let mut parts = schema.split(',').map(str::trim);
    let namespace = parts.next().unwrap_or_default().to_string();
    let dimensions = parts.map(|k| (k.to_string(), None)).collect();
    let metric = expression
        .split_once("MetricName=\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(m, _)| m.to_string())
        .unwrap_or_else(|| panic!("a MetricName in {expression}"));
    Read {
        namespace,
        metric,
        dimensions,
    }
}

/// Whether `dims` (names) is one of the ways `key` is sent.
fn sent_with(sent: &Sent, key: &(String, String), dims: &BTreeSet<String>) -> bool {
    sent.get(key).is_some_and(|ways| ways.contains(dims))
}

#[test]
fn the_fleet_dashboard_reads_what_the_functions_send() {
    let t = template();
    let sent = sent(&t);
    let d = dashboard("fleet.json");
    let names: BTreeSet<String> = template_functions(&t).into_iter().map(|f| f.name).collect();
    for q in fleet_queries(&d) {
        let key = (q.namespace.clone(), q.metric.clone());
        let dims: BTreeSet<String> = q.dimensions.keys().cloned().collect();
        assert!(
            sent_with(&sent, &key, &dims),
            "{}: {} {} by {dims:?} is not sent; sent: {:?}",
            q.panel,
            q.namespace,
            q.metric,
            sent.get(&key)
        );
        // Lambda's metrics: the functions as the template names them.
        if let Some(function) = q.dimensions.get("FunctionName") {
            let as_in_template = function.replace("${stack}", "${AWS::StackName}");
            assert!(
                names.contains(&as_in_template),
                "{}: FunctionName {function:?} is none of the template's {names:?}",
                q.panel
            );
        }
    }
    // A variable that lists dimension values lists those of a metric sent with them.
    for v in d["templating"]["list"].as_array().expect("templating.list") {
        let query = &v["query"];
        if query["queryType"] != "dimensionValues" {
            continue;
        }
        let key = (
            query["namespace"].as_str().unwrap_or_default().to_string(),
            query["metricName"].as_str().unwrap_or_default().to_string(),
        );
        let dimension = query["dimensionKey"].as_str().unwrap_or_default();
        assert!(
            sent.get(&key)
                .is_some_and(|ways| ways.iter().any(|w| w.contains(dimension))),
            "variable {}: {key:?} is not sent with {dimension}",
            v["name"]
        );
    }
}

#[test]
fn every_metric_sent_is_on_the_fleet_dashboard_as_the_template_dashboard_reads_it() {
    let t = template();
    let sent = sent(&t);
    let d = dashboard("fleet.json");
    let queries = fleet_queries(&d);
    let shown: BTreeSet<(String, String)> = queries
        .iter()
        .map(|q| (q.namespace.clone(), q.metric.clone()))
        .collect();
    for (ns, metric) in sent.keys() {
        assert!(
            shown.contains(&(ns.clone(), metric.clone())),
            "{ns} {metric} is sent but on no panel of fleet.json"
        );
    }
    let functions = template_functions(&t);
    for f in &functions {
        let name = f.name.replace("${AWS::StackName}", "${stack}");
        assert!(
            queries
                .iter()
                .any(|q| q.metric == "Errors" && q.dimensions.get("FunctionName") == Some(&name)),
            "fleet.json: no Errors of {} ({name})",
            f.binary
        );
    }

    // The template's dashboard: only metrics sent, SUMMARY's all there, read as fleet.json
    // reads them.
    let read = template_dashboard(&t);
    for r in &read {
        let key = (r.namespace.clone(), r.metric.clone());
        let dims: BTreeSet<String> = r.dimensions.keys().cloned().collect();
        assert!(
            sent_with(&sent, &key, &dims),
            "the template's dashboard reads {key:?} by {dims:?}, which is not sent; sent: {:?}",
            sent.get(&key)
        );
        for q in queries
            .iter()
            .filter(|q| q.namespace == r.namespace && q.metric == r.metric)
        {
            let names: BTreeSet<String> = q.dimensions.keys().cloned().collect();
            assert_eq!(
                names, dims,
                "{}: as the template's dashboard reads it",
                q.panel
            );
            for (k, v) in &r.dimensions {
                // Literal values only: `${DnsUpdater}` is the template's own reference.
                if let Some(v) = v.as_deref().filter(|v| !v.starts_with("${")) {
                    assert_eq!(
                        q.dimensions.get(k).map(String::as_str),
                        Some(v),
                        "{}: {k} as the template's dashboard reads it",
                        q.panel
                    );
                }
            }
        }
    }
    for (ns, metric) in fleet_shared::metrics::SUMMARY {
        assert!(
            read.iter().any(|r| r.namespace == ns && r.metric == metric),
            "{ns} {metric} (SUMMARY) is not on the template's dashboard"
        );
    }
    // Its function errors: every function, by its own reference.
    for f in &functions {
        let reference = format!("${{{}}}", f.logical_id);
        assert!(
            read.iter().any(|r| r.namespace == "AWS/Lambda"
                && r.metric == "Errors"
                && r.dimensions.get("FunctionName").and_then(|v| v.as_deref())
                    == Some(reference.as_str())),
            "the template's dashboard: no Errors of {}",
            f.logical_id
        );
    }
}

#[test]
fn the_source_reader_finds_each_datum_with_its_dimensions() {
    let src = r#"
        async fn publish(&self, r: &Report) {
            // datum("Commented", 1.0, StandardUnit::None, &[]) is not code.
            let fleet = |name: &str, v: f64| metrics::datum(name, v, StandardUnit::None, &[]);
            let mut data = vec![fleet("Total", r.total)];
            for c in &r.clusters {
                let dims = [("Cluster", c.name.as_str()), ("Env", "x")];
                let cluster = |name: &str, v: f64| metrics::datum(name, v, StandardUnit::None, &dims);
                data.push(cluster("PerCluster", c.cost));
            }
            data.push(datum(
                "Direct",
                1.0,
                StandardUnit::Count,
                &[("Zone", "z")],
            ));
            tracing::info!("{}", format!("Not{}", 1));
            metrics::put_or_warn(&self.cloudwatch, level, METRICS_NAMESPACE, data).await;
        }
        #[cfg(test)]
        mod tests {
            fn t() { metrics::put(&c, l, OTHER, vec![datum("TestOnly", 1.0, U, &[])]); }
        }
    "#;
    let toks = without_tests(lex(src));
    let fns = functions(&toks);
    assert_eq!(fns.len(), 1, "the test module is gone");
    let (name, body) = &fns[0];
    assert_eq!(name, "publish");
    assert_eq!(shared_puts(body).len(), 1);
    let set = |names: &[&str]| -> BTreeSet<BTreeSet<String>> {
        BTreeSet::from([names.iter().map(|n| n.to_string()).collect()])
    };
    let want = BTreeMap::from([
        ("Direct".to_string(), set(&["Zone"])),
        ("PerCluster".to_string(), set(&["Cluster", "Env"])),
        ("Total".to_string(), set(&[])),
    ]);
    assert_eq!(data_in(body, "sample"), want);
}

// ------------------------------------------------------------------ Prometheus

/// What dora-aggregator pushes: each gauge with its label names, from the exposition it
/// builds for a report in which every gauge has a value.
fn pushed() -> BTreeMap<String, BTreeSet<String>> {
    use dora_aggregator::handler::{exposition, ServiceReport};
    use dora_aggregator::metrics::{Tally, Window};
    let window = Window {
        from: "2026-11-01T00:00:00Z".parse().expect("from"),
        to: "2026-12-01T00:00:00Z".parse().expect("to"),
    };
    let tally = Tally {
        successes: 4,
        failures: 1,
        failed_by_incident: 1,
        rework: 1,
        lead_times_hours: vec![2.0, 30.0],
        recoveries_hours: vec![1.5],
        incidents: vec![],
    };
    let report = ServiceReport {
        name: "web".into(),
        environment: "production".into(),
        metrics: tally.metrics(&window),
    };
    let text = exposition(std::iter::once(&report));
    let mut declared = BTreeSet::new();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.insert(
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let (name, labels) = sample(line);
            out.entry(name).or_default().extend(labels);
        }
    }
    assert!(!declared.is_empty(), "no gauge in {text}");
    let sampled: BTreeSet<String> = out.keys().cloned().collect();
    assert_eq!(
        declared, sampled,
        "a sample of every gauge in this report:\n{text}"
    );
    out
}

/// A sample line's metric name and label names: `name{k="v",…} value`.
fn sample(line: &str) -> (String, Vec<String>) {
    let Some((name, mut rest)) = line.split_once('{') else {
        return (
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            Vec::new(),
        );
    };
    let mut labels = Vec::new();
    while let Some((key, value)) = rest.split_once("=\"") {
        labels.push(key.trim_start_matches([',', ' ']).to_string());
        // The value runs to the first quote not escaped.
        let mut escaped = false;
        let end = value
            .char_indices()
            .find(|&(_, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close
            })
            .map(|(k, _)| k)
            .unwrap_or_else(|| panic!("an unclosed label value in {line}"));
        rest = &value[end + 1..];
        if rest.starts_with('}') {
            break;
        }
    }
    (name.to_string(), labels)
}

/// The Pushgateway's grouping key of the aggregator's push: the label pairs of its URL's
/// path after `/metrics/` (`job/fleet_dora`), from the string literal in its source.
fn grouping() -> BTreeMap<String, String> {
    let toks = without_tests(lex(&read("functions/dora-aggregator/src/handler.rs")));
    let urls: Vec<String> = toks
        .into_iter()
        .filter_map(|t| match t {
            Tok::Str(s) if s.contains("/metrics/job/") => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(urls.len(), 1, "one push URL in dora-aggregator: {urls:?}");
    let path = urls[0]
        .split_once("/metrics/")
        .map(|(_, p)| p)
        .unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    assert!(
        parts.len() % 2 == 0 && parts.iter().all(|p| !p.is_empty() && !p.contains('{')),
        "a fixed grouping key: {path}"
    );
    parts
        .chunks(2)
        .map(|kv| (kv[0].to_string(), kv[1].to_string()))
        .collect()
}

/// What the Pushgateway adds to each group by itself: the time of its last push, and of
/// its last failed one.
const PUSHGATEWAY_OWN: [&str; 2] = ["push_time_seconds", "push_failure_time_seconds"];

/// The metric names, label names and label matchers (label, value) of PromQL.
#[derive(Debug, Default)]
struct Names {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
    matchers: Vec<(String, String)>,
}

/// PromQL as tokens: words (metric, label and function names, keywords), strings,
/// punctuation; numbers and durations dropped.
fn lex_promql(expr: &str) -> Vec<Tok> {
    let c: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' || ch == '`' {
            let (s, next) = string_literal(&c, i + 1, ch);
            out.push(Tok::Str(s));
            i = next;
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() || ch == '.' {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// What a PromQL expression names.
fn promql(expr: &str, names: &mut Names) {
    // Keywords that take a list of labels, and keywords alone.
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 6] = ["bool", "and", "or", "unless", "offset", "atan2"];
    let toks = lex_promql(expr);
    let mut i = 0;
    while i < toks.len() {
        let next = toks.get(i + 1);
        match &toks[i] {
            Tok::Ident(w)
                if LABEL_LISTS.contains(&w.as_str()) && next == Some(&Tok::Punct('(')) =>
            {
                let close = closing(&toks, i + 1);
                for t in &toks[i + 2..close] {
                    if let Tok::Ident(label) = t {
                        names.labels.insert(label.clone());
                    }
                }
                i = close + 1;
            }
            // A function, or an aggregation (`max by (…) (…)`).
            Tok::Ident(_)
                if next == Some(&Tok::Punct('('))
                    || next.is_some_and(|t| is_ident(t, "by") || is_ident(t, "without")) =>
            {
                i += 1
            }
            Tok::Ident(w)
                if KEYWORDS.contains(&w.as_str()) || LABEL_LISTS.contains(&w.as_str()) =>
            {
                i += 1
            }
            Tok::Ident(metric) => {
                names.metrics.insert(metric.clone());
                i += 1;
            }
            Tok::Punct('{') => {
                let close = closing(&toks, i);
                matchers(&toks[i + 1..close], names, expr);
                i = close + 1;
            }
            // A range or a subquery: durations only.
            Tok::Punct('[') => i = closing(&toks, i) + 1,
            _ => i += 1,
        }
    }
}

/// `label="value", label=~"regex", …`.
fn matchers(toks: &[Tok], names: &mut Names, expr: &str) {
    for m in toks.split(|t| *t == Tok::Punct(',')) {
        match m {
            [] => {}
            [Tok::Ident(label), op @ .., Tok::Str(value)]
                if !op.is_empty()
                    && op.iter().all(|t| matches!(t, Tok::Punct('=' | '!' | '~'))) =>
            {
                names.labels.insert(label.clone());
                names.matchers.push((label.clone(), value.clone()));
            }
            _ => panic!("a label matcher {m:?} this test cannot read in {expr}"),
        }
    }
}

/// `label_values(selector, label)` or `label_values(label)`.
fn label_values(query: &str, names: &mut Names) {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a label_values(…) query: {query}"));
    let (selector, label) = inner.rsplit_once(',').unwrap_or(("", inner));
    promql(selector, names);
    names.labels.insert(label.trim().to_string());
}

/// The labels a legend shows: `{{service}} ({{environment}})`.
fn legend_labels(legend: &str, names: &mut Names) {
    let mut rest = legend;
    while let Some((_, after)) = rest.split_once("{{") {
        let Some((label, tail)) = after.split_once("}}") else {
            panic!("an unclosed {{{{ in the legend {legend:?}");
        };
        names.labels.insert(label.trim().to_string());
        rest = tail;
    }
}

/// Every name `dora.json` uses: its queries', its variables' and its legends'.
fn dora_names(d: &Value) -> Names {
    let mut names = Names::default();
    for (panel, t) in targets(d) {
        let expr = t["expr"]
            .as_str()
            .unwrap_or_else(|| panic!("{panel}: a PromQL expr"));
        let mut own = Names::default();
        promql(expr, &mut own);
        assert!(!own.metrics.is_empty(), "{panel}: {expr} names no metric");
        names.metrics.extend(own.metrics);
        names.labels.extend(own.labels);
        names.matchers.extend(own.matchers);
        legend_labels(t["legendFormat"].as_str().unwrap_or_default(), &mut names);
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let query = v["query"]["query"]
            .as_str()
            .or_else(|| v["query"].as_str())
            .unwrap_or_else(|| panic!("variable {}: a query", v["name"]));
        label_values(query, &mut names);
        if let Some(definition) = v["definition"].as_str() {
            assert_eq!(definition, query, "variable {}: definition", v["name"]);
        }
    }
    names
}

#[test]
fn the_dora_dashboard_reads_what_the_aggregator_pushes() {
    let pushed = pushed();
    let grouping = grouping();
    let names = dora_names(&dashboard("dora.json"));
    for metric in &names.metrics {
        assert!(
            pushed.contains_key(metric) || PUSHGATEWAY_OWN.contains(&metric.as_str()),
            "dora.json reads {metric}, which dora-aggregator does not push; it pushes {:?}",
            pushed.keys().collect::<Vec<_>>()
        );
    }
    let labels: BTreeSet<&String> = pushed.values().flatten().chain(grouping.keys()).collect();
    for label in &names.labels {
        assert!(
            labels.contains(label),
            "dora.json uses the label {label}; the pushed series have {labels:?}"
        );
    }
    // The grouping labels name the pushed group; other literal values (`service="all"`,
    // every service together) are the aggregator's own words.
    let aggregator = without_tests(lex(&read("functions/dora-aggregator/src/handler.rs")));
    for (label, value) in &names.matchers {
        if let Some(pushed_as) = grouping.get(label) {
            assert_eq!(value, pushed_as, "dora.json: {label}");
        } else if !value.contains('$') {
            assert!(
                aggregator.contains(&Tok::Str(value.clone())),
                "dora.json: {label}=\"{value}\" is no value dora-aggregator pushes"
            );
        }
    }
}

#[test]
fn every_gauge_pushed_is_on_the_dora_dashboard() {
    let names = dora_names(&dashboard("dora.json"));
    for gauge in pushed().keys() {
        assert!(
            names.metrics.contains(gauge),
            "{gauge} is pushed but on no panel of dora.json"
        );
    }
}

#[test]
fn the_promql_reader_finds_metrics_labels_and_matchers() {
    let mut names = Names::default();
    promql(
        r#"time() - max by (service, environment) (rate(a_total{job="x", service=~"$s"}[5m])) * on(job) group_left b_info offset 1d"#,
        &mut names,
    );
    label_values(r#"label_values(c{env!="y"}, team)"#, &mut names);
    legend_labels("{{service}} ({{environment}})", &mut names);
    assert_eq!(
        names.metrics,
        BTreeSet::from(["a_total", "b_info", "c"].map(String::from))
    );
    assert_eq!(
        names.labels,
        BTreeSet::from(["env", "environment", "job", "service", "team"].map(String::from))
    );
    assert_eq!(
        names.matchers,
        vec![
            ("job".to_string(), "x".to_string()),
            ("service".to_string(), "$s".to_string()),
            ("env".to_string(), "y".to_string()),
        ]
    );
    let (name, labels) = sample(r#"fleet_dora_rework_rate{service="a\"b",environment="all"} 0.25"#);
    assert_eq!(name, "fleet_dora_rework_rate");
    assert_eq!(labels, ["service", "environment"]);
}
