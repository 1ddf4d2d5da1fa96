"""The Kubernetes manifests (deploy/k8s), checked offline with the ecosystem's tools.

kustomize (kubectl) renders every kustomization; kubernetes-validate checks the core objects
strictly against Kubernetes 1.30, jsonschema the Argo Rollouts objects against the vendored
CRDs; checkov scans what a cluster would apply. Then the manifests are held to the code: the
probes to the service's routes, the ConfigMap to the settings the service reads, the mounted
feature_store.yaml to Feast's own config model (and, in a slow test, to a real PostgreSQL), the
addresses in both to the in-cluster backends and the network policy, the AnalysisTemplate's
PromQL and thresholds to mlops_pipeline.rollout.analysis, the HPA's metric to the adapter rule
and the recording rule.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from deploy_support import BROKEN_DEPLOYMENT, DEPLOY, check

from mlops_pipeline.rollout.analysis import QUERIES, SUPPORT_QUERIES, Thresholds, render

HPA_METRIC = "mlops_http_requests_per_second"
TEMPLATE = "flight-delay-canary"
PASSWORD_VARIABLE = "FEAST_ONLINE_STORE_PASSWORD"
ONLINE_STORE_SECRET = {"name": "flight-delay-online-store", "key": "password"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return check.render_all()


def only(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`) in `docs`."""
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def serving_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "serving")


def settings_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The settings ConfigMap the serving container's envFrom names (hashed name)."""
    [source] = serving_container(docs)["envFrom"]
    return only(docs, "ConfigMap", source["configMapRef"]["name"])["data"]


def feature_store_yaml(docs: list[dict[str, Any]]) -> str:
    """feature_store.yaml as the pod sees it: the ConfigMap behind its feature-repo volume."""
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "feature-repo"]
    data = only(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    assert list(data) == ["feature_store.yaml"]
    return data["feature_store.yaml"]


class RecordingEnv(dict):
    """An environment that remembers every variable looked up in it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


# --- rendering and schemas ------------------------------------------------------------------


def test_every_kustomization_renders_with_the_objects_it_promises(rendered):
    """base is plain Kubernetes; both overlays add the canary; monitoring the adapter rules."""
    kinds = {name: sorted({d["kind"] for d in docs}) for name, docs in rendered.items()}
    core = {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy"}
    core |= {"PodDisruptionBudget", "Service", "ServiceAccount"}
    assert set(kinds["base"]) == core
    for overlay in ("dev", "prod"):
        canary = {"AnalysisTemplate", "Ingress", "Namespace", "Rollout"}
        assert set(kinds[overlay]) == core | canary
        namespace = only(rendered[overlay], "Namespace")["metadata"]["name"]
        namespaced = [d for d in rendered[overlay] if d["kind"] != "Namespace"]
        assert {d["metadata"].get("namespace") for d in namespaced} == {namespace}
    assert kinds["monitoring"] == ["ConfigMap"]
    backends = {"Namespace", "Service", "PersistentVolumeClaim", "Deployment", "StatefulSet"}
    assert set(kinds["backends"]) == backends | {"NetworkPolicy"}
    # Settings and feature_store.yaml: two generated ConfigMaps beside the pods.
    for name in ("base", "dev", "prod"):
        assert len([d for d in rendered[name] if d["kind"] == "ConfigMap"]) == 2


def test_a_broken_kustomization_fails_to_render(tmp_path):
    """A patch whose target path does not exist is kustomize's error, not an empty render."""
    deployment = (check.KUSTOMIZATIONS["base"] / "deployment.yaml").read_text()
    (tmp_path / "deployment.yaml").write_text(deployment)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [deployment.yaml]\n"
        "patches:\n"
        "  - target: {kind: Deployment, name: flight-delay}\n"
        "    patch: '[{op: replace, path: /spec/nope/replicas, value: 3}]'\n"
    )
    with pytest.raises(check.CheckError, match="kubectl kustomize .* failed"):
        check.render(tmp_path)


@pytest.mark.parametrize("name", list(check.KUSTOMIZATIONS))
def test_rendered_objects_pass_strict_schema_validation(rendered, name):
    """Core kinds against Kubernetes 1.30 (unknown fields are errors), CRDs against theirs."""
    assert check.validate(rendered[name]) == []


