"""Validates llmgate's deployment files; run by deploy/validate with its tools' Python.

Each check prints one line, `ok` or `FAIL` with every problem under it; the exit status is 1 if
any failed. What is checked, and against what:

- deploy/compose/compose*.yaml: the Compose Specification's JSON schema (the copy inside
  check-jsonschema, `vendor.compose-spec`).
- deploy/kubernetes/*.yaml: Kubernetes' OpenAPI schemas, strict (unknown fields are errors), for
  the oldest and newest versions in KUBERNETES_VERSIONS; the ServiceMonitor against the Prometheus
  Operator's CRD schema (servicemonitor.mjs); kustomization.yaml's resources exist.
- deploy/helm/llmgate: `helm lint`, then rendered by Helm's own engine for each set in
  CHART_CASES, each result validated as above, plus what the chart promises (the config mounted
  as a directory, no config checksum, the spill directory and the SQLite default on the
  writable volume, never a database_url hiding DATABASE_URL, the kill deadline longer than the
  preStop sleep and the drain); values that must be refused are. The plain manifests'
  Deployment is held to the same promises.
- The example configs (compose's, the ConfigMap's, each rendered chart's) pass `llmgate check`.
- deploy/systemd/llmgate.service: `systemd-analyze verify` (where systemd is installed), on a
  copy whose commands point at the built `llmgate` and deploy/systemd/llmgate-upgrade; any line
  it prints (an unknown key, a value it cannot parse) is a failure, as it exits 0 for those.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python.chart as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "llmgate"
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
# What `llmgate check` needs from the environment to resolve the examples' os.environ/ references.
CHECK_ENV = {
    "LITELLM_MASTER_KEY": "sk-validate",
    "DATABASE_URL": "postgresql://llmgate:x@127.0.0.1:5432/llmgate",
    "REDIS_URL": "redis://127.0.0.1:6379",
    "OPENAI_API_KEY": "sk-validate",
    "ANTHROPIC_API_KEY": "sk-ant-validate",
}

# Value sets the chart is rendered with: (name, values, checks on the rendered objects).
CHART_CASES = [
    ("defaults", {}),
    (
        "production",
        {
            "replicaCount": 3,
            "image": {"repository": "registry.example.com/llmgate", "tag": "0.1.0"},
            "config": {
                "model_list": [
                    {
                        "model_name": "gpt-4o-mini",
                        "litellm_params": {
                            "model": "openai/gpt-4o-mini",
                            "api_key": "os.environ/OPENAI_API_KEY",
                        },
                    }
                ],
                "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
            },
            "secrets": {"LITELLM_MASTER_KEY": "sk-1", "OPENAI_API_KEY": "sk-2"},
            "databaseUrl": "postgresql://llmgate:pw@postgres:5432/llmgate",
            "redisUrl": "redis://redis:6379",
            "hpa": {"enabled": True},
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "podAnnotations": {"example.com/team": "ml"},
            "extraArgs": ["--log-format", "json"],
            "env": [{"name": "RUST_LOG", "value": "info"}],
        },
    ),
    (
        "existing-secret-and-configmap",
        {
            "existingSecret": "my-llmgate-env",
            "existingConfigMap": "my-llmgate-config",
            "pdb": {"enabled": False},
            "preStopSleepSeconds": 0,
        },
    ),
]
# Values the chart must refuse, and a word the refusal must contain.
CHART_REFUSALS = [
    ("existing-secret-with-database-url", {"existingSecret": "s", "databaseUrl": "postgres://x"}, "existingSecret"),
]

failures = 0


def report(name: str, problems: list[str]) -> None:
    global failures
    if problems:
        failures += 1
        print(f"FAIL {name}")
        for p in problems:
            print(f"     {p}")
    else:
        print(f"ok   {name}")


def validate_objects(objects: list[tuple[str, dict]]) -> list[str]:
    """Kubernetes kinds against Kubernetes' schemas (strict); ServiceMonitors against the CRD's."""
    problems, monitors = [], []
    for where, obj in objects:
        if obj.get("kind") == "ServiceMonitor":
            monitors.append({"where": where, "object": obj})
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.absolute_path) or "(top)"
                problems.append(f"{where} (Kubernetes {version}): {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where}: no Kubernetes {version} schema for {obj.get('apiVersion')} {obj.get('kind')}")
    if monitors:
        run = subprocess.run(
            ["node", os.environ["SERVICEMONITOR_CHECK"]],
            input=json.dumps(monitors),
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            problems.extend((run.stdout + run.stderr).strip().splitlines())
    return problems


def llmgate_check(where: str, text: str) -> list[str]:
    """`llmgate check` on a config's text, written beside nothing (no .env is picked up)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text)
        run = subprocess.run(
            [os.environ["LLMGATE_BIN"], "check", "--config", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **CHECK_ENV},
        )
    if run.returncode != 0:
        return [f"{where}: llmgate check: " + (run.stdout + run.stderr).strip().replace("\n", "\n       ")]
    return []


