"""deploy/prometheus: promtool accepts the configuration and the alert rules, and its unit
tests fire every alert on sample series (and keep it quiet on a healthy look-alike). Every
alert has its runbook line and its section in deploy/README.md."""
from __future__ import annotations

import re

import yaml

from tests.deploy import kit, promtool

RULES = kit.PROM_DIR / "rules" / "aftersales.rules.yml"
RULE_TESTS = kit.PROM_DIR / "tests" / "aftersales.rules.test.yml"
REQUIRED = {
    "SlaTimerFiringLate",  # timer firing lateness p99 > 5 s
    "ConsumerLagHigh",  # consumer lag > 60 s
    "MessageParked",  # any parked message
    "OutboxBacklogGrowing",  # outbox backlog growing for 5 minutes
    "SmsFailureRateHigh",  # SMS failure rate > 5 %
    "ServiceNotReady",  # /ready failing
    "Http5xxRateHigh",  # 5xx rate
}


def test_promtool_accepts_the_configuration_and_the_rules():
    out = promtool.run("check", "config", "--syntax-only", str(kit.PROM_DIR / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    out = promtool.run("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(kit.alert_rules())} rules found" in out.stdout


def test_promtool_unit_tests_fire_every_alert():
    out = promtool.run("test", "rules", str(RULE_TESTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_service_not_ready_watches_every_deployed_service():
    """`up == 0` only means something for the jobs it names: every service the kit deploys
    (a scrape job each in prometheus.yml), the console included, and nothing else."""
    rule = next(r for r in kit.alert_rules() if r["alert"] == "ServiceNotReady")
    jobs = [v for name, matchers in kit.selectors(rule["expr"]) if name == "up"
            for lbl, op, v in matchers if lbl == "job" and op == "=~"]
    assert len(jobs) == 1 and set(jobs[0].split("|")) == set(kit.PREFIXES)
    prom = yaml.safe_load((kit.PROM_DIR / "prometheus.yml").read_text())
    assert {j["job_name"] for j in prom["scrape_configs"]} == set(kit.PREFIXES)


def test_each_alert_has_a_runbook_a_firing_test_and_a_quiet_test():
    rules = {r["alert"]: r for r in kit.alert_rules()}
    assert set(rules) == REQUIRED
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["../rules/aftersales.rules.yml"]
    fired, quiet = set(), set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
    assert fired == set(rules), f"alerts no unit test fires: {sorted(set(rules) - fired)}"
    assert quiet == set(rules), f"alerts without a quiet case: {sorted(set(rules) - quiet)}"
    readme = (kit.DEPLOY / "README.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    for name, r in rules.items():
        ann = r["annotations"]
        assert ann.get("runbook", "").strip(), f"{name}: no runbook line"
        assert ann["runbook_url"] == f"deploy/README.md#{name.lower()}"
        assert name.lower() in headings, f"deploy/README.md has no section `{name}`"
        assert r["labels"]["severity"] in {"critical", "warning"}