def test_a_wrong_type_and_an_unknown_field_fail_kubernetes_validation(rendered):
    """The core validator is not a rubber stamp: a string port and a typo both fail."""
    deployment = copy.deepcopy(only(rendered["prod"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    [problem] = check.validate([deployment])
    assert "containerPort" in problem and "is not of type 'integer'" in problem

    typo = copy.deepcopy(only(rendered["prod"], "Deployment"))
    typo["spec"]["replica"] = 2
    [problem] = check.validate([typo])
    assert "'replica' was unexpected" in problem


def test_a_wrong_type_and_an_unknown_field_fail_the_crd_schemas(rendered):
    """Rollout and AnalysisTemplate errors are caught by the vendored openAPIV3Schema."""
    rollout = copy.deepcopy(only(rendered["prod"], "Rollout"))
    rollout["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = "five"
    rollout["spec"]["strategy"]["canary"]["stepz"] = []
    problems = check.validate([rollout])
    assert any("steps.0.setWeight: 'five' is not of type 'integer'" in p for p in problems)
    assert any("'stepz' was unexpected" in p for p in problems)

    template = copy.deepcopy(only(rendered["prod"], "AnalysisTemplate"))
    del template["spec"]["metrics"][0]["provider"]
    template["spec"]["metrics"][1]["provider"]["prometheus"]["querry"] = "up"
    problems = check.validate([template])
    assert any("metrics.0: 'provider' is a required property" in p for p in problems)
    assert any("'querry' was unexpected" in p for p in problems)

    bad_meta = copy.deepcopy(rollout)
    bad_meta["metadata"]["labels"] = ["not", "a", "map"]
    assert any("metadata.labels" in p for p in check.validate([bad_meta]))


def test_a_custom_resource_without_a_vendored_crd_is_reported_not_passed():
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "x"},
    }
    assert check.validate([monitor]) == [
        "PodMonitor/x: monitoring.coreos.com/v1 is a custom resource with no vendored CRD"
    ]


@pytest.mark.parametrize("crd_file", sorted(set(check.CRD_FILES.values())), ids=lambda p: p.name)
def test_vendored_crds_name_their_source_commit_and_licence(crd_file: Path):
    header = crd_file.read_text().split("apiVersion:", 1)[0]
    assert "https://github.com/argoproj/argo-rollouts" in header
    assert f"manifests/crds/{crd_file.name}" in header
    assert re.search(r"commit:\s+[0-9a-f]{40}\b", header)
    assert "Apache License 2.0" in header
    crd = yaml.load(crd_file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == "argoproj.io"


# --- the pods and the service contract ------------------------------------------------------


@pytest.mark.parametrize("name", ["base", "dev", "prod"])
def test_probes_and_port_follow_the_service_contract(rendered, name):
    """Port 8080 named http; startup and readiness on /readyz, liveness on /healthz."""
    container = serving_container(rendered[name])
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    probes = {
        p: container[p]["httpGet"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {
        "startupProbe": {"path": "/readyz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
    }
    # The startup probe gives model loading minutes; liveness only starts after it.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180


@pytest.mark.parametrize("name", ["base", "dev", "prod"])
def test_pods_run_non_root_read_only_without_capabilities(rendered, name):
    pod = only(rendered[name], "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = serving_container(rendered[name])["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    resources = serving_container(rendered[name])["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_the_probe_paths_are_the_services_routes(tmp_path):
    """The real app: live at once, not ready (503) until the model is loaded."""
    from starlette.testclient import TestClient

    from mlops_pipeline.serving.app import create_app
    from mlops_pipeline.serving.settings import ServingSettings

    client = TestClient(create_app(ServingSettings(home=tmp_path)))  # no lifespan: no load
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("name", ["base", "dev", "prod"])
def test_every_setting_in_the_configmap_is_read_and_lands(rendered, name):
    """ServingSettings.from_env reads each MLOPS_* key of the ConfigMap, and each value ends up
    in the settings the service runs with (a key nobody reads would be a silent no-op)."""
    from mlops_pipeline.serving.settings import ServingSettings

    data = settings_data(rendered[name])
    assert data and all(key.startswith("MLOPS_") for key in data)
    env = RecordingEnv(data)
    settings = ServingSettings.from_env(env)
    assert sorted(set(data) - env.read) == []
    landed = {
        "MLOPS_HOME": str(settings.home),
        "MLOPS_MODEL_NAME": settings.model_name,
        "MLOPS_MODEL_ALIAS": settings.alias,
        "MLOPS_CLOCK": settings.clock,
        "MLOPS_AS_OF": settings.as_of and settings.as_of.isoformat().replace("+00:00", "Z"),
        "MLOPS_MAX_BATCH": str(settings.max_batch),
        "MLOPS_TRACKING_URI": settings.tracking_uri,
        "MLOPS_FEATURE_REPO": str(settings.feature_repo),
    }
    assert {key: landed[key] for key in data} == data
    assert set(data) >= {"MLOPS_TRACKING_URI", "MLOPS_FEATURE_REPO"}  # the cluster's two
    assert settings.feature_repo_path == Path(data["MLOPS_FEATURE_REPO"])
    # Production judges staleness by the wall clock; dev replays the walkthrough's 2013.
    assert settings.clock == ("fixed" if name == "dev" else "wall")
    assert urlparse(settings.tracking_uri).scheme == "http"
    # The recorder is not a rubber stamp: a misspelt key is not read.
    typo = RecordingEnv({**data, "MLOPS_MODLE_ALIAS": "challenger"})
    ServingSettings.from_env(typo)
    assert "MLOPS_MODLE_ALIAS" not in typo.read


@pytest.mark.parametrize("name", ["base", "dev", "prod"])
def test_the_pod_mounts_what_the_settings_name(rendered, name):
    """feature_store.yaml read-only at MLOPS_FEATURE_REPO, MLOPS_HOME and /tmp as scratch, the
    password from the Secret for every ${VAR} the file uses, nothing else in env."""
    docs = rendered[name]
    data = settings_data(docs)
    container = serving_container(docs)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    repo = mounts[data["MLOPS_FEATURE_REPO"]]
    assert repo["readOnly"] is True and "configMap" in volumes[repo["name"]]
    for scratch in (data["MLOPS_HOME"], "/tmp"):
        assert mounts[scratch].get("readOnly") is not True
        assert "emptyDir" in volumes[mounts[scratch]["name"]]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == {"HOME", PASSWORD_VARIABLE}
    assert env[PASSWORD_VARIABLE]["valueFrom"] == {"secretKeyRef": ONLINE_STORE_SECRET}
    referenced = set(re.findall(r"\$\{(\w+)\}", feature_store_yaml(docs)))
    assert referenced == {PASSWORD_VARIABLE}
    # The image's ENTRYPOINT starts the service: no command override (tests/test_image.py
    # holds the ENTRYPOINT to the probes' port).
    assert "command" not in container


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_feature_store_yaml_parses_with_feasts_own_config_model(
    rendered, name, tmp_path, monkeypatch
):
    """Loaded the way FeatureStore loads it (feast.repo_config.load_repo_config, which expands
    ${VAR}): PostgreSQL online store and SQL registry, read-only and off the request path."""
    from feast.infra.online_stores.postgres_online_store.postgres import (
        PostgreSQLOnlineStoreConfig,
    )
    from feast.infra.registry.sql import SqlRegistryConfig
    from feast.infra.utils.postgres.postgres_config import ConnectionType
    from feast.repo_config import load_repo_config

    from mlops_pipeline.features import feast_repo

    text = feature_store_yaml(rendered[name])
    password = "0123456789abcdef"
    assert password not in text
    monkeypatch.setenv(PASSWORD_VARIABLE, password)
    (tmp_path / "feature_store.yaml").write_text(text)
    config = load_repo_config(tmp_path, tmp_path / "feature_store.yaml")
    assert config.project == feast_repo.PROJECT
    assert config.entity_key_serialization_version == 3  # as feast_repo.write_repo
    online = config.online_store
    assert isinstance(online, PostgreSQLOnlineStoreConfig)
    assert online.password == password
    assert online.conn_type == ConnectionType.pool
    registry = config.registry
    assert isinstance(registry, SqlRegistryConfig)
    assert (registry.schema_mode, registry.cache_mode) == ("verify", "thread")
    assert f":{password}@" in registry.path
    raw = yaml.safe_load(text)
    # Feast silently ignores unknown registry keys (its model allows extras): we do not.
    assert set(raw["registry"]) <= set(SqlRegistryConfig.model_fields)
    assert "offline_store" not in raw  # serving never reads the offline store
    if name == "prod":
        assert online.sslmode == "require"
        assert parse_qs(urlparse(registry.path).query)["sslmode"] == ["require"]


def test_a_misspelt_online_store_key_fails_feasts_config_model(rendered, tmp_path, monkeypatch):
    """The parse test can fail: Feast's online store config forbids unknown keys."""
    from feast.repo_config import FeastConfigError, load_repo_config

    monkeypatch.setenv(PASSWORD_VARIABLE, "x")
    text = feature_store_yaml(rendered["dev"]).replace("sslmode:", "sslmod:")
    (tmp_path / "feature_store.yaml").write_text(text)
    with pytest.raises(FeastConfigError, match="sslmod"):
        load_repo_config(tmp_path, tmp_path / "feature_store.yaml")


def backend_port(backends: list[dict[str, Any]], service: str, port: int) -> dict[str, Any]:
    """The container port a Service port of the backends leads to, and the pods' labels."""
    spec = only(backends, "Service", service)["spec"]
    [entry] = [p for p in spec["ports"] if p["port"] == port]
    [workload] = [
        d
        for d in backends
        if d["kind"] in ("Deployment", "StatefulSet")
        and spec["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    [container] = workload["spec"]["template"]["spec"]["containers"]
    [target] = [p for p in container["ports"] if p["name"] == entry["targetPort"]]
    return {
        "port": target["containerPort"],
        "labels": workload["spec"]["template"]["metadata"]["labels"],
        "container": container,
    }


def egress_to(policy: dict[str, Any], port: int) -> list[dict[str, Any]]:
    """The peers of the egress rule that opens `port` (exactly one rule must)."""
    [rule] = [r for r in policy["spec"]["egress"] if {p["port"] for p in r["ports"]} == {port}]
    return rule["to"]


def test_the_in_cluster_addresses_are_the_backends_and_the_policy_lets_them_through(rendered):
    """dev: MLOPS_TRACKING_URI and feature_store.yaml name the Services of k8s/backends, whose
    pods listen on those ports, admit the serving pods and are reached through the egress
    policy; MLflow accepts the Host header the pods send; the database user matches."""
    dev, backends = rendered["dev"], rendered["backends"]
    policy = only(dev, "NetworkPolicy", "flight-delay")
    serving_labels = only(dev, "Deployment")["spec"]["template"]["metadata"]["labels"]
    namespace = only(backends, "Namespace")["metadata"]["name"]
    tracking = urlparse(settings_data(dev)["MLOPS_TRACKING_URI"])
    store = yaml.safe_load(feature_store_yaml(dev))
    registry = urlparse(store["registry"]["path"].replace("${", "").replace("}", ""))
    online = store["online_store"]
    assert registry.hostname == online["host"] and registry.port == online["port"]
    for host, port in ((tracking.hostname, tracking.port), (online["host"], online["port"])):
        service, ns = host.split(".")[:2]
        assert (ns, host) == (namespace, f"{service}.{namespace}.svc.cluster.local")
        backend = backend_port(backends, service, port)
        [peer] = egress_to(policy, backend["port"])
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": namespace
        }
        assert peer["podSelector"]["matchLabels"].items() <= backend["labels"].items()
        [inbound] = only(backends, "NetworkPolicy", service)["spec"]["ingress"]
        [source] = inbound["from"]
        assert source["podSelector"]["matchLabels"].items() <= serving_labels.items()
    mlflow = backend_port(backends, tracking.hostname.split(".")[0], tracking.port)["container"]
    allowed = next(a for a in mlflow["args"] if a.startswith("--allowed-hosts="))
    assert tracking.netloc in allowed.split("=", 1)[1].split(",")
    assert mlflow["image"] == serving_container(dev)["image"]  # the same MLflow as the clients
    postgres = backend_port(backends, online["host"].split(".")[0], online["port"])["container"]
    env = {e["name"]: e.get("value") for e in postgres["env"]}
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (online["user"], online["database"])
    assert (registry.username, registry.path.lstrip("/")) == (online["user"], online["database"])
    # The server reads its password from a Secret file, never from an env value.
    assert "POSTGRES_PASSWORD" not in env and env["POSTGRES_PASSWORD_FILE"].startswith("/run/")


def test_prod_reaches_a_managed_database_over_tls_inside_the_vpc(rendered):
    prod = rendered["prod"]
    store = yaml.safe_load(feature_store_yaml(prod))
    assert not store["online_store"]["host"].endswith(".svc.cluster.local")
    [peer] = egress_to(only(prod, "NetworkPolicy", "flight-delay"), store["online_store"]["port"])
    assert set(peer) == {"ipBlock"} and peer["ipBlock"]["cidr"] != "0.0.0.0/0"
    assert (
        settings_data(prod)["MLOPS_TRACKING_URI"]
        == settings_data(rendered["dev"])["MLOPS_TRACKING_URI"]
    )


@pytest.mark.slow
def test_the_clusters_feature_store_config_serves_from_postgresql(rendered, tmp_path, monkeypatch):
    """The rendered feature_store.yaml against a real PostgreSQL (pgserver), only its address
    swapped: serving's config refuses to create the registry (schema_mode verify), the
    pipeline's copy (schema_mode auto, as deploy/README.md makes it) applies and materialises,
    and then the service's OnlineFeatures, pointed there through MLOPS_FEATURE_REPO, reads a
    flight's features with their timestamps."""
    import pandas as pd
    import pgserver

    from mlops_pipeline.features import feast_repo
    from mlops_pipeline.features import tables as feature_tables
    from mlops_pipeline.paths import Paths
    from mlops_pipeline.serving.online import FeatureStoreUnavailable, OnlineFeatures
    from mlops_pipeline.serving.schemas import FlightRequest
    from mlops_pipeline.serving.settings import ServingSettings
    from mlops_pipeline.source import timeline

    end = pd.Timestamp("2013-03-15", tz="UTC")
    start = end - pd.Timedelta(days=1)
    events = timeline.build_timeline(None, end)
    flights, weather, planes = (timeline.rows(events, t) for t in ("flights", "weather", "planes"))
    built = feature_tables.build_feature_tables(flights, weather, planes, start, end)
    paths = Paths.at(tmp_path / "home")
    feature_tables.write_feature_tables(paths, built, start, end)

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
        config = yaml.safe_load(feature_store_yaml(rendered["dev"]))
        # pgserver: the superuser over a unix socket (trust auth), no TLS.
        config["online_store"].update(
            host=socket_dir, user="postgres", database="postgres", sslmode="disable"
        )
        config["registry"]["path"] = (
            f"postgresql+psycopg://postgres:${{{PASSWORD_VARIABLE}}}@/postgres?host={socket_dir}"
        )
        monkeypatch.setenv(PASSWORD_VARIABLE, "unused-with-trust-auth")
        serving_repo = tmp_path / "serving-repo"
        serving_repo.mkdir()
        (serving_repo / "feature_store.yaml").write_text(yaml.safe_dump(config))

        with pytest.raises(FeatureStoreUnavailable, match="missing tables"):
            OnlineFeatures(serving_repo)
        tables = server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public';")
        assert tables.split()[2] == "0"  # serving created nothing

        pipeline = dict(config, registry=dict(config["registry"], schema_mode="auto"))
        paths.feature_repo.mkdir(parents=True)
        (paths.feature_repo / "feature_store.yaml").write_text(yaml.safe_dump(pipeline))
        feast_repo.materialize(feast_repo.apply(paths.feature_repo, paths.features), start, end)

        settings = ServingSettings.from_env(
            {**settings_data(rendered["dev"]), "MLOPS_FEATURE_REPO": str(serving_repo)}
        )
        online = OnlineFeatures(settings.feature_repo_path)
        row = flights[(flights["sched_dep"] >= start) & (flights["sched_dep"] < end)].iloc[0]
        flight = FlightRequest(
            carrier=row.carrier,
            flight=int(row.flight),
            tailnum=row.tailnum if isinstance(row.tailnum, str) else None,
            origin=row.origin,
            dest=row.dest,
            sched_dep=row.sched_dep.to_pydatetime(),
            distance=float(row.distance),
        )
        [readings] = online.read([flight])
        weather_reading = readings["weather"]
        assert weather_reading.event_timestamp is not None
        assert start - pd.Timedelta(hours=3) <= weather_reading.event_timestamp <= end
        assert any(value is not None for value in weather_reading.values.values())
    finally:
        server.cleanup()


# --- autoscaling ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "low", "high"), [("base", 2, 6), ("dev", 1, 3), ("prod", 2, 10)])
def test_hpa_scales_on_cpu_and_requests_per_pod(rendered, name, low, high):
    hpa = only(rendered[name], "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (low, high)
    cpu = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    rps = {"metric": {"name": HPA_METRIC}, "target": {"type": "AverageValue", "averageValue": "40"}}
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": cpu},
        {"type": "Pods", "pods": rps},
    ]
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    for direction in ("scaleUp", "scaleDown"):
        assert {p["type"] for p in behavior[direction]["policies"]} == {"Percent", "Pods"}
    target = hpa["spec"]["scaleTargetRef"]
    expected = ("apps/v1", "Deployment") if name == "base" else ("argoproj.io/v1alpha1", "Rollout")
    assert (target["apiVersion"], target["kind"]) == expected
    only(rendered[name], target["kind"], target["name"])  # it exists


def test_adapter_rule_serves_the_hpa_metric_per_pod(rendered):
    config = yaml.safe_load(only(rendered["monitoring"], "ConfigMap")["data"]["config.yaml"])
    [rule] = config["rules"]
    assert rule["name"]["as"] == HPA_METRIC
    assert rule["seriesQuery"].startswith(HPA_METRIC + "{")
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert "rate(" not in rule["metricsQuery"]  # the series is a rate already
    values = yaml.safe_load(
        (DEPLOY / "k8s" / "monitoring" / "prometheus-adapter-values.yaml").read_text()
    )
    assert (
        values["rules"]["existing"] == only(rendered["monitoring"], "ConfigMap")["metadata"]["name"]
    )


def test_the_recording_rule_behind_the_hpa_metric_exists():
    """deploy/prometheus/recording.yml records the per-pod rate the adapter serves: the 1 m
    request rate of the prediction routes (observability.rules.HPA_ROUTES: probes and scrapes
    are a constant floor per pod, not load), kept per namespace and pod, the two labels the
    adapter maps back to pods."""
    from mlops_pipeline.observability.rules import HPA_ROUTES

    groups = yaml.safe_load((DEPLOY / "prometheus" / "recording.yml").read_text())["groups"]
    rules = {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}
    assert HPA_METRIC in rules
    assert re.fullmatch(HPA_ROUTES, "/v1/predict") and re.fullmatch(HPA_ROUTES, "/v1/predict/batch")
    assert not re.fullmatch(HPA_ROUTES, "/healthz")
    assert promql_key(rules[HPA_METRIC]) == promql_key(
        f'sum by (namespace, pod) (rate(mlops_http_requests_total{{route=~"{HPA_ROUTES}"}}[1m]))'
    )


# --- the canary -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_rollout_runs_the_canary_steps_with_analysis(rendered, name):
    docs = rendered[name]
    rollout = only(docs, "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [5, 25, 50, 100]
    analysed = [
        steps[i - 1]["setWeight"]
        for i, s in enumerate(steps)
        if s.get("analysis", {}).get("templates") == [{"templateName": TEMPLATE}]
    ]
    assert analysed == [5, 25, 50]
    assert canary["stableMetadata"] == {"labels": {"role": "stable"}}
    assert canary["canaryMetadata"] == {"labels": {"role": "canary"}}
    only(docs, "Service", canary["stableService"])
    only(docs, "Service", canary["canaryService"])
    only(docs, "Ingress", canary["trafficRouting"]["nginx"]["stableIngress"])
    only(docs, "AnalysisTemplate", TEMPLATE)
    ref = rollout["spec"]["workloadRef"]
    deployment = only(docs, ref["kind"], ref["name"])
    assert deployment["spec"]["replicas"] == 0  # the Rollout owns the pods
    assert rollout["spec"]["selector"] == deployment["spec"]["selector"]


def promql_key(query: str) -> str:
    """A PromQL expression without the whitespace outside string literals (insignificant)."""
    out, quoted, escaped = [], False, False
    for char in query:
        if quoted:
            out.append(char)
            escaped = char == "\\" and not escaped
            quoted = not (char == '"' and not escaped)
        elif char == '"':
            out.append(char)
            quoted = True
        elif not char.isspace():
            out.append(char)
    return "".join(out)


def expected_analysis(window: str) -> dict[str, tuple[str, str, str]]:
    """metric -> (query, successCondition, failureCondition), from the local controller's
    queries and thresholds (mlops_pipeline.rollout.analysis)."""
    t = Thresholds()

    def q(name: str, role: str) -> str:
        return render(QUERIES[name], role, window)

    known = "len(result) > 0 && !isNaN(result[0])"
    return {
        "canary-traffic": (
            render(SUPPORT_QUERIES["requests"], "canary", window),
            f"{known} && result[0] >= {t.min_requests}",
            "false",
        ),
        "error-rate": (
            q("error_rate", "canary"),
            f"len(result) == 0 || (!isNaN(result[0]) && result[0] <= {t.max_error_rate:g})",
            f"{known} && result[0] > {t.max_error_rate:g}",
        ),
        "p99-latency": (
            f"({q('p99_latency', 'canary')}) - clamp_max({t.max_p99_ratio:g} * "
            f"({q('p99_latency', 'stable')}) + {t.p99_slack_seconds:g}, {t.max_p99_seconds:g})",
            f"{known} && result[0] <= 0",
            f"{known} && result[0] > 0",
        ),
        "mean-score-shift": (
            f"abs(({q('mean_score', 'canary')}) - ({q('mean_score', 'stable')}))",
            f"{known} && result[0] <= {t.max_score_shift:g}",
            f"{known} && result[0] > {t.max_score_shift:g}",
        ),
    }


def test_analysis_template_asks_what_the_local_controller_asks(rendered):
    """Same PromQL (window substituted) and the same thresholds as rollout.analysis."""
    template = only(rendered["prod"], "AnalysisTemplate", TEMPLATE)["spec"]
    args = {a["name"]: a.get("value") for a in template["args"]}
    assert set(args) == {"prometheus-address", "window"}
    assert args["prometheus-address"].startswith("http://")
    expected = expected_analysis(args["window"])  # render() also checks the window's form
    metrics = {m["name"]: m for m in template["metrics"]}
    assert set(metrics) == set(expected)
    assert {"error-rate", "p99-latency", "mean-score-shift"} <= set(metrics)
    for name, (query, success, failure) in expected.items():
        prometheus = metrics[name]["provider"]["prometheus"]
        assert prometheus["address"] == "{{args.prometheus-address}}"
        actual = prometheus["query"].replace("{{args.window}}", args["window"])
        assert promql_key(actual) == promql_key(query), name
        assert (metrics[name]["successCondition"], metrics[name]["failureCondition"]) == (
            success,
            failure,
        ), name


def argo_phase(metric: dict[str, Any], result: list[float]) -> str:
    """Argo Rollouts' EvaluateResult (utils/evaluate) for these conditions, in Python."""

    def holds(condition: str) -> bool:
        python = (
            condition.replace("&&", " and ").replace("||", " or ").replace("!isNaN", "not isNaN")
        )
        python = re.sub(r"\bfalse\b", "False", python)
        scope = {"len": len, "isNaN": math.isnan, "result": result}
        return bool(eval(python, {"__builtins__": {}}, scope))  # our own static strings

    if holds(metric["failureCondition"]):
        return "Failed"
    return "Successful" if holds(metric["successCondition"]) else "Inconclusive"


def test_analysis_conditions_hold_on_unknowns_and_fail_on_breaches(rendered):
    """Empty or NaN results are inconclusive (hold), breaches fail, healthy values pass."""
    metrics = {m["name"]: m for m in only(rendered["prod"], "AnalysisTemplate")["spec"]["metrics"]}
    t, nan = Thresholds(), math.nan
    few, enough = t.min_requests - 1, t.min_requests
    cases = {
        "canary-traffic": [([], "Inconclusive"), ([few], "Inconclusive"), ([enough], "Successful")],
        "error-rate": [
            ([], "Successful"),  # no 5xx series yet: nothing failed
            ([nan], "Inconclusive"),
            ([t.max_error_rate], "Successful"),
            ([0.02], "Failed"),
        ],
        "p99-latency": [([], "Inconclusive"), ([nan], "Inconclusive"), ([0.0], "Successful")]
        + [([0.001], "Failed")],
        "mean-score-shift": [([], "Inconclusive"), ([t.max_score_shift], "Successful")]
        + [([0.06], "Failed")],
    }
    for name, expectations in cases.items():
        for result, phase in expectations:
            assert argo_phase(metrics[name], result) == phase, (name, result)
        assert metrics[name].get("failureLimit", 0) == 0  # one breach aborts


# --- identity, network, disruption ----------------------------------------------------------


def test_service_account_carries_the_irsa_role_only_in_prod(rendered):
    annotation = "eks.amazonaws.com/role-arn"
    prod = only(rendered["prod"], "ServiceAccount")["metadata"]
    assert re.fullmatch(
        r"arn:aws:iam::\d{12}:role/flight-delay-prod-serving", prod["annotations"][annotation]
    )
    assert annotation not in only(rendered["dev"], "ServiceAccount")["metadata"].get(
        "annotations", {}
    )
    for name in ("dev", "prod"):
        account = only(rendered[name], "ServiceAccount")
        pod = only(rendered[name], "Deployment")["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert account["automountServiceAccountToken"] is False


def test_network_policy_selects_the_pods_and_admits_only_ingress_and_prometheus(rendered):
    policy = only(rendered["prod"], "NetworkPolicy")["spec"]
    labels = only(rendered["prod"], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy["ingress"]
        for peer in rule["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}
    # Out: one rule per dependency, each with its ports (a rule without ports opens them all).
    ports = [sorted({p["port"] for p in rule["ports"]}) for rule in policy["egress"]]
    assert ports == [[53], [5000], [5432], [443]]
    [anywhere] = egress_to(only(rendered["prod"], "NetworkPolicy"), 443)
    assert anywhere == {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}


def test_disruption_budget_covers_the_pods(rendered):
    pdb = only(rendered["prod"], "PodDisruptionBudget")["spec"]
    labels = only(rendered["prod"], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["maxUnavailable"] == 1


# --- checkov --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_k8s(rendered, tmp_path_factory) -> list[Any]:
    """One checkov run over the deployed manifests and a broken one (in its own folder)."""
    folder = check.write_rendered(rendered, tmp_path_factory.mktemp("k8s") / "rendered")
    (folder / "broken").mkdir()
    (folder / "broken" / "broken.yaml").write_text(BROKEN_DEPLOYMENT)
    return check.run_checkov(folder, "kubernetes")


@pytest.mark.slow
def test_checkov_finds_nothing_but_the_documented_skips(checkov_k8s):
    skips = check.load_skips()["kubernetes"]
    ours = [f for f in checkov_k8s if not f.file.startswith("/broken/")]
    assert {f.file for f in ours} <= {f"/{name}.yaml" for name in check.DEPLOYED}
    assert [str(f) for f in check.unexpected(ours, skips)] == []
    assert check.stale(ours, skips) == []


@pytest.mark.slow
def test_checkov_fails_the_broken_deployment(checkov_k8s):
    broken = {f.check_id for f in checkov_k8s if f.file.startswith("/broken/")}
    # privileged, privilege escalation, no liveness/readiness probe, no CPU limit: all checks
    # our manifests pass, none on the skip list
    required = {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_11"}
    assert required <= broken
    assert not required & set(check.load_skips()["kubernetes"])


def test_a_missing_checkov_fails_with_the_make_tools_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("CHECKOV", str(tmp_path / "nowhere" / "checkov"))
    with pytest.raises(check.CheckError, match="make tools"):
        check.find_checkov()


def test_every_skip_needs_a_reason(tmp_path):
    thin = tmp_path / "skips.yaml"
    thin.write_text("kubernetes:\n  CKV_K8S_43:\n    reason: because\n")
    with pytest.raises(check.CheckError, match="needs a reason"):
        check.load_skips(thin)
    assert all(len(r.split()) >= 8 for f in check.load_skips().values() for r in f.values())
