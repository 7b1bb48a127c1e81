"""deploy/kubernetes is true to the code and to Kubernetes: the manifests validate against the
Kubernetes schemas, run commands that exist with settings that exist, probe the paths and
ports the services serve, and carry what a platform team expects of every workload."""
from __future__ import annotations

import pytest
import yaml

from tests.deploy import kit

SERVICES = list(kit.PREFIXES)
DOCS = kit.kustomize_resources()
BY_KIND: dict[str, dict[str, dict]] = {}
for _d in DOCS:
    BY_KIND.setdefault(_d["kind"], {})[_d["metadata"]["name"]] = _d
WORKLOADS = {**BY_KIND.get("Deployment", {}), **BY_KIND.get("StatefulSet", {})}
JOBS = BY_KIND["Job"]
CONFIGMAPS = BY_KIND["ConfigMap"]
# Secrets are created out of band (deploy/README.md); their example lists the values.
SECRET_EXAMPLE = kit.read_env_file(kit.KUBE_DIR / "secrets" / "aftersales.env.example")


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_manifests_validate_against_the_kubernetes_schemas(version):
    """Strict: an unknown field fails too (the oldest and newest Kubernetes the package ships
    schemas for that the kit supports)."""
    import kubernetes_validate

    for doc in DOCS:
        kubernetes_validate.validate(doc, version, strict=True)
    # not a rubber stamp: a misspelt field is refused
    broken = yaml.safe_load(yaml.safe_dump(WORKLOADS["orders"]))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_everything_lands_in_one_namespace_and_is_labelled():
    ns = [d for d in DOCS if d["kind"] == "Namespace"]
    assert len(ns) == 1 and ns[0]["metadata"]["name"] == "aftersales"
    assert ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for d in DOCS:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "aftersales", d["metadata"]["name"]
            assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aftersales"


def _containers(doc):
    return kit.pod_spec(doc)["containers"]


def _env_names(doc, container) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for ref in container.get("envFrom", []):
        names |= set(CONFIGMAPS[ref["configMapRef"]["name"]]["data"])
    return names


def test_every_container_runs_a_command_that_exists():
    for name in SERVICES:
        c = _containers(WORKLOADS[name])[0]
        assert c["command"] == [name, "serve"]
        assert kit.check_command(c["command"]) is None
        job = JOBS[f"{name}-migrate"]
        assert _containers(job)[0]["command"] == [name, "migrate"]
        assert kit.check_command(_containers(job)[0]["command"]) is None
    app_containers = [(d, c) for d in [*WORKLOADS.values(), *JOBS.values()] for c in _containers(d)
                      if c["image"].startswith("registry.example.com/aftersales/")]
    assert len(app_containers) == 2 * len(SERVICES) + 1  # each service and its migration, the topics Job
    for d, c in app_containers:
        assert kit.check_command(c["command"]) is None, (d["metadata"]["name"], c["command"])


def test_every_environment_variable_is_a_setting_of_that_service():
    for name in SERVICES:
        for doc in (WORKLOADS[name], JOBS[f"{name}-migrate"]):
            c = _containers(doc)[0]
            unknown = _env_names(doc, c) - kit.setting_env_names(name) - set(kit.NON_SETTING_ENV)
            assert not unknown, f"{doc['metadata']['name']}: not settings of {name}: {sorted(unknown)}"
    job = JOBS["kafka-topics"]  # orders' command, orders' settings
    assert not _env_names(job, _containers(job)[0]) - kit.setting_env_names("orders") - set(kit.NON_SETTING_ENV)


def _example_name(secret: str, key: str) -> str:
    """The example file's name for a Secret's key: aftersales-token/token-secret → TOKEN_SECRET,
    <svc>-database/url → <PREFIX>DATABASE_URL, <svc>-kafka/username → <PREFIX>KAFKA_USERNAME,
    kafka-admin/password → KAFKA_ADMIN_PASSWORD, orders-blob-store/access-key-id →
    ORDERS_BLOB_S3_ACCESS_KEY_ID, notifier-sms-gateway/key → SMS_GATEWAY_KEY,
    console-service-client/client-id → CONSOLE_SERVICE_CLIENT_ID."""
    if secret == "aftersales-token":
        return "TOKEN_SECRET"
    if secret == "console-service-client":
        return f"CONSOLE_SERVICE_{key.replace('-', '_').upper()}"
    if secret == "notifier-sms-gateway":
        return f"SMS_GATEWAY_{key.upper()}"
    if secret == "orders-blob-store":
        return f"ORDERS_BLOB_S3_{key.replace('-', '_').upper()}"
    if secret == "kafka-admin":
        return f"KAFKA_ADMIN_{key.upper()}"
    service, _, kind = secret.rpartition("-")
    prefix = kit.PREFIXES[service]
    return f"{prefix}DATABASE_URL" if kind == "database" else f"{prefix}KAFKA_{key.upper()}"


