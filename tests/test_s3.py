"""The S3 blob store against moto's S3 server over real HTTP on 127.0.0.1: round trips, the
temporary-key-then-commit protocol (and a writer killed between the two), the local read-through
cache, presigned URLs, clear errors, and the whole txt2img path of an app whose blobs live in S3."""
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest

from storage.blobs import LocalBlobStore, blob_key, open_blob_store
from tests.conftest import serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def s3(moto_url):
    """A plain boto3 client on the moto server, to look into buckets behind the store's back."""
    from storage.s3 import make_client

    return make_client(moto_url)


@pytest.fixture
def bucket(s3):
    name = f"atelier-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(bucket, tmp_path):
    return open_blob_store(f"s3://{bucket}/art/blobs", tmp_path)


def keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_put_get_exists_round_trip(store, s3, bucket, tmp_path):
    from storage.s3 import S3BlobStore

    assert isinstance(store, S3BlobStore) and store.root == (tmp_path / "blob-cache").resolve()
    key = store.put(PNG, ".png")
    assert key == blob_key(PNG, ".png") == hashlib.sha256(PNG).hexdigest() + ".png"
    assert store.get(key) == PNG
    assert store.exists(key) and not store.exists(blob_key(b"other", ".png"))
    assert keys(s3, bucket) == [f"art/blobs/{key[:2]}/{key}"]        # no temporary object left behind
    head = s3.head_object(Bucket=bucket, Key=f"art/blobs/{key[:2]}/{key}")
    assert (head["ContentType"], head["ContentLength"]) == ("image/png", len(PNG))
    video = store.put(b"not really a video", ".mp4")
    assert s3.head_object(Bucket=bucket, Key=store.object_key(video))["ContentType"] == "video/mp4"


def test_the_same_bytes_are_stored_once(store, s3, bucket):
    first, second = store.put(PNG, ".png"), store.put(PNG, ".png")
    assert first == second
    assert keys(s3, bucket) == [store.object_key(first)]


def test_nothing_is_under_the_real_key_until_the_commit(store, s3, bucket, monkeypatch):
    """At the moment of the server-side copy the bytes are whole, under a temporary key only."""
    commit = store.client.copy_object
    seen = []

    def observed_commit(**kwargs):
        seen.append(keys(s3, bucket))
        assert kwargs["CopySource"] == {"Bucket": bucket, "Key": seen[0][0]}
        assert s3.get_object(Bucket=bucket, Key=seen[0][0])["Body"].read() == PNG
        return commit(**kwargs)

    monkeypatch.setattr(store.client, "copy_object", observed_commit)
    key = store.put(PNG, ".png")
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith("art/blobs/.tmp/")
    assert keys(s3, bucket) == [store.object_key(key)]


def test_a_failed_commit_stores_nothing(store, s3, bucket, monkeypatch):
    def broken_commit(**kwargs):
        raise ConnectionError("the network went away")

    monkeypatch.setattr(store.client, "copy_object", broken_commit)
    with pytest.raises(ConnectionError):
        store.put(PNG, ".png")
    assert keys(s3, bucket) == [] and not store.exists(blob_key(PNG, ".png"))


CRASH = """
import os, sys
from storage.blobs import open_blob_store
store = open_blob_store(sys.argv[1], sys.argv[2])
store.client.copy_object = lambda **kwargs: os._exit(17)   # the worker is killed between upload and commit
store.put(sys.argv[3].encode(), ".png")
"""


