"""Print a bearer token for one of the demo clients `make run` seeded.

Usage: .venv/bin/python deploy/demo_token.py [CLIENT_ID]   (default demo-storefront)

Reads the demo credentials `orders seed-demo` wrote (var/data/demo-credentials.json, or
$PLATFORM_DATA_DIR/demo-credentials.json) and asks the orders service's OAuth2 token
endpoint, exactly as an integrating system would. Tokens are short-lived and expire on the
shared clock too: after moving the virtual clock far forward, ask for a new one."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    client_id = sys.argv[1] if len(sys.argv) > 1 else "demo-storefront"
    data_dir = Path(os.environ.get("PLATFORM_DATA_DIR", str(ROOT / "var" / "data")))
    creds_file = data_dir / "demo-credentials.json"
    if not creds_file.exists():
        print(f"no {creds_file}: start the platform with `make run` first", file=sys.stderr)
        return 2
    clients = json.loads(creds_file.read_text(encoding="utf-8"))["clients"]
    if client_id not in clients:
        print(f"unknown demo client {client_id!r}; known: {', '.join(sorted(clients))}", file=sys.stderr)
        return 2
    base = os.environ.get("ORDERS_URL", f"http://127.0.0.1:{os.environ.get('PLATFORM_BASE_PORT', '8101')}")
    r = httpx.post(f"{base}/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                   "client_secret": clients[client_id]["client_secret"]})
    if r.status_code != 200:
        print(f"token endpoint answered {r.status_code}: {r.text}", file=sys.stderr)
        return 1
    print(r.json()["access_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