def _resolved_env(doc, container) -> dict[str, str]:
    """The container's environment with the Secrets' values taken from the example file."""
    env = {}
    for ref in container.get("envFrom", []):
        env.update(CONFIGMAPS[ref["configMapRef"]["name"]]["data"])
    example = {k: v or "x" * 8 + kit.example_env()["TOKEN_SECRET"] for k, v in SECRET_EXAMPLE.items()}
    for e in container.get("env", []):
        ref = e["valueFrom"]["secretKeyRef"]
        env[e["name"]] = example[_example_name(ref["name"], ref["key"])]
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_the_settings_pass_the_production_checks(service, monkeypatch):
    from shared.settings import load_settings

    doc = WORKLOADS[service]
    env = _resolved_env(doc, _containers(doc)[0])
    with kit.environment(monkeypatch, env, kit.PREFIXES[service]):
        s = load_settings(kit.settings_class(service))
    assert s.environment == "production" and s.database_url.startswith("postgresql+asyncpg://")
    assert s.kafka_idempotent_producer is True and s.kafka_replication_factor == 3
    assert s.run_migrations_on_start is False
    assert s.host == "0.0.0.0"
    # TLS and SASL to the brokers, the CA where the kafka-ca ConfigMap is mounted
    assert s.kafka_security_protocol == "SASL_SSL" and s.kafka_allow_plaintext is False
    assert s.kafka_sasl_mechanism == "SCRAM-SHA-512" and s.kafka_min_insync_replicas == 2
    c = _containers(doc)[0]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in kit.pod_spec(doc)["volumes"]}
    assert s.kafka_ssl_cafile == f"{mounts['kafka-ca']}/ca.crt" and volumes["kafka-ca"]["configMap"]["name"] == "kafka-ca"
    # the migration Job reads the same settings
    job = JOBS[f"{service}-migrate"]
    assert _resolved_env(job, _containers(job)[0]) == env


def test_the_console_reads_the_services_through_their_services_with_secure_cookies(monkeypatch):
    from shared.settings import load_settings

    def address(service: str) -> str:
        port = next(p["port"] for p in BY_KIND["Service"][service]["spec"]["ports"] if p["name"] == "http")
        return f"http://{service}:{port}"

    doc = WORKLOADS["console"]
    env = _resolved_env(doc, _containers(doc)[0])
    with kit.environment(monkeypatch, env, "CONSOLE_"):
        s = load_settings(kit.settings_class("console"))
    kit.check_console_settings(s, address)
    # its operator client comes from a Secret, never from the ConfigMap
    data = CONFIGMAPS["console-config"]["data"]
    assert not {"CONSOLE_SERVICE_CLIENT_ID", "CONSOLE_SERVICE_CLIENT_SECRET"} & set(data)


