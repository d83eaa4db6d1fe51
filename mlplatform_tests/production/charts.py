"""What the charts give each container, turned into the podman flags that run it the same way.

helm/mlplatform is rendered with the Helm SDK (the prediction service and the MLflow server);
the code location's pod is what Dagster's chart renders from helm/dagster-values.yaml
(``dagster_chart.user_deployment_pod``). From each pod the test takes the command and arguments,
the ports, the environment variable names (values: the chart's own, or the test's servers where
the chart names a cluster address or a Secret), the probes and the security settings:

- ``runAsUser``/``runAsGroup``/``runAsNonRoot`` -> ``--user uid:gid`` (never 0);
- ``readOnlyRootFilesystem`` -> ``--read-only --read-only-tmpfs=false`` (no writable /tmp unless
  the pod mounts one, as in Kubernetes);
- ``allowPrivilegeEscalation: false`` -> ``--security-opt no-new-privileges``;
- ``capabilities.drop``/``add`` -> ``--cap-drop``/``--cap-add``;
- an ``emptyDir`` volume -> a new host folder anyone may write to (podman's tmpfs takes the image
  folder's root ownership, which the pod's user could not write), a claim or ConfigMap -> the
  host folder or file the test gives for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "mlplatform"
DAGSTER_VALUES = REPO / "helm" / "dagster-values.yaml"
RELEASE, NAMESPACE = "mlplatform", "mlplatform"


@dataclass(frozen=True)
class Pod:
    """One container of a chart's pod, with the pod-level settings that apply to it."""

    name: str
    container: dict[str, Any]
    pod_security: dict[str, Any]
    volumes: dict[str, dict[str, Any]]

    @property
    def security(self) -> dict[str, Any]:
        """The container's effective security settings (the container's win over the pod's)."""
        return {**self.pod_security, **self.container.get("securityContext", {})}

    @property
    def ports(self) -> dict[str, int]:
        return {p["name"]: int(p["containerPort"]) for p in self.container.get("ports", [])}

    @property
    def env_names(self) -> set[str]:
        return {entry["name"] for entry in self.container.get("env", [])}

    @property
    def env_secrets(self) -> list[str]:
        return [
            source["secretRef"]["name"]
            for source in self.container.get("envFrom", [])
            if "secretRef" in source
        ]

    @property
    def probes(self) -> dict[str, dict[str, Any]]:
        kinds = ("startupProbe", "livenessProbe", "readinessProbe")
        return {kind: self.container[kind] for kind in kinds if kind in self.container}


@dataclass
class Launch:
    """The podman flags and command that run a ``Pod``'s container, and the environment it got."""

    flags: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    from_env_secrets: set[str] = field(default_factory=set)  # names of the envFrom Secrets' keys


def manifests(
    chart: helm.Chart, values: dict[str, Any], release: str = RELEASE, namespace: str = NAMESPACE
) -> list[dict[str, Any]]:
    """Every manifest the chart renders for these values (NOTES.txt is text, not a manifest)."""
    rendered = chart.render(values, name=release, namespace=namespace)
    return [
        document
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document
    ]


def render_mlplatform(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        return manifests(chart, values)


def deployment_pod(manifests: list[dict[str, Any]], name: str) -> Pod:
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == name]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    return Pod(name, container, spec.get("securityContext", {}), volumes)


def dagster_values() -> dict[str, Any]:
    return yaml.safe_load(DAGSTER_VALUES.read_text())


def _expand(argument: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command and args from the container's environment."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), argument)


def launch(
    pod: Pod,
    values: dict[str, str],
    secrets: dict[str, dict[str, str]],
    mounts: dict[str, str],
    scratch: Path,
    extra_env: dict[str, str] | None = None,
) -> Launch:
    """The container as the chart runs it. ``values``: the test's value for an env var whose chart
    value is a cluster address (any other keeps the chart's value); ``secrets``: each Secret's keys;
    ``mounts``: a host path for each claim or ConfigMap volume; ``scratch``: the folder for the
    emptyDirs; ``extra_env``: the test's own variables, none of which the chart sets."""
    spec, out = pod.container, Launch()
    for entry in spec.get("env", []):
        name = entry["name"]
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            out.env[name] = secrets[ref["name"]][ref["key"]]
        else:
            out.env[name] = values.get(name, str(entry.get("value", "")))
    for secret in pod.env_secrets:
        out.env.update(secrets[secret])
        out.from_env_secrets |= set(secrets[secret])
    unknown = set(values) - set(out.env)
    if unknown:
        raise KeyError(f"{pod.name}: the chart sets no {sorted(unknown)}")
    clash = set(extra_env or {}) & set(out.env)
    if clash:
        raise KeyError(f"{pod.name}: {sorted(clash)} are the chart's variables, not extras")
    out.env.update(extra_env or {})

    security = pod.security
    user, group = security.get("runAsUser"), security.get("runAsGroup")
    if security.get("runAsNonRoot") and user in (None, 0):
        raise ValueError(f"{pod.name}: runAsNonRoot without a non-zero runAsUser")
    if user is not None:
        out.flags += ["--user", f"{user}:{group if group is not None else user}"]
    if security.get("readOnlyRootFilesystem"):
        out.flags += ["--read-only", "--read-only-tmpfs=false"]
    if security.get("allowPrivilegeEscalation") is False:
        out.flags += ["--security-opt", "no-new-privileges"]
    for capability in security.get("capabilities", {}).get("drop", []):
        out.flags += ["--cap-drop", capability]
    for capability in security.get("capabilities", {}).get("add", []):
        out.flags += ["--cap-add", capability]
    for mount in spec.get("volumeMounts", []):
        volume = pod.volumes[mount["name"]]
        if "emptyDir" in volume:
            folder = scratch / f"{pod.name}-{mount['name']}"
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o1777)
            out.flags += ["--volume", f"{folder}:{mount['mountPath']}:rw"]
        else:
            mode = "ro" if mount.get("readOnly") or "configMap" in volume else "rw"
            out.flags += ["--volume", f"{mounts[mount['name']]}:{mount['mountPath']}:{mode}"]
    for name, value in out.env.items():
        out.flags += ["--env", f"{name}={value}"]
    if "command" in spec:
        out.flags += ["--entrypoint", yaml.safe_dump(spec["command"], default_flow_style=True).strip()]
    out.command = [_expand(str(argument), out.env) for argument in spec.get("args", [])]
    return out
