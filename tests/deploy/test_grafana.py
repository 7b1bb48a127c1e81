"""deploy/grafana: the five dashboards, each panel on the provisioned data source, every query
valid PromQL (promtool parses them as recording rules)."""
from __future__ import annotations

import yaml

from tests.deploy import kit, promtool

REQUIRED = {"platform-overview", "deadlines", "consumers-and-outbox", "notifications", "routing"}


def test_the_five_dashboards_are_well_formed():
    boards = kit.dashboards()
    assert set(boards) == REQUIRED
    ds = yaml.safe_load((kit.GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert len({b["uid"] for b in boards.values()}) == len({b["title"] for b in boards.values()}) == len(boards)
    for name, b in boards.items():
        assert b["panels"], name
        ids = [p["id"] for p in b["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in b["panels"]:
            assert p["datasource"]["uid"] == uid, (name, p["title"])
            assert p["targets"], (name, p["title"])
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, (name, p["title"])
            for t in p["targets"]:
                assert t["datasource"]["uid"] == uid and t["expr"].strip()


def test_every_query_is_valid_promql(tmp_path):
    queries = kit.dashboard_queries()
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, (_, _, q) in enumerate(queries)]
    f = tmp_path / "dashboards.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = promtool.run("check", "rules", str(f))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout
