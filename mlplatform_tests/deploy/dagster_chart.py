"""The instance configuration (dagster.yaml) Dagster's official chart renders from helm/dagster-values.yaml.

No package ships the dagster/dagster chart and this machine cannot fetch it, so this follows its
instance templates (configmap-instance.yaml, helpers/instance/_run-launcher.tpl,
_run-coordinator.tpl, _postgresql.tpl) for the blocks helm/dagster-values.yaml sets: each chart
key maps to one Dagster config key, and a key the chart does not have raises, as the chart's own
values schema would. The tests then validate the result with Dagster's config machinery.
"""

from __future__ import annotations

from typing import Any

RUN_LAUNCHER_KEYS = {
    "imagePullPolicy": "image_pull_policy",
    "jobNamespace": "job_namespace",
    "loadInclusterConfig": "load_incluster_config",
    "kubeconfigFile": "kubeconfig_file",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "labels": "labels",
    "resources": "resources",
    "failPodOnRunFailure": "fail_pod_on_run_failure",
    "schedulerName": "scheduler_name",
    "securityContext": "security_context",
}
# Lists of {name: ...} in the chart, lists of names in Dagster.
RUN_LAUNCHER_NAME_LISTS = {"envConfigMaps": "env_config_maps", "envSecrets": "env_secrets"}
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}
QUEUED_RUN_COORDINATOR_KEYS = {
    "maxConcurrentRuns": "max_concurrent_runs",
    "tagConcurrencyLimits": "tag_concurrency_limits",
    "dequeueIntervalSeconds": "dequeue_interval_seconds",
    "dequeueUseThreads": "dequeue_use_threads",
    "dequeueNumWorkers": "dequeue_num_workers",
}
RUN_MONITORING_KEYS = {
    "enabled": "enabled",
    "startTimeoutSeconds": "start_timeout_seconds",
    "cancelTimeoutSeconds": "cancel_timeout_seconds",
    "maxResumeRunAttempts": "max_resume_run_attempts",
    "pollIntervalSeconds": "poll_interval_seconds",
    "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds",
}
RUN_RETRIES_KEYS = {
    "enabled": "enabled",
    "maxRetries": "max_retries",
    "retryOnAssetOrOpFailure": "retry_on_asset_or_op_failure",
}
DAEMON_THREADS_KEYS = {
    "useThreads": "use_threads",
    "numWorkers": "num_workers",
    "numSubmitWorkers": "num_submit_workers",
}
DAGSTER_HOME = "/opt/dagster/dagster_home"


def _translate(block: dict[str, Any], keys: dict[str, str], where: str) -> dict[str, Any]:
    unknown = set(block) - set(keys)
    if unknown:
        raise KeyError(f"{where}: {sorted(unknown)} is none of the chart keys known here: {sorted(keys)}")
    return {keys[key]: value for key, value in block.items() if value is not None}


def run_launcher_config(values: dict[str, Any], release: str, namespace: str) -> dict[str, Any]:
    """The K8sRunLauncher config: the chart's own fields plus the values' k8sRunLauncher block."""
    launcher = values["runLauncher"]
    if launcher["type"] != "K8sRunLauncher":
        raise ValueError(f"runLauncher.type is {launcher['type']!r}, these tests cover K8sRunLauncher")
    block = dict(launcher["config"]["k8sRunLauncher"])
    where = "runLauncher.config.k8sRunLauncher"
    names = {
        RUN_LAUNCHER_NAME_LISTS[key]: [entry["name"] for entry in block.pop(key)]
        for key in list(block)
        if key in RUN_LAUNCHER_NAME_LISTS
    }
    run_k8s = block.pop("runK8sConfig", None)
    config = {
        "job_namespace": namespace,
        "service_account_name": f"{release}-dagster",
        "instance_config_map": f"{release}-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "dagster_home": DAGSTER_HOME,
        **_translate(block, RUN_LAUNCHER_KEYS, where),
        **{key: value for key, value in names.items() if value},
    }
    if run_k8s:
        config["run_k8s_config"] = _translate(run_k8s, RUN_K8S_CONFIG_KEYS, f"{where}.runK8sConfig")
    return config


def run_coordinator_config(values: dict[str, Any]) -> dict[str, Any]:
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    if coordinator["type"] != "QueuedRunCoordinator":
        raise ValueError(f"runCoordinator.type is {coordinator['type']!r}, expected QueuedRunCoordinator")
    block = coordinator["config"]["queuedRunCoordinator"]
    return _translate(
        block, QUEUED_RUN_COORDINATOR_KEYS, "dagsterDaemon.runCoordinator.config.queuedRunCoordinator"
    )


def postgres_storage_config(values: dict[str, Any]) -> dict[str, Any]:
    """What each of the run, event log and schedule storages gets (the password from the Secret's variable)."""
    postgresql = values["postgresql"]
    return {
        "postgres_db": {
            "username": postgresql["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": postgresql["postgresqlHost"],
            "db_name": postgresql["postgresqlDatabase"],
            "port": postgresql["service"]["port"],
            "params": postgresql.get("postgresqlParams", {}),
            **({"scheme": postgresql["postgresqlScheme"]} if "postgresqlScheme" in postgresql else {}),
        }
    }


def instance_config(values: dict[str, Any], release: str, namespace: str) -> dict[str, Any]:
    """The dagster.yaml of the release's instance ConfigMap, for the blocks these values set."""
    daemon = values["dagsterDaemon"]
    storage = postgres_storage_config(values)
    instance: dict[str, Any] = {
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": storage,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": storage,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": storage,
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": run_launcher_config(values, release, namespace),
        },
        "run_coordinator": {
            # The module path Dagster 1.13 imports the class from.
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": run_coordinator_config(values),
        },
        "run_monitoring": _translate(
            daemon["runMonitoring"], RUN_MONITORING_KEYS, "dagsterDaemon.runMonitoring"
        ),
        "run_retries": _translate(daemon["runRetries"], RUN_RETRIES_KEYS, "dagsterDaemon.runRetries"),
        "sensors": _translate(daemon["sensors"], DAEMON_THREADS_KEYS, "dagsterDaemon.sensors"),
        "schedules": _translate(daemon["schedules"], DAEMON_THREADS_KEYS, "dagsterDaemon.schedules"),
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    retention = values.get("retention", {})
    if retention.get("enabled"):
        instance["retention"] = {
            name: {"purge_after_days": retention[name]["purgeAfterDays"]}
            for name in ("schedule", "sensor")
            if name in retention
        }
    return {**instance, **values.get("additionalInstanceConfig", {})}


def user_deployment(values: dict[str, Any], name: str) -> dict[str, Any]:
    (deployment,) = [d for d in values["dagster-user-deployments"]["deployments"] if d["name"] == name]
    return deployment


def env_value(deployment: dict[str, Any], name: str) -> str:
    (value,) = [entry["value"] for entry in deployment["env"] if entry["name"] == name]
    return str(value)


def user_deployment_pod(values: dict[str, Any], name: str, release: str) -> dict[str, Any]:
    """The pod spec of one user-code deployment, as the chart's dagster-user-deployments subchart
    (templates/deployment-user.yaml) renders it for the fields these values set: the gRPC server
    on the deployment's port with its dagsterApiGrpcArgs, the instance's PostgreSQL password from
    the global Secret, the instance ConfigMap as $DAGSTER_HOME/dagster.yaml, the gRPC health check
    as the readiness probe, and the deployment's own env, envSecrets, volumes and security."""
    deployment = user_deployment(values, name)
    port = int(deployment["port"])
    container = {
        "name": name,
        "args": [
            "dagster",
            "api",
            "grpc",
            "-h",
            "0.0.0.0",
            "-p",
            str(port),
            *deployment["dagsterApiGrpcArgs"],
        ],
        "ports": [{"name": "grpc", "containerPort": port}],
        "env": [
            {
                "name": "DAGSTER_CURRENT_IMAGE",
                "value": f"{deployment['image']['repository']}:{deployment['image']['tag']}",
            },
            {
                "name": "DAGSTER_PG_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": values["global"]["postgresqlSecretName"],
                        "key": "postgresql-password",
                    }
                },
            },
            *deployment.get("env", []),
        ],
        "envFrom": [{"secretRef": {"name": secret["name"]}} for secret in deployment.get("envSecrets", [])],
        "readinessProbe": {
            "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(port)]},
            "periodSeconds": 20,
            "timeoutSeconds": 10,
        },
        "securityContext": deployment.get("securityContext", {}),
        "volumeMounts": [
            *deployment.get("volumeMounts", []),
            {
                "name": "dagster-instance",
                "mountPath": f"{DAGSTER_HOME}/dagster.yaml",
                "subPath": "dagster.yaml",
            },
        ],
    }
    volumes = [
        *deployment.get("volumes", []),
        {"name": "dagster-instance", "configMap": {"name": f"{release}-dagster-instance"}},
    ]
    return {
        "securityContext": deployment.get("podSecurityContext", {}),
        "containers": [container],
        "volumes": volumes,
    }