def test_a_writer_killed_before_the_commit_leaves_only_a_temporary_object(store, s3, bucket, tmp_path):
    data = "half a picture"
    out = subprocess.run([sys.executable, "-c", CRASH, f"s3://{bucket}/art/blobs", str(tmp_path / "crashed"), data],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 17, out.stderr
    key = blob_key(data.encode(), ".png")
    assert not store.exists(key)
    with pytest.raises(KeyError):
        store.get(key)
    [temporary] = keys(s3, bucket)
    assert temporary.startswith("art/blobs/.tmp/")
    assert s3.get_object(Bucket=bucket, Key=temporary)["Body"].read() == data.encode()
    assert store.purge_temporary(older_than_s=3600) == 0          # it may still be a write in progress
    assert store.purge_temporary(older_than_s=0) == 1
    assert keys(s3, bucket) == []
    assert store.put(data.encode(), ".png") == key and store.get(key) == data.encode()   # a retry stores it


def test_path_downloads_once_into_the_local_cache(store, monkeypatch):
    key = store.put(PNG, ".png")
    path = store.path(key)
    assert path.is_relative_to(store.root) and path.name == key and path.read_bytes() == PNG

    def no_network(**kwargs):
        raise AssertionError("the cached copy should have been used")

    monkeypatch.setattr(store.client, "get_object", no_network)
    assert store.path(key) == path and path.read_bytes() == PNG
    assert [p.name for p in path.parent.iterdir()] == [key]            # no temporary file left


def test_presigned_url_fetches_the_bytes_and_the_bucket_stays_private(store, moto_url, bucket):
    key = store.put(PNG, ".png")
    with urllib.request.urlopen(store.url(key, expires=60), timeout=10) as response:
        assert response.read() == PNG
        assert response.headers["Content-Type"] == "image/png"
    assert "X-Amz-Expires=60" in store.url(key, expires=60)
    with pytest.raises(urllib.error.HTTPError) as refused:              # no signature, no bytes
        urllib.request.urlopen(f"{moto_url}/{bucket}/{store.object_key(key)}", timeout=10)
    assert refused.value.code == 403


def test_a_missing_blob_is_a_key_error(store):
    key = blob_key(b"never stored", ".png")
    assert not store.exists(key)
    with pytest.raises(KeyError):
        store.get(key)
    with pytest.raises(KeyError):
        store.path(key)
    assert not (store.root / key[:2] / key).exists()
    with pytest.raises(ValueError, match="Not a blob key"):
        store.get("../../etc/passwd")


@pytest.mark.parametrize("url, complaint", [
    ("s3://", "names no bucket"),
    ("s3:///prefix", "names no bucket"),
    ("s3://Not_A_Bucket/prefix", "not a valid S3 bucket name"),
    ("s3://ok-bucket/a//b", "has an empty"),
    ("s3://ok-bucket/a/../b", "has an empty"),
    ("gs://bucket/prefix", "is not supported"),
])
def test_a_malformed_url_says_what_to_set(url, complaint, tmp_path):
    with pytest.raises(ValueError, match=complaint) as error:
        open_blob_store(url, tmp_path)
    assert "ATELIER_BLOBS" in str(error.value)


def test_a_missing_bucket_says_so_at_first_use(moto_url, tmp_path):
    store = open_blob_store("s3://no-such-bucket-here/blobs", tmp_path)    # opening needs no request
    with pytest.raises(ValueError, match=re.escape(f"does not exist: s3://no-such-bucket-here at {moto_url}")) as error:
        store.put(PNG, ".png")
    assert "ATELIER_BLOBS" in str(error.value)


def test_the_endpoint_comes_from_the_aws_variables(moto_url, bucket, tmp_path, monkeypatch):
    from storage.s3 import endpoint_from

    assert endpoint_from({}) is None
    assert endpoint_from({"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_S3": "http://b"}) == "http://b"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    store = open_blob_store(f"s3://{bucket}", tmp_path)                   # no prefix: the bucket's top level
    key = store.put(PNG, ".png")
    assert store.object_key(key) == f"{key[:2]}/{key}" and store.get(key) == PNG
    assert store.client.meta.endpoint_url == moto_url


def test_local_stores_are_untouched(tmp_path):
    default = open_blob_store("", tmp_path)
    assert isinstance(default, LocalBlobStore) and default.root == (tmp_path / "blobs").resolve()
    assert isinstance(open_blob_store(str(tmp_path / "elsewhere"), tmp_path), LocalBlobStore)
    key = default.put(PNG, ".png")
    assert default.path(key).read_bytes() == PNG and default.url(key) is None


# -- the whole txt2img path with its blobs in S3 ------------------------------------------------------

APP_BUCKET = "atelier-app"


@pytest.fixture(scope="module")
def s3_app(settings, s3, tmp_path_factory):
    """The app with ATELIER_BLOBS=s3://atelier-app/blobs: same database as `settings`, its own data
    folder (so its own blob cache) and queue, served on a free port with its consumer."""
    s3.create_bucket(Bucket=APP_BUCKET)
    data_dir = tmp_path_factory.mktemp("s3-app")
    yield from serve(dataclasses.replace(settings, blobs_url=f"s3://{APP_BUCKET}/blobs", data_dir=data_dir,
                                         database_url=settings.resolved_database_url,
                                         queue_url=f"sqlite:///{data_dir / 'queue.db'}"))


def test_txt2img_with_blobs_in_s3(s3_app, s3):
    from auth import local_owner
    from pipelines import Txt2Img, WorkflowSpec
    from storage.models import Artifact

    owner, service = local_owner(), s3_app.service
    job = service.submit(owner, WorkflowSpec.single(Txt2Img(prompt=f"a lighthouse {uuid.uuid4().hex}", seed=5,
                                                            steps=2)))
    job = service.wait(owner, job.id, timeout=120)
    assert job.status == "succeeded", job.error
    artifact = Artifact.get_by_id(job.artifact_ids[0])

    # The PNG is in the bucket, under its content hash, and nothing else is (no temporary objects).
    stored = s3.get_object(Bucket=APP_BUCKET, Key=f"blobs/{artifact.blob_key[:2]}/{artifact.blob_key}")
    data = stored["Body"].read()
    assert hashlib.sha256(data).hexdigest() == artifact.id and stored["ContentType"] == "image/png"
    assert keys(s3, APP_BUCKET) == [f"blobs/{artifact.blob_key[:2]}/{artifact.blob_key}"]
    assert not (s3_app.settings.data_dir / "blobs").exists()

    # The app serves the identical bytes from its local cache: through the API (Gradio's plain HTTP
    # call route, which hands back a file URL) and Gradio's file route.
    file, details = call_api(s3_app.url, "artifact_info", artifact.id)
    assert details["recipe"]["plan_hash"] == job.plan_hash
    with urllib.request.urlopen(file["url"], timeout=30) as response:
        assert response.read() == data
    cached = s3_app.artifacts.artifact_path(artifact)
    assert cached.startswith(s3_app.blob_root) and open(cached, "rb").read() == data
    with urllib.request.urlopen(f"{s3_app.url}gradio_api/file={cached}", timeout=30) as response:
        assert response.read() == data


def call_api(url: str, name: str, *args):
    """One call of a Gradio endpoint over plain HTTP (POST, then read the event stream): its outputs.
    gradio_client would keep a heartbeat stream open that holds up the server's shutdown."""
    request = urllib.request.Request(f"{url}gradio_api/call/{name}", data=json.dumps({"data": list(args)}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{name}/{event_id}", timeout=60) as response:
        lines = response.read().decode().splitlines()
    assert "event: complete" in lines, lines
    return json.loads(lines[lines.index("event: complete") + 1][len("data: "):])