def load_all(path: Path) -> list[tuple[str, dict]]:
    rel = path.relative_to(ROOT)
    return [(f"{rel}#{i}", doc) for i, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc]


def check_compose() -> None:
    files = sorted((DEPLOY / "compose").glob("compose*.yaml"))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True,
        text=True,
    )
    names = ", ".join(f.name for f in files)
    report(f"compose schema: {names}", [] if run.returncode == 0 else (run.stdout + run.stderr).strip().splitlines())
    config = DEPLOY / "compose" / "config.yaml"
    report("compose config.yaml: llmgate check", llmgate_check(str(config.relative_to(ROOT)), config.read_text()))


def check_kubernetes() -> None:
    directory = DEPLOY / "kubernetes"
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    problems = [f"kustomization.yaml: {r} does not exist" for r in kustomization["resources"] if not (directory / r).is_file()]
    objects = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            objects.extend(load_all(path))
    problems += validate_objects(objects)
    report(f"kubernetes schemas ({len(objects)} objects): deploy/kubernetes", problems)
    # The chart's promises hold for the plain manifests too (docs/deployment.md says both).
    report("kubernetes deployment: config directory, read-only root, config watch, stop fits", chart_promises("deploy/kubernetes", objects))
    configmap = next(obj for _, obj in objects if obj["kind"] == "ConfigMap")
    report("kubernetes configmap config.yaml: llmgate check", llmgate_check("configmap.yaml", configmap["data"]["config.yaml"]))


def chart_promises(case: str, objects: list[tuple[str, dict]]) -> list[str]:
    """What the chart's README says about every render."""
    problems = []
    deployments = [obj for _, obj in objects if obj["kind"] == "Deployment"]
    if len(deployments) != 1:
        return [f"{case}: {len(deployments)} Deployments"]
    pod = deployments[0]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    for mount in container["volumeMounts"]:
        if mount["name"] == "config" and (mount.get("subPath") or mount["mountPath"] != "/app/config"):
            problems.append(f"{case}: the config must be mounted as the directory /app/config, not {mount}")
    if any("config" in key for key in (pod["metadata"].get("annotations") or {})):
        problems.append(f"{case}: a config checksum annotation would roll the pods on every config change")
    if not container["securityContext"].get("readOnlyRootFilesystem"):
        problems.append(f"{case}: the root filesystem should be read-only")
    problems += watches_config(case, container)
    problems += stop_fits(case, pod["spec"], container)
    return problems


