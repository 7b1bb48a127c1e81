"""`make run`'s script: broker, topics, migrations, five services and the console ready within 60 s,
URLs printed; Ctrl-C stops everything, broker included."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.auth import Principal, issue_token
from shared.broker import free_port, port_open
from shared.settings import DEV_TOKEN_SECRET

ROOT = Path(__file__).resolve().parent.parent


def _pid_listening_as(var: str, port: str) -> int | None:
    """The service process started with ``var=port`` (its environment names its port)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"{var}={port}".encode() in env and b"serve" in cmd:
            return int(entry.name)
    return None


def test_run_platform_starts_five_ready_services_and_stops_on_ctrl_c(tmp_path):
    kafka_port, base = free_port(), 20000 + (os.getpid() % 5000) * 2
    env = dict(os.environ, PLATFORM_KAFKA_PORT=str(kafka_port), PLATFORM_BASE_PORT=str(base),
               PLATFORM_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, str(ROOT / "deploy" / "run_platform.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    urls, lines = [], []
    started = time.monotonic()
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)\s", line)
            if m:
                urls.append(m.group(1))
            if "press Ctrl-C" in line:
                break
            # bounds for a machine also running the other test worker: an idle one is ready in ~20 s
            assert time.monotonic() - started < 150, "".join(lines)
        assert len(urls) == 6, "".join(lines)  # the five services and the console
        assert time.monotonic() - started < 150
        for url in urls:
            assert httpx.get(url + "/ready", timeout=5).status_code == 200
        assert port_open(kafka_port)
        # The signing secret is random per data directory, never the public development one:
        # an operator token minted from the source code's default is refused everywhere.
        secret_file = tmp_path / "token-secret"
        assert secret_file.exists() and (secret_file.stat().st_mode & 0o077) == 0
        secret = secret_file.read_text().strip()
        assert secret != DEV_TOKEN_SECRET and len(secret) >= 32
        forged = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "x"), DEV_TOKEN_SECRET)}
        real = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "x"), secret)}
        for url in urls:
            assert httpx.get(url + "/admin/outbox", headers=forged, timeout=5).status_code == 401
            assert httpx.get(url + "/admin/outbox", timeout=5).status_code == 401
            assert httpx.get(url + "/admin/outbox", headers=real, timeout=5).status_code == 200
        # Swagger's Authorize on another service's /docs may ask the orders token endpoint (CORS)
        pre = httpx.options(urls[0] + "/v1/oauth/token", timeout=5, headers={
            "Origin": urls[2], "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == urls[2], pre.headers
        doc = httpx.get(urls[2] + "/openapi.json", timeout=5).json()
        flow = doc["components"]["securitySchemes"]["OAuth2ClientCredentials"]["flows"]["clientCredentials"]
        assert flow["tokenUrl"] == urls[0] + "/v1/oauth/token"
        # The run script supervises: a SIGKILLed service is restarted, the others keep serving.
        sla_url = urls[2]
        victim = _pid_listening_as("SLA_TIMER_PORT", sla_url.rsplit(":", 1)[1])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(sla_url + "/ready", timeout=2).status_code == 200 and \
                        _pid_listening_as("SLA_TIMER_PORT", sla_url.rsplit(":", 1)[1]) != victim:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "sla-timer was not restarted"
            time.sleep(0.3)
        assert httpx.get(urls[0] + "/ready", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "stopped (broker included)" in rest
    assert "sla-timer exited with code -9; restarting it" in rest and "sla-timer restarted" in rest
    assert not port_open(kafka_port)
    for url in urls:
        assert not port_open(int(url.rsplit(":", 1)[1]))
