"""deploy/compose is true to the code: the Compose specification's schema, commands that exist,
settings that exist and pass the production checks, ports and probe paths the services serve,
the start order, Kafka's replication, Prometheus scraping every service."""
from __future__ import annotations

import json
import re
import subprocess
from importlib import resources

import jsonschema
import pytest

from shared.topics import ALL_TOPICS
from tests.deploy import kit

SERVICES = list(kit.PREFIXES)
COMPOSE = kit.load_compose()
SVC = COMPOSE["services"]


def _env(name: str) -> dict[str, str]:
    """A Compose service's environment after interpolation with the example .env."""
    env = kit.example_env()
    return {k: str(kit.interpolate(v, env)) for k, v in (SVC[name].get("environment") or {}).items()}


def _app_services() -> dict[str, str]:
    """Compose service → the platform service its command runs (serve and migrate)."""
    out = {}
    for name, svc in SVC.items():
        cmd = svc.get("command")
        if isinstance(cmd, list) and cmd and cmd[0] in kit.PREFIXES:
            out[name] = cmd[0]
    return out


def test_compose_file_validates_against_the_compose_specification_schema():
    # The schema the Compose specification publishes, as vendored by check-jsonschema (offline).
    schema = json.loads((resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    assert schema.get("title") == "Compose Specification"
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []
    # the schema is not a rubber stamp: a misspelt key and a bad value are caught
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["orders"]["helthcheck"] = {}
    broken["services"]["orders"]["depends_on"]["orders-migrate"]["condition"] = "service_finished"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_app_container_runs_a_command_that_exists():
    app = _app_services()
    assert set(app.values()) == set(SERVICES)
    for name, service in app.items():
        assert kit.check_command(SVC[name]["command"]) is None, (name, kit.check_command(SVC[name]["command"]))
    # a serve and a migrate per service
    commands = {tuple(SVC[n]["command"]) for n in app}
    for service in SERVICES:
        assert (service, "serve") in commands and (service, "migrate") in commands, service


def test_every_environment_variable_is_a_setting_of_that_service():
    for name, service in _app_services().items():
        known = kit.setting_env_names(service) | set(kit.NON_SETTING_ENV)
        unknown = set(SVC[name]["environment"]) - known
        assert not unknown, f"{name}: not settings of {service}: {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_environment_passes_the_production_checks(service, monkeypatch):
    """With the example .env filled in as the runbook says, the settings load in production
    (PostgreSQL, a real token secret, the HTTP SMS gateway, ...) as the file intends."""
    from shared.settings import load_settings

    env = _env(service)
    with kit.environment(monkeypatch, env, kit.PREFIXES[service]):
        s = load_settings(kit.settings_class(service))
    assert s.environment == "production"
    assert s.database_url.startswith("postgresql+asyncpg://")
    assert s.kafka_idempotent_producer is True
    assert s.kafka_replication_factor == 3
    assert s.run_migrations_on_start is False
    assert s.metrics_port == 9100 and s.metrics_host == "0.0.0.0"
    assert s.host == "0.0.0.0"
    assert s.kafka_min_insync_replicas == 2
    # plaintext to the brokers only because the file says so (they are on the backend network only)
    assert s.kafka_security_protocol == "PLAINTEXT" and s.kafka_allow_plaintext is True
    # the same settings for the migration one-off (migrate loads them too)
    assert _env(f"{service}-migrate") == env


def _serves(service: str) -> str:
    """``http://<Compose service>:<port>`` of the container running ``<service> serve``."""
    name = next(n for n, svc in _app_services().items() if svc == service and SVC[n]["command"][1] == "serve")
    return f"http://{name}:{_env(name)[f'{kit.PREFIXES[service]}PORT']}"


def test_the_console_reads_the_services_on_the_backend_network_with_secure_cookies(monkeypatch):
    from shared.settings import load_settings

    env = _env("console")
    with kit.environment(monkeypatch, env, "CONSOLE_"):
        s = load_settings(kit.settings_class("console"))
    kit.check_console_settings(s, _serves)
    # its operator client and Secure cookies are what production insists on: without them the
    # console (and its migration) refuses to start
    from shared.settings import SettingsError

    for missing in ("CONSOLE_COOKIE_SECURE", "CONSOLE_SERVICE_CLIENT_SECRET"):
        with kit.environment(monkeypatch, {k: v for k, v in env.items() if k != missing}, "CONSOLE_"):
            with pytest.raises(SettingsError, match=missing):
                load_settings(kit.settings_class("console"))
    variables = kit.compose_variables((kit.COMPOSE_DIR / "compose.yaml").read_text())
    assert variables["CONSOLE_SERVICE_CLIENT_SECRET"][0] == ":?"


def test_ports_and_probe_paths_match_the_settings_and_routes():
    for name, service in _app_services().items():
        if SVC[name]["command"][1] != "serve":
            continue
        port = kit.settings_class(service).model_fields["port"].default
        assert _env(name)[f"{kit.PREFIXES[service]}PORT"] == str(port), name
        probe = " ".join(SVC[name]["healthcheck"]["test"])
        m = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", probe)
        assert m, probe
        assert int(m.group(1)) == port
        assert m.group(2) == "/ready" and "/ready" in kit.public_paths(service)
    # the gateway gives each service one address on its own port
    nginx = (kit.COMPOSE_DIR / "gateway" / "nginx.conf").read_text()
    upstreams = dict((h, int(p)) for h, p in re.findall(r"http://([a-z-]+):(\d+);", nginx))
    listens = [int(p) for p in re.findall(r"listen (\d+);", nginx)]
    for service in SERVICES:
        port = kit.settings_class(service).model_fields["port"].default
        assert upstreams[service] == port and port in listens, service
        assert any(p.endswith(f":{port}:{port}") for p in SVC["gateway"]["ports"]), service
    # the console compares a form's Origin with the Host it is given: the browser's, port included
    port = kit.settings_class("console").model_fields["port"].default
    console = re.search(rf"listen {port};(.*?)\n    \}}", nginx, re.S).group(1)
    assert "proxy_set_header Host $http_host;" in console
    # a server block's own proxy_set_header drops the http block's: X-Forwarded-For is repeated
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in console
    for service in SERVICES:
        assert SVC["gateway"]["depends_on"][service] == {"condition": "service_healthy"}, service


def test_replicas_and_start_order():
    assert SVC["orders"]["deploy"]["replicas"] == 2
    assert SVC["sla-timer"]["deploy"]["replicas"] == 2
    for service in SERVICES:
        deps = SVC[service]["depends_on"]
        assert deps[f"{service}-migrate"] == {"condition": "service_completed_successfully"}, service
        assert deps["kafka-topics"] == {"condition": "service_completed_successfully"}, service
        assert deps["postgres"] == {"condition": "service_healthy"}, service
        assert SVC[f"{service}-migrate"]["restart"] == "no"
        assert SVC[f"{service}-migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # orders starts once its bucket exists
    assert SVC["orders"]["depends_on"]["minio-buckets"] == {"condition": "service_completed_successfully"}
    assert SVC["minio-buckets"]["depends_on"]["minio"] == {"condition": "service_healthy"}


def test_kafka_is_three_kraft_brokers_with_replication_3_and_min_isr_2():
    brokers = [n for n in SVC if re.fullmatch(r"kafka-\d", n)]
    assert len(brokers) == 3
    voters = set()
    for b in brokers:
        env = SVC[b]["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert str(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == "3"
        assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2"
        assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        voters.add(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{b}:9092"
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    bootstrap = "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    for service in SERVICES:
        assert _env(service)[f"{kit.PREFIXES[service]}KAFKA_BOOTSTRAP"] == bootstrap
    # the topics step: `orders provision-topics` with orders' settings (test_topics.py)
    topics = SVC["kafka-topics"]
    assert topics["command"] == ["orders", "provision-topics"] and _env("kafka-topics") == _env("orders")
    assert all(topics["depends_on"][b] == {"condition": "service_healthy"} for b in brokers)
    assert ALL_TOPICS


def test_one_database_and_login_per_service():
    init = (kit.COMPOSE_DIR / "postgres" / "init-databases.sh").read_text()
    created = re.search(r"for db in ([a-z_ ]+); do", init).group(1).split()
    urls = {service: _env(service)[f"{kit.PREFIXES[service]}DATABASE_URL"] for service in SERVICES}
    dbs = []
    for service, url in urls.items():
        m = re.fullmatch(r"postgresql\+asyncpg://(\w+):([^@]+)@postgres:5432/(\w+)", url)
        assert m, url
        assert m.group(1) == m.group(3), "each service logs in as the owner of its own database"
        dbs.append(m.group(3))
    assert sorted(dbs) == sorted(created) and len(set(dbs)) == len(SERVICES)
    for db in created:
        assert f"{db.upper()}_DB_PASSWORD" in SVC["postgres"]["environment"]
    assert subprocess.run(["bash", "-n", str(kit.COMPOSE_DIR / "postgres" / "init-databases.sh")]).returncode == 0


def test_secrets_come_from_the_uncommitted_env_file():
    text = (kit.COMPOSE_DIR / "compose.yaml").read_text()
    variables = kit.compose_variables(text)
    example = kit.read_env_file(kit.COMPOSE_DIR / ".env.example")
    # every variable the file needs is in the example, and the required ones have no default
    missing = [v for v, (op, _) in variables.items() if op in (":?", "?") and v not in example]
    assert not missing, missing
    for secret in ("TOKEN_SECRET", "POSTGRES_PASSWORD", "ORDERS_DB_PASSWORD", "SMS_GATEWAY_SECRET",
                   "GRAFANA_ADMIN_PASSWORD", "MINIO_ROOT_PASSWORD", "ORDERS_S3_SECRET_KEY", "CONSOLE_DB_PASSWORD",
                   "CONSOLE_SERVICE_CLIENT_SECRET"):
        assert variables[secret][0] == ":?", f"{secret} must be required, never defaulted"
        assert example[secret] == "", f"{secret} has no value in the committed example"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(kit.COMPOSE_DIR / ".env")], cwd=kit.ROOT)
    assert ignored.returncode == 0, "deploy/compose/.env must be git-ignored"
    # no literal secret in the file: every token/password/secret value is interpolated
    for name, svc in SVC.items():
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"SECRET|PASSWORD", key) and key != "GF_USERS_ALLOW_SIGN_UP":
                assert isinstance(value, str) and value.startswith("${"), (name, key)


def test_prometheus_scrapes_every_replica_of_every_service():
    import yaml

    prom = yaml.safe_load((kit.PROM_DIR / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for service in SERVICES:
        sd = jobs[service]["dns_sd_configs"][0]
        # DNS service discovery: one A record per replica of the Compose service
        assert sd["type"] == "A" and sd["names"] == [service]
        assert str(sd["port"]) == _env(service)[f"{kit.PREFIXES[service]}METRICS_PORT"]
    mounts = SVC["prometheus"]["volumes"]
    assert "../prometheus/rules:/etc/prometheus/rules:ro" in mounts
    assert any(r.startswith("/etc/prometheus/rules/") for r in prom["rule_files"])


def test_grafana_is_provisioned_with_the_data_source_and_dashboards():
    import yaml

    mounts = SVC["grafana"]["volumes"]
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    dash_mount = next(m for m in mounts if m.startswith("../grafana/dashboards:"))
    provider = yaml.safe_load((kit.GRAFANA_DIR / "provisioning" / "dashboards" / "aftersales.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dash_mount.split(":")[1]
    ds = yaml.safe_load((kit.GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090" and ds["datasources"][0]["uid"] == "prometheus"


def test_orders_keeps_its_attachments_in_minio_and_no_replica_state_on_disk():
    """Both orders replicas read and write one bucket; nothing a replica needs is on its disk
    (only routing keeps a per-instance journal, by design, in its own volume)."""
    env = _env("orders")
    assert env["ORDERS_BLOB_STORE"] == "s3" and env["ORDERS_BLOB_S3_ENDPOINT_URL"] == "http://minio:9000"
    buckets = SVC["minio-buckets"]["environment"]
    assert buckets["BUCKET"] == env["ORDERS_BLOB_S3_BUCKET"]
    assert buckets["ORDERS_ACCESS_KEY"] == env["ORDERS_BLOB_S3_ACCESS_KEY_ID"]
    assert buckets["ORDERS_SECRET_KEY"] == SVC["orders"]["environment"]["ORDERS_BLOB_S3_SECRET_ACCESS_KEY"]
    assert buckets["MINIO_ROOT_USER"] == SVC["minio"]["environment"]["MINIO_ROOT_USER"]
    script = kit.COMPOSE_DIR / "minio" / "create-bucket.sh"
    assert any(v.startswith("./minio/create-bucket.sh:") for v in SVC["minio-buckets"]["volumes"])
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert "mc mb --ignore-existing" in script.read_text()  # idempotent
    # no service but routing has a volume of its own; the others write to tmpfs only
    for service in SERVICES:
        mounts = [v for v in SVC[service].get("volumes", []) if ":" in v]
        if service == "consultation-routing":
            assert mounts == ["routing-data:/var/lib/aftersales"]
        else:
            assert mounts == [] and "/var/lib/aftersales" in SVC[service]["tmpfs"], service