def stop_fits(where: str, pod: dict, container: dict) -> list[str]:
    """The kill deadline must outlast the preStop sleep and the drain (docs/deployment.md):
    terminationGracePeriodSeconds > preStop sleep + --graceful-shutdown-seconds (30 by default),
    or Kubernetes' SIGKILL comes before the spend is written."""
    args = [str(a) for a in container.get("args") or []]
    drain = int(args[args.index("--graceful-shutdown-seconds") + 1]) if "--graceful-shutdown-seconds" in args else 30
    sleep = (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= sleep + drain:
        return [f"{where}: terminationGracePeriodSeconds {grace} is not longer than the preStop sleep {sleep} s and the {drain} s drain"]
    return []


def watches_config(where: str, container: dict) -> list[str]:
    """The docs promise that a changed ConfigMap is reloaded in place: LLMGATE_WATCH_CONFIG=1."""
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    if env.get("LLMGATE_WATCH_CONFIG") != "1":
        return [f"{where}: LLMGATE_WATCH_CONFIG is not 1, so a changed ConfigMap is not reloaded"]
    return []


def check_chart() -> None:
    lint = helm.lint(CHART, strict=True, kube_version="v1.30.0")
    report("helm lint --strict deploy/helm/llmgate", [f"{m['path']}: {m['error']}" for m in lint["messages"] if m["severity"] >= 2] + lint["errors"])
    chart = helm.Chart.load(CHART)
    for case, values in CHART_CASES:
        rendered = chart.render(values=values, name="llmgate", namespace="llm")
        objects = []
        for template, text in sorted(rendered.items()):
            if template.endswith(".yaml"):
                objects.extend((f"{case}: {template}#{i}", doc) for i, doc in enumerate(yaml.safe_load_all(text)) if doc)
        problems = validate_objects(objects) + chart_promises(case, objects)
        for _, obj in objects:
            if obj["kind"] == "ConfigMap":
                problems += llmgate_check(f"{case}: rendered config.yaml", obj["data"]["config.yaml"])
                config = yaml.safe_load(obj["data"]["config.yaml"])
                if config["general_settings"].get("spend_spill_dir") != "/app/data/spill":
                    problems.append(f"{case}: spend_spill_dir is not on the writable /app/data")
                if values.get("redisUrl") and config.get("router_settings", {}).get("redis_url") != "os.environ/REDIS_URL":
                    problems.append(f"{case}: redisUrl given but router_settings.redis_url not set")
                database = config["general_settings"].get("database_url")
                if values.get("databaseUrl") or values.get("existingSecret"):
                    if database is not None:
                        problems.append(f"{case}: database_url {database} would hide DATABASE_URL")
                elif database != "sqlite:///app/data/llmgate.db":
                    problems.append(f"{case}: without DATABASE_URL, SQLite must be on /app/data, not {database}")
        kinds = ", ".join(sorted({obj["kind"] for _, obj in objects}))
        report(f"helm render '{case}' ({kinds})", problems)
    for case, values, word in CHART_REFUSALS:
        try:
            chart.render(values=values, name="llmgate")
            report(f"helm refuses '{case}'", ["rendered without an error"])
        except Exception as e:  # noqa: BLE001 - helm_python's error classes vary by cause
            report(f"helm refuses '{case}'", [] if word in str(e) else [f"refused, but without {word!r}: {e}"])


def check_systemd() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("skip systemd unit: no systemd-analyze on this machine")
        return
    unit = (DEPLOY / "systemd" / "llmgate.service").read_text()
    unit = unit.replace("/usr/local/bin/llmgate-upgrade", str(DEPLOY / "systemd" / "llmgate-upgrade"))
    unit = unit.replace("/usr/local/bin/llmgate", os.environ["LLMGATE_BIN"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llmgate.service"
        path.write_text(unit)
        run = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    said = (run.stdout + run.stderr).strip().splitlines()
    problems = said if said or run.returncode == 0 else [f"exit {run.returncode}"]
    report("systemd unit: systemd-analyze verify", problems)


def main() -> int:
    check_compose()
    check_kubernetes()
    check_chart()
    check_systemd()
    print(f"deploy/validate: {'FAILED' if failures else 'all passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
