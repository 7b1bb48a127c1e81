"""Audit attachments in S3-compatible object storage (ORDERS_BLOB_STORE=s3), against a real
S3-protocol server started here (moto in server mode, over HTTP): upload through the API,
download through the API, and a second orders instance (another host: its own data
directory) serves what the first stored. The local directory stays the default."""
from __future__ import annotations

import base64
import socket

import boto3
import httpx
import pytest

from orders.adapters.blobstore import BlobNotFound, LocalBlobStore, S3BlobStore, blob_store
from orders.app import create_app
from orders.settings import OrdersSettings
from shared.settings import SettingsError, load_settings

M = "/v1/merchant/service-orders"
BUCKET = "aftersales-attachments"
PDF = b"%PDF-1.4 audit photo " + bytes(range(256))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """What deploy/ sets for orders: the fixtures' OrdersSettings read it from the environment."""
    for k, v in {"ORDERS_BLOB_STORE": "s3", "ORDERS_BLOB_S3_ENDPOINT_URL": s3_server, "ORDERS_BLOB_S3_BUCKET": BUCKET,
                 "ORDERS_BLOB_S3_REGION": "us-east-1", "ORDERS_BLOB_S3_ACCESS_KEY_ID": "test",
                 "ORDERS_BLOB_S3_SECRET_ACCESS_KEY": "test", "ORDERS_BLOB_S3_ADDRESSING_STYLE": "path"}.items():
        monkeypatch.setenv(k, v)
    return s3_server


def _bucket_keys(url: str) -> set[str]:
    c = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test")
    return {o["Key"] for o in c.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


async def _audited_with_attachment(api, w, content: bytes = PDF) -> tuple[str, dict]:
    o = await api.apply(w["sf"])
    await api.post(f"{M}/{o['id']}/claim", w["staff"])
    await api.post(f"{M}/{o['id']}/audit", w["staff"], {"decision": "approve_return", "attachments": [
        {"filename": "photo.pdf", "content_type": "application/pdf",
         "content_base64": base64.b64encode(content).decode()}]})
    view = (await api.client.get(f"{M}/{o['id']}", headers=w["staff"])).json()
    return o["id"], view["attachments"][0]


async def test_attachments_go_to_the_bucket_and_come_back(s3_env, api, world, tmp_path):
    assert isinstance(api.rt.blobstore, S3BlobStore)
    oid, att = await _audited_with_attachment(api, world)
    assert f"attachments/{att['id']}" in _bucket_keys(s3_env)
    assert not (tmp_path / "blobs").exists()  # nothing on this host's disk
    r = await api.client.get(f"{M}/{oid}/attachments/{att['id']}", headers=world["main"])
    assert r.status_code == 200 and r.content == PDF


async def test_a_second_instance_serves_what_the_first_stored(s3_env, api, world, tmp_path):
    oid, att = await _audited_with_attachment(api, world)
    # another replica on another host: the same database and bucket, a data directory of its own
    other = create_app(OrdersSettings(environment="test", database_url=api.rt.settings.database_url, log_json=False,
                                      data_dir=str(tmp_path / "other-host")))
    other.state.runtime.clock = other.state.runtime.outbox.clock = api.clock  # the tests' clock: tokens valid
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://test") as c:
            r = await c.get(f"{M}/{oid}/attachments/{att['id']}", headers=world["main"])
        assert r.status_code == 200 and r.content == PDF
    finally:
        await other.state.runtime.engine.dispose()
    # and the local store, the default, could not have: the blob is only in the bucket
    with pytest.raises(BlobNotFound):
        await LocalBlobStore(tmp_path / "other-host" / "orders-blobs").get(att["id"])


async def test_an_unreachable_store_answers_503_and_changes_nothing(s3_env, api, world, monkeypatch):
    o = await api.apply(world["sf"])
    await api.post(f"{M}/{o['id']}/claim", world["staff"])
    dead = S3BlobStore(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{_free_port()}", region="us-east-1",
                       access_key_id="test", secret_access_key="test", addressing_style="path", timeout_s=1)
    monkeypatch.setattr(api.rt, "blobstore", dead)
    r = await api.client.post(f"{M}/{o['id']}/audit", headers=world["staff"], json={
        "decision": "approve_return", "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
                                                       "content_base64": base64.b64encode(PDF).decode()}]})
    assert r.status_code == 503 and r.json()["error"]["code"] == "blob_store_unavailable", r.text
    view = (await api.client.get(f"{M}/{o['id']}", headers=world["staff"])).json()
    assert view["state"] == "pending_audit" and view["attachments"] == []  # rolled back with the transaction


async def test_store_round_trip_and_missing_keys(s3_server):
    store = S3BlobStore(bucket=BUCKET, prefix="rt/", endpoint_url=s3_server, region="us-east-1",
                        access_key_id="test", secret_access_key="test", addressing_style="path")
    store.check()
    await store.put("k-1", b"one")
    assert await store.get("k-1") == b"one"
    assert "rt/k-1" in _bucket_keys(s3_server)
    await store.delete("k-1")
    await store.delete("k-1")  # absent: no error, as the local store
    with pytest.raises(BlobNotFound):
        await store.get("k-1")
    with pytest.raises(ValueError):
        await store.put("../escape", b"x")


def test_the_local_directory_is_the_default_and_s3_needs_a_bucket(tmp_path, monkeypatch):
    for k in ("ORDERS_BLOB_STORE", "ORDERS_BLOB_S3_BUCKET"):
        monkeypatch.delenv(k, raising=False)
    assert isinstance(blob_store(OrdersSettings(data_dir=str(tmp_path))), LocalBlobStore)
    with pytest.raises(SettingsError, match="ORDERS_BLOB_S3_BUCKET"):
        load_settings(OrdersSettings, blob_store="s3")
    with pytest.raises(SettingsError, match="ORDERS_BLOB_S3_SECRET_ACCESS_KEY"):
        load_settings(OrdersSettings, blob_store="s3", blob_s3_bucket="b", blob_s3_access_key_id="only-the-id")
