//! There is no Docker engine in CI, so `docker/compose.yaml` and
//! `docker/Dockerfile` are checked by reading them: plain line scanning,
//! no YAML library.

use std::path::Path;

fn read(rel: &str) -> String {
    // CARGO_MANIFEST_DIR is absent when compiled by bare rustc from the repo root.
    let root = option_env!("CARGO_MANIFEST_DIR").unwrap_or(".");
    let path = Path::new(root).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of `services.<name>` in the compose file, or None if absent.
fn service<'a>(compose: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let mut lines = compose
        .lines()
        .skip_while(|l| l.trim_end() != "services:")
        .skip(1);
    let header = format!("{name}:");
    let mut found = lines
        .find(|l| indent(l) == 2 && l.trim() == header)
        .map(|_| Vec::new())?;
    for line in lines {
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if !blank && indent(line) <= 2 {
            break;
        }
        found.push(line);
    }
    Some(found)
}

/// Whether a block sets `key`, as `key: …`, `key=…` or `- key=…`.
fn has_key(block: &[&str], key: &str) -> bool {
    block.iter().any(|l| {
        let t = l
            .trim_start()
            .trim_start_matches("- ")
            .trim_start_matches(['"', '\'']);
        t.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('='))
    })
}

#[test]
fn compose_file_declares_the_cluster() {
    let compose = read("docker/compose.yaml");
    for name in ["postgres", "redis", "api1", "api2"] {
        assert!(
            service(&compose, name).is_some(),
            "docker/compose.yaml: service `{name}` is missing"
        );
    }
    for name in ["api1", "api2"] {
        let block = service(&compose, name).unwrap();
        for key in [
            "DATABASE_URL",
            "REDIS_URL",
            "HELPDESK_JWT_SECRET",
            "HELPDESK_INSTANCE_ID",
        ] {
            assert!(
                has_key(&block, key),
                "docker/compose.yaml: service `{name}` does not set {key}"
            );
        }
    }
    for name in ["postgres", "redis"] {
        let block = service(&compose, name).unwrap();
        assert!(
            has_key(&block, "healthcheck"),
            "docker/compose.yaml: service `{name}` has no healthcheck"
        );
    }
}

#[test]
fn dockerfile_runs_unprivileged_with_healthcheck() {
    let dockerfile = read("docker/Dockerfile").replace("\\\n", " ");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "));
    let user = user
        .expect("docker/Dockerfile: no USER instruction (the image would run as root)")
        .trim();
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid != "root" && uid != "0",
        "docker/Dockerfile: the final USER is root ({user}); want a non-root user"
    );
    assert!(
        instructions.iter().any(|l| l.starts_with("HEALTHCHECK ")),
        "docker/Dockerfile: no HEALTHCHECK instruction"
    );
    assert!(
        instructions.iter().any(|l| l.starts_with("RUN ")
            && l.contains("cargo build")
            && l.contains("-p helpdesk")),
        "docker/Dockerfile: no `RUN … cargo build … -p helpdesk`"
    );
}

/// The value of `key: value` in a block, unquoted.
fn value_of<'a>(block: &[&'a str], key: &str) -> Option<&'a str> {
    block.iter().find_map(|l| {
        l.trim_start()
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|v| v.trim().trim_matches(['"', '\'']))
    })
}

#[test]
fn instances_get_time_to_shut_down_gracefully() {
    let compose = read("docker/compose.yaml");
    for name in ["api1", "api2"] {
        let block = service(&compose, name).unwrap();
        let grace: u64 = value_of(&block, "HELPDESK_SHUTDOWN_GRACE_SECS")
            .unwrap_or_else(|| panic!("`{name}` does not set HELPDESK_SHUTDOWN_GRACE_SECS"))
            .parse()
            .expect("a number of seconds");
        let stop: u64 = value_of(&block, "stop_grace_period")
            .unwrap_or_else(|| panic!("`{name}` has no stop_grace_period"))
            .trim_end_matches('s')
            .parse()
            .expect("stop_grace_period in seconds, e.g. 30s");
        assert!(
            grace < stop,
            "`{name}`: the shutdown grace ({grace} s) must end before Docker's SIGKILL ({stop} s)"
        );
    }
}

#[test]
fn every_helpdesk_setting_in_the_compose_file_exists() {
    let compose = read("docker/compose.yaml");
    // The settings are the fields of `pub struct Config` (read as text, so
    // this file still compiles on its own).
    let config = read("api/src/config.rs");
    let fields: Vec<String> = config
        .lines()
        .skip_while(|l| !l.starts_with("pub struct Config"))
        .take_while(|l| !l.starts_with('}'))
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split(':').next())
        .map(|f| f.trim().to_string())
        .collect();
    assert!(
        fields.iter().any(|f| f == "jwt_secret"),
        "cannot read api/src/config.rs"
    );
    for name in ["api1", "api2"] {
        for line in service(&compose, name).unwrap() {
            let Some(rest) = line.trim_start().strip_prefix("HELPDESK_") else {
                continue;
            };
            let key = rest.split(':').next().unwrap_or_default().to_lowercase();
            assert!(
                fields.contains(&key),
                "docker/compose.yaml: `{name}` sets HELPDESK_{} which is not a setting",
                key.to_uppercase()
            );
        }
    }
}
