"""helm/mlplatform rendered with the Helm SDK, every manifest validated against Kubernetes' schemas.

The chart is rendered offline (no cluster) with default values and with variations; each manifest
is checked against the OpenAPI schemas of the newest Kubernetes version kubernetes-validate
bundles, and the tests assert what an operator relies on: probes, non-root read-only pods,
resources, the canary's share of pods, Secrets referenced and never inlined, and HPA/PDB targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from mlplatform_tests.production.charts import manifests

CHART = Path(__file__).resolve().parents[2] / "helm" / "mlplatform"
RELEASE, NAMESPACE = "mlp", "ml"
KUBERNETES = kubernetes_validate.utils.latest_version()
# Custom resources whose schema is not part of Kubernetes itself (checked by hand below).
CUSTOM_KINDS = {"ServiceMonitor"}
SERVING_PORT = 8000

CANARY = {"canary": {"enabled": True, "share": 0.25, "image": {"tag": "2.0.0"}}}
VARIATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "canary": CANARY,
    "canary-autoscaling-off": {**CANARY, "autoscaling": {"enabled": False}},
    "mlflow-off": {"mlflow": {"enabled": False}, "config": {"mlflowTrackingUri": "http://mlflow.tools:5000"}},
    "ingress": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"hosts": ["mlplatform.example.com"], "secretName": "mlplatform-tls"}],
        }
    },
    "servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
}
DEFAULT_KINDS = [
    "Deployment",
    "Deployment",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Service",
    "Service",
    "ServiceAccount",
]
EXPECTED_KINDS = {
    "default": DEFAULT_KINDS,
    "canary": sorted([*DEFAULT_KINDS, "Deployment"]),
    "canary-autoscaling-off": sorted(
        [*[kind for kind in DEFAULT_KINDS if kind != "HorizontalPodAutoscaler"], "Deployment"]
    ),
    "mlflow-off": [
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ],
    "ingress": sorted([*DEFAULT_KINDS, "Ingress"]),
    "servicemonitor": sorted([*DEFAULT_KINDS, "ServiceMonitor"]),
}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest the chart renders for these values, as release ``mlp`` in namespace ``ml``."""
    return manifests(chart, values, RELEASE, NAMESPACE)


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (manifest,) = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    return manifest


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def container_of(manifests: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    """The (only) container of one of the release's Deployments, e.g. "" (stable), "-mlflow"."""
    pod = named(manifests, "Deployment", f"{RELEASE}-mlplatform{deployment}")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


@pytest.mark.parametrize("variation", list(VARIATIONS))
def test_every_manifest_is_valid_kubernetes(chart: helm.Chart, variation: str) -> None:
    manifests = render(chart, VARIATIONS[variation])

    assert sorted(m["kind"] for m in manifests) == EXPECTED_KINDS[variation]
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


def test_an_invalid_manifest_fails_the_kubernetes_schema() -> None:
    """The validation above can fail: a probe with a misspelt field is not a Kubernetes object."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "livenessProbe": {"httpGet": {"pth": "/"}}}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES, strict=True)


@pytest.mark.parametrize("variation", ["default", "canary", "mlflow-off"])
def test_serving_pods_probe_the_right_paths_and_run_locked_down(chart: helm.Chart, variation: str) -> None:
    manifests = render(chart, VARIATIONS[variation])
    serving = [
        d
        for d in of_kind(manifests, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "serving"
    ]
    assert serving

    for deployment in serving:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"][:4] == ["mlplatform", "serve", "--host", "0.0.0.0"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": SERVING_PORT}
        assert container["args"][container["args"].index("--port") + 1] == str(SERVING_PORT)
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}

        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] in scratch
        assert mounts[env_of(container)["MLPLATFORM_HOME"]["value"]] in scratch

        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound])

    (service,) = [
        s for s in of_kind(manifests, "Service") if s["metadata"]["name"] == f"{RELEASE}-mlplatform"
    ]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    for deployment in serving:
        assert matches(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize(
    ("replicas", "share", "expected_canary"),
    [(3, 0.25, 1), (3, 0.5, 3), (4, 0.2, 1), (9, 0.1, 1), (2, 0.75, 6), (10, 0.3, 5)],
)
def test_canary_gets_its_share_of_the_serving_pods(
    chart: helm.Chart, replicas: int, share: float, expected_canary: int
) -> None:
    values = {
        "replicaCount": replicas,
        "autoscaling": {"enabled": False},
        "canary": {"enabled": True, "share": share, "image": {"tag": "2.0.0"}},
    }
    manifests = render(chart, values)
    stable = named(manifests, "Deployment", f"{RELEASE}-mlplatform")
    canary = named(manifests, "Deployment", f"{RELEASE}-mlplatform-canary")

    assert stable["spec"]["replicas"] == replicas
    assert canary["spec"]["replicas"] == expected_canary
    # The smallest whole number of pods that gives the canary at least its share.
    actual = expected_canary / (replicas + expected_canary)
    assert actual >= share
    assert (expected_canary - 1) / (replicas + expected_canary - 1) < share or expected_canary == 1
    assert container_of(manifests, "-canary")["image"] == "mlplatform:2.0.0"
    assert container_of(manifests, "")["image"] == "mlplatform:0.1.0"
    assert canary["spec"]["selector"]["matchLabels"]["mlplatform/track"] == "canary"


def test_with_autoscaling_the_hpa_owns_the_stable_replicas_and_the_canary_follows_its_floor(
    chart: helm.Chart,
) -> None:
    values = {**CANARY, "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12}}
    manifests = render(chart, values)
    stable = named(manifests, "Deployment", f"{RELEASE}-mlplatform")
    canary = named(manifests, "Deployment", f"{RELEASE}-mlplatform-canary")
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")

    assert "replicas" not in stable["spec"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert canary["spec"]["replicas"] == 1


@pytest.mark.parametrize("variation", ["default", "canary"])
def test_hpa_and_pdb_target_the_stable_deployment(chart: helm.Chart, variation: str) -> None:
    manifests = render(chart, VARIATIONS[variation])
    stable = named(manifests, "Deployment", f"{RELEASE}-mlplatform")
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")
    (pdb,) = of_kind(manifests, "PodDisruptionBudget")

    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"], target["apiVersion"]) == (
        "Deployment",
        stable["metadata"]["name"],
        "apps/v1",
    )
    stable_labels = stable["spec"]["template"]["metadata"]["labels"]
    assert matches(pdb["spec"]["selector"]["matchLabels"], stable_labels)
    for other in of_kind(manifests, "Deployment"):
        if other is not stable:
            assert not matches(
                pdb["spec"]["selector"]["matchLabels"], other["spec"]["template"]["metadata"]["labels"]
            )


def test_secrets_are_referenced_by_name_and_never_inlined(chart: helm.Chart) -> None:
    values = {"secrets": {"extraEnvFrom": ["mlplatform-alerts"]}}
    rendered_text = "".join(chart.render(values, name=RELEASE, namespace=NAMESPACE).values())
    manifests = render(chart, values)

    assert not of_kind(manifests, "Secret")
    serving = container_of(manifests, "")
    mlflow = container_of(manifests, "-mlflow")
    expected = {
        "MLPLATFORM_API_TOKEN": ("mlplatform-api-token", "token"),
        "AWS_ACCESS_KEY_ID": ("mlplatform-storage", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": ("mlplatform-storage", "AWS_SECRET_ACCESS_KEY"),
    }
    for container, names in (
        (serving, expected),
        (mlflow, {k: v for k, v in expected.items() if k.startswith("AWS")}),
    ):
        env = env_of(container)
        for name, (secret, key) in names.items():
            assert "value" not in env[name]
            assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
        assert container["envFrom"] == [{"secretRef": {"name": "mlplatform-alerts"}}]
    backend = env_of(mlflow)["MLFLOW_BACKEND_STORE_URI"]
    assert backend["valueFrom"]["secretKeyRef"] == {"name": "mlplatform-mlflow", "key": "backend-store-uri"}
    assert "$(MLFLOW_BACKEND_STORE_URI)" in mlflow["args"]
    assert "postgresql://" not in rendered_text


def test_without_secret_names_no_credentials_are_wired(chart: helm.Chart) -> None:
    values = {"secrets": {"apiToken": {"existingSecret": ""}, "storage": {"existingSecret": ""}}}
    env = env_of(container_of(render(chart, values), ""))

    assert not {"MLPLATFORM_API_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_environment_comes_from_values(chart: helm.Chart) -> None:
    values = {
        "config": {
            "warehouse": "s3://lake/warehouse",
            "predictionLog": "s3://lake/predictions",
            "mlflowUiUrl": "https://mlflow.example.com",
            "extraEnv": {"MLPLATFORM_DEFS_DIR": "/defs"},
        },
        "storage": {"endpointUrl": "http://minio.storage:9000", "region": "eu-west-1"},
        "serving": {"pollSeconds": 2},
    }
    manifests = render(chart, values)
    serving = container_of(manifests, "")
    mlflow = container_of(manifests, "-mlflow")
    env = {name: entry.get("value") for name, entry in env_of(serving).items()}

    assert env["MLPLATFORM_WAREHOUSE"] == "s3://lake/warehouse"
    assert env["MLPLATFORM_PREDICTION_LOG"] == "s3://lake/predictions"
    assert env["MLFLOW_TRACKING_URI"] == f"http://{RELEASE}-mlplatform-mlflow:5000"
    assert env["MLPLATFORM_MLFLOW_UI"] == "https://mlflow.example.com"
    assert env["MLPLATFORM_S3_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["MLPLATFORM_DEFS_DIR"] == "/defs"
    assert serving["args"][serving["args"].index("--poll-seconds") + 1] == "2"
    mlflow_env = {name: entry.get("value") for name, entry in env_of(mlflow).items()}
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.storage:9000"
    allowed = str(mlflow_env["MLFLOW_SERVER_ALLOWED_HOSTS"]).split(",")
    service = f"{RELEASE}-mlplatform-mlflow"
    assert {f"{service}:5000", f"{service}.{NAMESPACE}.svc:5000"} <= set(allowed)
    assert "localhost:*" in allowed  # kubectl port-forward


def test_mlflow_server_serves_artifacts_from_object_storage_and_is_probed(chart: helm.Chart) -> None:
    manifests = render(chart, {})
    deployment = named(manifests, "Deployment", f"{RELEASE}-mlplatform-mlflow")
    service = named(manifests, "Service", f"{RELEASE}-mlplatform-mlflow")
    container = container_of(manifests, "-mlflow")
    args = container["args"]

    assert args[:2] == ["mlflow", "server"]
    assert args[args.index("--artifacts-destination") + 1] == "s3://mlplatform/mlflow-artifacts"
    assert "--serve-artifacts" in args
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert matches(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])


def test_mlflow_off_uses_the_configured_tracking_uri(chart: helm.Chart) -> None:
    manifests = render(chart, VARIATIONS["mlflow-off"])
    serving = container_of(manifests, "")

    assert env_of(serving)["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.tools:5000"
    assert all("mlflow" not in m["metadata"]["name"] for m in manifests)


def test_network_policy_admits_the_service_port_and_limits_egress(chart: helm.Chart) -> None:
    manifests = render(
        chart,
        {
            "networkPolicy": {
                "servingIngressFrom": [{"namespaceSelector": {"matchLabels": {"name": "gateway"}}}]
            }
        },
    )
    policy = named(manifests, "NetworkPolicy", f"{RELEASE}-mlplatform")
    stable = named(manifests, "Deployment", f"{RELEASE}-mlplatform")

    assert matches(
        policy["spec"]["podSelector"]["matchLabels"], stable["spec"]["template"]["metadata"]["labels"]
    )
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"name": "gateway"}}}]
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (5000, "TCP"), (443, "TCP")} <= egress_ports


def test_ingress_routes_to_the_service(chart: helm.Chart) -> None:
    manifests = render(chart, VARIATIONS["ingress"])
    (ingress,) = of_kind(manifests, "Ingress")
    (rule,) = ingress["spec"]["rules"]

    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert rule["host"] == "mlplatform.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-mlplatform", "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["mlplatform.example.com"], "secretName": "mlplatform-tls"}]


def test_service_monitor_scrapes_metrics_from_the_service(chart: helm.Chart) -> None:
    manifests = render(chart, VARIATIONS["servicemonitor"])
    (monitor,) = of_kind(manifests, "ServiceMonitor")
    service = named(manifests, "Service", f"{RELEASE}-mlplatform")

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert not matches(
        monitor["spec"]["selector"]["matchLabels"],
        named(manifests, "Service", f"{RELEASE}-mlplatform-mlflow")["metadata"]["labels"],
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 1"),
        ({"canary": {"share": 1.5}}, "at '/canary/share': exclusiveMaximum: got 1.5, want 1"),
        ({"canary": {"share": 0}}, "at '/canary/share': exclusiveMinimum: got 0, want 0"),
        ({"image": {"repository": ""}}, "at '/image/repository': minLength: got 0, want 1"),
        ({"image": {"repository": None}}, "at '/image': missing property 'repository'"),
        ({"replicacount": 2}, "additional properties 'replicacount' not allowed"),
        ({"serving": {"resources": {"limits": None}}}, "at '/serving/resources': missing property 'limits'"),
        ({"canary": {"enabled": True}}, "canary.image.tag is required when canary.enabled is true"),
        ({"mlflow": {"enabled": False}}, "config.mlflowTrackingUri is required when mlflow.enabled is false"),
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (2)",
        ),
        (
            {"mlflow": {"backendStore": {"existingSecret": ""}}},
            "mlflow.backendStore.existingSecret is required",
        ),
    ],
)
def test_bad_values_fail_the_render_with_a_clear_message(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError) as failure:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert message in str(failure.value)


def test_helm_lint_passes_strict() -> None:
    report = helm.lint(CHART, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBERNETES}")

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_helm_lint_reports_bad_values() -> None:
    report = helm.lint(CHART, {"canary": {"share": 2}}, strict=True)

    assert any("/canary/share" in error for error in report["errors"])
