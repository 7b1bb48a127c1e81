"""Kafka over TLS with SASL, end to end: every client of a running service (outbox producer,
admin client, consumer groups, the accounts and clock listeners) connects with the service's
KAFKA_SECURITY_PROTOCOL, CA file and SASL credentials.

The embedded broker speaks neither TLS nor SASL PLAIN here, so a small gateway in front of
it does what a secured Kafka listener does: TLS with a certificate of a CA made for the test,
then the SASL handshake (PLAIN: user and password checked) before any other request; a
connection that sends anything else first is closed. The broker advertises the gateway's
address, so no client can reach it around the gateway."""
from __future__ import annotations

import asyncio
import shutil
import ssl
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kpi.models import OrderFact
from shared.broker import EmbeddedBroker, free_port
from shared.kafka import KafkaConnection, kafka_options
from shared.testing import eventually
from tests.helpers import SERVICES, operator_headers, submit_application

USER, PASSWORD = "aftersales", "kafka-test-password-7f3a"
API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """A CA and a broker certificate for 127.0.0.1 signed by it (openssl)."""
    d = tmp_path_factory.mktemp("kafka-tls")

    def sh(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
       "-subj", "/CN=aftersales test CA")
    sh("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=broker")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    sh("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
       "-out", "broker.pem", "-days", "2", "-extfile", "san.cnf")
    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other-ca.pem", "-days", "2",
       "-subj", "/CN=some other CA")
    return {"ca": d / "ca.pem", "cert": d / "broker.pem", "key": d / "broker.key", "other_ca": d / "other-ca.pem"}


def _string(b: bytes, at: int) -> tuple[str | None, int]:
    (n,) = struct.unpack_from(">h", b, at)
    if n < 0:
        return None, at + 2
    return b[at + 2:at + 2 + n].decode(), at + 2 + n


@dataclass
class SecuredListener:
    """TLS + SASL/PLAIN in front of the embedded broker."""

    broker_port: int
    port: int
    tls: ssl.SSLContext
    authenticated: list[str] = field(default_factory=list)  # client ids, one per authenticated connection
    refused: list[str] = field(default_factory=list)

    async def _frame(self, reader) -> bytes:
        (n,) = struct.unpack(">i", await reader.readexactly(4))
        return await reader.readexactly(n)

    @staticmethod
    def _answer(writer, correlation_id: int, body: bytes) -> None:
        payload = struct.pack(">i", correlation_id) + body
        writer.write(struct.pack(">i", len(payload)) + payload)

    async def _handle(self, reader, writer) -> None:
        up_r = up_w = None
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.broker_port)
            mechanism_ok = False
            while True:  # until authenticated
                req = await self._frame(reader)
                api_key, version, corr = struct.unpack_from(">hhi", req)
                client_id, at = _string(req, 8)
                if api_key == API_VERSIONS:  # allowed before authentication: the broker answers
                    up_w.write(struct.pack(">i", len(req)) + req)
                    resp = await self._frame(up_r)
                    writer.write(struct.pack(">i", len(resp)) + resp)
                elif api_key == SASL_HANDSHAKE and version <= 1:
                    mechanism, _ = _string(req, at)
                    mechanism_ok = mechanism == "PLAIN"
                    body = struct.pack(">hi", 0 if mechanism_ok else 33, 1) + struct.pack(">h", 5) + b"PLAIN"
                    self._answer(writer, corr, body)
                elif api_key == SASL_AUTHENTICATE and version <= 1 and mechanism_ok:
                    (n,) = struct.unpack_from(">i", req, at)
                    _authzid, user, password = req[at + 4:at + 4 + n].split(b"\0")
                    ok = (user.decode(), password.decode()) == (USER, PASSWORD)
                    message = b"" if ok else b"Authentication failed: invalid credentials"
                    body = struct.pack(">h", 0 if ok else 58)
                    body += struct.pack(">h", -1) if ok else struct.pack(">h", len(message)) + message
                    body += struct.pack(">i", 0) + (struct.pack(">q", 0) if version >= 1 else b"")
                    self._answer(writer, corr, body)
                    await writer.drain()
                    if not ok:
                        self.refused.append(f"{client_id}: bad credentials")
                        return
                    self.authenticated.append(client_id or "")
                    break
                else:  # what a SASL listener does with a request before authentication
                    self.refused.append(f"{client_id}: api {api_key} before authentication")
                    return
                await writer.drain()

            async def pipe(src, dst):
                try:
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                    pass
                finally:
                    dst.close()

            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            if up_w is not None:
                up_w.close()

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.tls)
        return self

    async def stop(self):
        self.server.close()