def test_ports_probes_and_scraping_match_the_settings_and_routes():
    for name in SERVICES:
        doc = WORKLOADS[name]
        c = _containers(doc)[0]
        data = CONFIGMAPS[f"{name}-config"]["data"]
        prefix = kit.PREFIXES[name]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["http"] == int(data[f"{prefix}PORT"]) == kit.settings_class(name).model_fields["port"].default
        assert ports["metrics"] == int(data[f"{prefix}METRICS_PORT"])
        assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert c["startupProbe"]["httpGet"]["path"] == "/health"
        assert {"/health", "/ready"} <= kit.public_paths(name)
        ann = doc["spec"]["template"]["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true"
        assert int(ann["prometheus.io/port"]) == ports["metrics"] and ann["prometheus.io/path"] == "/metrics"
        svc = BY_KIND["Service"][name]
        assert svc["spec"]["selector"] == doc["spec"]["selector"]["matchLabels"]
        sp = {p["name"]: p for p in svc["spec"]["ports"]}
        assert sp["http"]["port"] == ports["http"] and sp["http"]["targetPort"] == "http"
        assert sp["metrics"]["targetPort"] == "metrics"


def test_every_workload_is_hardened_bounded_and_budgeted():
    for name in SERVICES:
        doc = WORKLOADS[name]
        pod = kit.pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        # long enough for the bounded stop (20 s for background work, then closes)
        assert pod["terminationGracePeriodSeconds"] >= 40
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert {"/tmp", "/var/lib/aftersales"} <= mounts
        sel = doc["spec"]["selector"]["matchLabels"]
        pdb = BY_KIND["PodDisruptionBudget"][name]
        assert pdb["spec"]["selector"]["matchLabels"] == sel
        hpa = BY_KIND["HorizontalPodAutoscaler"][name]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": doc["kind"], "name": name}
        # the autoscaler owns the replica count (an apply would reset it otherwise)
        assert "replicas" not in doc["spec"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert BY_KIND["HorizontalPodAutoscaler"]["orders"]["spec"]["minReplicas"] >= 2
    assert BY_KIND["HorizontalPodAutoscaler"]["sla-timer"]["spec"]["minReplicas"] >= 2
    # the routing journal: one volume per replica (one instance per journal directory)
    routing = WORKLOADS["consultation-routing"]
    assert routing["kind"] == "StatefulSet"
    assert routing["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert BY_KIND["Service"][routing["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    # nothing else a replica needs is on a disk: orders' attachments are in object storage
    assert "PersistentVolumeClaim" not in BY_KIND
    for name in SERVICES:
        if name != "consultation-routing":
            data = next(v for v in kit.pod_spec(WORKLOADS[name])["volumes"] if v["name"] == "data")
            assert "emptyDir" in data, name
    assert CONFIGMAPS["orders-config"]["data"]["ORDERS_BLOB_STORE"] == "s3"


def test_migrations_and_topics_run_as_jobs_before_the_rollout():
    for name in [*SERVICES, "kafka-topics"]:
        job = JOBS[f"{name}-migrate" if name != "kafka-topics" else name]
        meta = job["metadata"]
        # `kubectl apply -l app.kubernetes.io/component=provisioning` first (deploy/README.md);
        # in a Helm chart the same Jobs are pre-install/pre-upgrade hooks
        assert meta["labels"]["app.kubernetes.io/component"] == "provisioning"
        assert "pre-upgrade" in meta["annotations"]["helm.sh/hook"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job["spec"]["backoffLimit"] >= 1
        for ref in _containers(job)[0].get("envFrom", []):
            cm = CONFIGMAPS[ref["configMapRef"]["name"]]
            assert cm["metadata"]["labels"]["app.kubernetes.io/component"] == "config"
            # the ConfigMap a hook Job reads must exist before it: a hook of lower weight
            assert int(cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(meta["annotations"]["helm.sh/hook-weight"])
    readme = (kit.DEPLOY / "README.md").read_text()
    assert "app.kubernetes.io/component=provisioning" in readme


def test_the_topics_job_provisions_as_the_kafka_admin_over_tls():
    job = JOBS["kafka-topics"]
    c = _containers(job)[0]
    assert c["command"] == ["orders", "provision-topics"]
    creds = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"]}
    # a user allowed to create topics, not orders' own
    assert creds["ORDERS_KAFKA_SASL_USERNAME"] == creds["ORDERS_KAFKA_SASL_PASSWORD"] == "kafka-admin"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert CONFIGMAPS["orders-config"]["data"]["ORDERS_KAFKA_SSL_CAFILE"] == f"{mounts['kafka-ca']}/ca.crt"


def test_the_service_monitor_selects_every_service_on_its_metrics_port():
    sm = yaml.safe_load((kit.KUBE_DIR / "monitoring" / "servicemonitor.yaml").read_text())
    assert sm["kind"] == "ServiceMonitor"
    sel = sm["spec"]["selector"]
    selected = []
    for svc in BY_KIND["Service"].values():
        labels = svc["metadata"]["labels"]
        if all(labels.get(k) == v for k, v in sel["matchLabels"].items()) and all(
                labels.get(e["key"]) in e["values"] for e in sel["matchExpressions"]):
            selected.append(svc["metadata"]["name"])
            assert any(p["name"] == sm["spec"]["endpoints"][0]["port"] for p in svc["spec"]["ports"])
    # once each (the headless routing Service is left out: it would scrape the same pods again)
    assert sorted(selected) == sorted(SERVICES)


def test_secret_names_in_the_example_are_the_ones_the_manifests_read():
    refs = set()
    for doc in [*WORKLOADS.values(), *JOBS.values()]:
        for c in _containers(doc):
            for e in c.get("env", []):
                refs.add((e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]))
    expected = {("aftersales-token", "token-secret"), ("notifier-sms-gateway", "key"), ("notifier-sms-gateway", "secret"),
                ("kafka-admin", "username"), ("kafka-admin", "password"),
                ("orders-blob-store", "access-key-id"), ("orders-blob-store", "secret-access-key"),
                ("console-service-client", "client-id"), ("console-service-client", "client-secret")}
    expected |= {(f"{s}-database", "url") for s in SERVICES}
    expected |= {(f"{s}-kafka", k) for s in SERVICES for k in ("username", "password")}
    assert refs == expected
    assert {_example_name(n, k) for n, k in refs} <= set(SECRET_EXAMPLE)
    readme = (kit.DEPLOY / "README.md").read_text()
    for name, key in refs | {("kafka-ca", "ca.crt")}:
        assert name in readme, f"deploy/README.md does not say how to create Secret {name}"
