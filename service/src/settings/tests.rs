//! The settings mechanism, end to end, on a table with one setting of each kind.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use clap::{Args, FromArgMatches};

use super::*;

crate::settings! {
    /// A table with one setting of each kind.
    struct Demo {
        /// Port to listen on.
        port: u16 = 7000, env "DEMO_PORT", flag "port";
        /// Requests at once.
        workers: usize = 2, env "DEMO_WORKERS", check at_least(1);
        /// Peers besides loopback.
        peers: Vec<IpAddr> = Vec::new(), env "DEMO_PEERS";
        /// Language to model.
        routes: BTreeMap<String, String> = BTreeMap::new(), env "DEMO_ROUTES", shown "built in";
        /// The key clients send.
        key: Secret<String> = Secret(String::new()), env "DEMO_KEY", flag "key", check key_length;
        /// Seconds to wait.
        grace_secs: Duration = Duration::from_secs(30), env "DEMO_GRACE_SECS";
        /// Load limit in percent.
        max_cpu: f32 = 70.0, env "DEMO_MAX_CPU", check within(1.0, 100.0);
    }
}

/// Empty (none) or 4 characters at least.
fn key_length(key: &Secret<String>) -> Result<(), String> {
    match key.0.len() {
        1..4 => Err("too short".into()),
        _ => Ok(()),
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn flags(pairs: &[(&'static str, &str)]) -> FlagValues {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse("/etc/demo.toml", text).unwrap()
}

fn read(
    file: Option<&ConfigFile>,
    env: &[(&str, &str)],
    fl: &[(&'static str, &str)],
) -> Result<Demo, String> {
    Demo::read(&Sources::new(file, &self::env(env), &flags(fl))).map_err(|e| e.to_string())
}

#[test]
fn defaults_when_nothing_is_set() {
    let d = read(None, &[], &[]).unwrap();
    assert_eq!(d.port.value, 7000);
    assert_eq!(d.port.origin, Origin::Default("port"));
    assert_eq!(d.grace_secs.value, Duration::from_secs(30));
    assert!(d.peers.value.is_empty());
    assert_eq!(d.max_cpu.value, 70.0);
    // A TOML integer is a fine f32.
    let d = read(Some(&file("max_cpu = 50")), &[], &[]).unwrap();
    assert_eq!(d.max_cpu.value, 50.0);
}

#[test]
fn file_then_environment_then_flag() {
    let f = file("port = 1\nworkers = 5\ngrace_secs = 3\npeers = [\"10.0.0.1\"]");
    let d = read(Some(&f), &[], &[]).unwrap();
    assert_eq!((d.port.value, d.workers.value), (1, 5));
    assert_eq!(d.grace_secs.value, Duration::from_secs(3));
    assert_eq!(d.peers.value, vec![IpAddr::from([10, 0, 0, 1])]);
    assert_eq!(
        d.port.origin,
        Origin::File {
            path: "/etc/demo.toml".into(),
            key: "port"
        }
    );

    let d = read(Some(&f), &[("DEMO_PORT", "2")], &[]).unwrap();
    assert_eq!((d.port.value, d.workers.value), (2, 5));
    assert_eq!(
        d.port.origin,
        Origin::Env {
            name: "DEMO_PORT",
            value: Some("2".into())
        }
    );

    let d = read(Some(&f), &[("DEMO_PORT", "2")], &[("port", "3")]).unwrap();
    assert_eq!(d.port.value, 3);
    assert!(d.port.origin.is_flag());
}

#[test]
fn a_blank_variable_is_unset_and_values_are_trimmed() {
    let d = read(Some(&file("port = 1")), &[("DEMO_PORT", "  ")], &[]).unwrap();
    assert_eq!(d.port.value, 1);
    let d = read(None, &[("DEMO_PORT", " 8 ")], &[]).unwrap();
    assert_eq!(d.port.value, 8);
}

#[test]
fn errors_name_the_source() {
    let e = read(Some(&file("port = \"x\"")), &[], &[]).unwrap_err();
    assert!(
        e.starts_with("config file /etc/demo.toml: key port: "),
        "{e}"
    );
    let e = read(None, &[("DEMO_PORT", "seventy")], &[]).unwrap_err();
    assert_eq!(
        e,
        "environment DEMO_PORT='seventy': invalid digit found in string"
    );
    let e = read(None, &[], &[("port", "70000")]).unwrap_err();
    assert_eq!(
        e,
        "flag --port='70000': number too large to fit in target type"
    );
    // Checks too.
    let e = read(Some(&file("workers = 0")), &[], &[]).unwrap_err();
    assert_eq!(
        e,
        "config file /etc/demo.toml: key workers: must be at least 1"
    );
    let e = read(None, &[("DEMO_MAX_CPU", "NaN")], &[]).unwrap_err();
    assert_eq!(
        e,
        "environment DEMO_MAX_CPU='NaN': NaN is not within 1..=100"
    );
    // A list names the element at fault, a table the pair.
    let e = read(None, &[("DEMO_PEERS", "10.0.0.1, nope")], &[]).unwrap_err();
    assert_eq!(
        e,
        "environment DEMO_PEERS='10.0.0.1, nope': 'nope': invalid IP address syntax"
    );
    let e = read(None, &[("DEMO_ROUTES", "python=a,rust")], &[]).unwrap_err();
    assert_eq!(
        e,
        "environment DEMO_ROUTES='python=a,rust': 'rust' is not name=value"
    );
    let e = read(Some(&file("routes = [1]")), &[], &[]).unwrap_err();
    assert_eq!(
        e,
        "config file /etc/demo.toml: key routes: expected a table, found array"
    );
}

#[test]
fn secrets_stay_out_of_errors_and_debug() {
    let e = read(None, &[("DEMO_KEY", "abc")], &[]).unwrap_err();
    assert_eq!(e, "environment DEMO_KEY: too short");
    let e = read(None, &[], &[("key", "xyz")]).unwrap_err();
    assert_eq!(e, "flag --key: too short");
    let d = read(None, &[("DEMO_KEY", "hunter22")], &[]).unwrap();
    assert_eq!(d.key.value.0, "hunter22");
    assert!(!format!("{d:?}").contains("hunter22"));
}

#[test]
fn unknown_file_keys_are_rejected_by_name() {
    let e = read(Some(&file("prot = 1")), &[], &[]).unwrap_err();
    assert!(
        e.starts_with(
            "config file /etc/demo.toml: unknown key 'prot' (the keys are port, workers,"
        ),
        "{e}"
    );
}

#[test]
fn tables_come_from_either_format() {
    let d = read(
        Some(&file("[routes]\npython = \"a\"\nrust = \"b\"")),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(d.routes.value.len(), 2);
    let d = read(None, &[("DEMO_ROUTES", " python = a , rust=b,")], &[]).unwrap();
    assert_eq!(d.routes.value["python"], "a");
    assert_eq!(d.routes.value["rust"], "b");
}

#[test]
fn help_lists_every_setting() {
    let h = help(&Demo::table());
    for row in Demo::table() {
        let s = row.setting;
        assert!(
            h.contains(&format!("  {}, {}", s.key, s.env)),
            "{}: {h}",
            s.key
        );
        assert!(h.contains(row.help()), "{h}");
    }
    assert!(
        h.contains("  port, DEMO_PORT, --port  [default: 7000]\n      Port to listen on.\n"),
        "{h}"
    );
    assert!(
        h.contains("routes, DEMO_ROUTES  [default: built in]"),
        "{h}"
    );
    assert!(h.contains("peers, DEMO_PEERS  [default: none]"), "{h}");
    assert!(
        h.contains("grace_secs, DEMO_GRACE_SECS  [default: 30]"),
        "{h}"
    );
    assert!(h.contains(LOG_LEVEL));
}

#[test]
fn flags_come_from_the_table() {
    let cmd = SettingFlags::<Demo>::augment_args(clap::Command::new("demo"));
    let m = cmd
        .clone()
        .try_get_matches_from(["demo", "--port", "9"])
        .unwrap();
    let f = SettingFlags::<Demo>::from_arg_matches(&m).unwrap();
    assert_eq!(f.values(), &flags(&[("port", "9")]));
    // Only settings with a flag have one.
    assert!(
        cmd.clone()
            .try_get_matches_from(["demo", "--workers", "3"])
            .is_err()
    );
    let help = cmd.clone().render_long_help().to_string();
    assert!(help.contains("--port <PORT>"), "{help}");
    assert!(
        help.contains("Port to listen on [env: DEMO_PORT] [default: 7000]"),
        "{help}"
    );
    assert!(
        help.contains("workers, DEMO_WORKERS  [default: 2]"),
        "{help}"
    );
}

#[test]
fn env_examples_must_match_the_table() {
    let full = "# Port\nDEMO_PORT=7000\nDEMO_WORKERS=\n#DEMO_PEERS=10.0.0.1\nDEMO_ROUTES=\n\
                DEMO_KEY=\nDEMO_GRACE_SECS=30\nDEMO_MAX_CPU=70\nLOG_LEVEL=info\n#RUST_LOG=\nLOG_FORMAT=\n";
    assert_eq!(check_env_example::<Demo>(full), Ok(()));
    let e = check_env_example::<Demo>(&full.replace("DEMO_WORKERS=", "DEMO_WORKRES=")).unwrap_err();
    assert!(e.contains("undocumented: [\"DEMO_WORKERS\"]"), "{e}");
    assert!(e.contains("not read: [\"DEMO_WORKRES\"]"), "{e}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = ConfigFile::read(Path::new("/nonexistent/cerebrum.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/cerebrum.toml"), "{e}");
    let e = ConfigFile::parse("/etc/demo.toml", "port = ").unwrap_err();
    assert!(
        e.to_string().starts_with("config file /etc/demo.toml: "),
        "{e}"
    );
}