@pytest.fixture
async def secured(tls_files):
    """The embedded broker behind the TLS + SASL listener: (listener, a service's settings)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = EmbeddedBroker()
    broker_port = broker.port
    # the broker listens on its own port and advertises the secured listener's
    import subprocess as sp

    from shared.broker import port_open, tansu_path

    proc = sp.Popen([str(tansu_path()), "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
                     "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                    stdout=sp.DEVNULL, stderr=sp.STDOUT, start_new_session=True)
    for _ in range(200):
        if port_open(broker_port):
            break
        await asyncio.sleep(0.05)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tls_files["cert"], tls_files["key"])
    listener = await SecuredListener(broker_port, port, tls).start()
    settings = {"kafka_bootstrap": f"127.0.0.1:{port}", "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": USER, "kafka_sasl_password": PASSWORD,
                "kafka_ssl_cafile": str(tls_files["ca"])}
    yield listener, settings
    await listener.stop()
    proc.terminate()
    proc.wait(timeout=10)


async def test_every_client_of_the_services_connects_over_tls_with_sasl(secured, start_service, database_url):
    listener, kafka = secured
    running = {}
    for name in ("orders", "kpi"):
        create, cls = SERVICES[name]
        running[name] = await start_service(create, cls, database_url=await database_url(name), clock="virtual",
                                            **kafka)
    orders, kpi = running["orders"], running["kpi"]
    # the producer (outbox relay) publishes, kpi's consumer group applies: through the listener
    r = await submit_application(orders.client, 1)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    async def applied():
        async with kpi.runtime.sessions() as s:
            return await s.scalar(select(func.count()).select_from(OrderFact).where(OrderFact.order_id == order_id))

    await eventually(applied, timeout=60)
    # the accounts listener of kpi learns a revocation orders published
    op = operator_headers()
    r = await orders.client.post("/v1/platform/merchants", headers=op, json={
        "id": "m-tls", "name": "M", "kind": "pop_seller", "mode": "pop_self_service", "contact_phone": "400-000-1234",
        "return_address": "Beijing", "skus": [{"sku": "sku-9", "category": "phones", "price": "9.00"}]})
    assert r.status_code == 201, r.text
    r = await orders.client.post("/v1/oauth/token", data={"grant_type": "client_credentials",
                                                          **r.json()["main_account"]})
    main = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await orders.client.post("/v1/merchant/staff", headers=main, json={
        "login": "eve", "name": "eve", "permissions": ["audit"], "categories": ["phones"]})
    assert r.status_code == 201, r.text
    r = await orders.client.patch("/v1/merchant/staff/m-tls.eve", headers=main, json={"active": False})
    assert r.status_code == 200, r.text
    await eventually(lambda: _latest(kpi, "m-tls.eve"), timeout=30)
    # the clock listeners (every service) read the advance orders announced
    r = await orders.client.post("/admin/clock/advance", json={"seconds": 3600}, headers=operator_headers())
    assert r.status_code == 200, r.text
    await eventually(lambda: _clock_moved(kpi.client), timeout=30)
    for svc in running.values():
        assert (await svc.client.get("/ready")).json()["checks"]["broker"] is True
    assert listener.refused == [] and listener.authenticated


async def _latest(svc, client_id: str) -> bool:
    return svc.runtime.account_guard.latest(client_id) == 2


async def _clock_moved(client):
    r = await client.get("/admin/clock", headers=operator_headers())
    return r.json()["offset_seconds"] >= 3600


async def test_wrong_password_plaintext_and_an_unknown_ca_are_refused(secured, tls_files):
    from aiokafka.admin import AIOKafkaAdminClient

    listener, kafka = secured
    good = KafkaConnection(bootstrap=kafka["kafka_bootstrap"], security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                           sasl_username=USER, sasl_password=PASSWORD, ssl_cafile=str(tls_files["ca"]))

    async def topics(conn) -> list[str]:
        admin = AIOKafkaAdminClient(**kafka_options(conn), request_timeout_ms=3000)
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    assert isinstance(await topics(good), list)
    from dataclasses import replace

    for bad in (replace(good, sasl_password="wrong"),  # SASL refuses
                replace(good, ssl_cafile=str(tls_files["other_ca"])),  # the broker's certificate is not trusted
                replace(good, security_protocol="SSL")):  # TLS without SASL: refused before authentication
        with pytest.raises(Exception):  # noqa: B017 - a connection error or an SSL error, by case
            await asyncio.wait_for(topics(bad), timeout=20)
    assert any("bad credentials" in r for r in listener.refused)
    assert any("before authentication" in r for r in listener.refused)
