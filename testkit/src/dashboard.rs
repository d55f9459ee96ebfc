//! The Grafana dashboard in `deploy/grafana/cerebrum.json` against what the
//! tiers really export: every metric a panel queries must be a series the
//! tier's `/metrics` shows.

use std::collections::BTreeSet;

/// The dashboard, parsed.
pub fn dashboard() -> serde_json::Value {
    let path = super::workspace_root().join("deploy/grafana/cerebrum.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every PromQL expression of every panel.
pub fn expressions(dashboard: &serde_json::Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

/// The `cerebrum…` metric names the panels query, those of the node
/// (`cerebrum_node_…`) or the orchestrator's (the rest).
pub fn queried(node: bool) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expr in expressions(&dashboard()) {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("cerebrum_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            if name.starts_with("cerebrum_node_") == node {
                names.insert(name);
            }
        }
    }
    names
}

/// The sample names a `/metrics` text shows (`name{labels} value` or `name value`).
pub fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
        .collect()
}
