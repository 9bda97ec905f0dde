"""The offline base images (grader.offline): built from Debian's archive, used like the official
ones. Real Docker, no mocks. Builds the images when missing (≈2-3 min cold, seconds when cached).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import psycopg
import pytest

from grader.offline import (
    CA_PATH_IN_IMAGE,
    DEFAULT_CA_BUNDLE,
    add_ca_bundle,
    build_offline_images,
    missing_images,
)

pytestmark = pytest.mark.docker

PYTHON_TAG = "python:3.11-slim"
POSTGRES_TAG = "postgres:15"
TEST_LABELS = {"api-grader.test": "1"}


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        cli = docker.from_env()
        cli.ping()
    except docker.errors.DockerException as exc:  # fail, never skip: CI must run these
        pytest.fail(f"no Docker engine: {exc} — run `grader setup`")
    yield cli
    for container in cli.containers.list(all=True, filters={"label": "api-grader.test"}):
        container.remove(force=True)
    cli.close()


@pytest.fixture(scope="module")
def offline_images(client: docker.DockerClient) -> tuple[str, str]:
    build_offline_images(python_tag=PYTHON_TAG, postgres_tag=POSTGRES_TAG)
    assert missing_images([PYTHON_TAG, POSTGRES_TAG]) == []
    return PYTHON_TAG, POSTGRES_TAG


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_images_are_labelled_offline_but_not_for_cleanup(
    client: docker.DockerClient, offline_images: tuple[str, str]
) -> None:
    for tag in offline_images:
        labels = client.images.get(tag).labels or {}
        assert labels.get("api-grader.offline") == "1"
        assert "api-grader" not in labels
    py = client.images.get(PYTHON_TAG).attrs["Config"]
    assert py["Cmd"] == ["python3"]
    assert "PYTHONUNBUFFERED=1" in py["Env"]
    if DEFAULT_CA_BUNDLE is not None:
        assert f"PIP_CERT={CA_PATH_IN_IMAGE}" in py["Env"]
    pg = client.images.get(POSTGRES_TAG).attrs["Config"]
    assert "5432/tcp" in pg["ExposedPorts"]


def test_student_style_dockerfile_builds_and_runs(
    client: docker.DockerClient, offline_images: tuple[str, str]
) -> None:
    dockerfile = (
        f"FROM {PYTHON_TAG}\n"
        "WORKDIR /app\n"
        "RUN pip install --no-cache-dir six\n"
        "RUN useradd -m app\n"
        "RUN command -v python && command -v pip && test -d /usr/local/bin\n"
        "USER app\n"
        'CMD ["python","-c","import six; print(\'ok\')"]\n'
    )
    tag = f"api-grader-test/offline-py:{uuid.uuid4().hex[:8]}"
    try:
        client.images.build(
            fileobj=_tar({"Dockerfile": dockerfile.encode()}),
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            labels=TEST_LABELS,
        )
        container = client.containers.run(tag, detach=True, labels=TEST_LABELS)
        try:
            assert container.wait(timeout=60)["StatusCode"] == 0
            assert container.logs().decode().strip() == "ok"
        finally:
            container.remove(force=True)
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag, force=True)


def test_postgres_with_testcontainers(
    monkeypatch: pytest.MonkeyPatch, offline_images: tuple[str, str]
) -> None:
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.config import testcontainers_config

    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    password = "s3cret 'quoted\""
    pg = PostgresContainer(
        image=POSTGRES_TAG, username="grader", password=password, dbname="exam", driver=None
    ).with_kwargs(labels=TEST_LABELS)
    with pg:
        host = pg.get_container_host_ip()
        port = int(pg.get_exposed_port(5432))
        with psycopg.connect(
            host=host,
            port=port,
            user="grader",
            password=password,
            dbname="exam",
            connect_timeout=10,
        ) as conn:
            row = conn.execute("SHOW server_encoding").fetchone()
            assert row is not None and row[0] == "UTF8"
            row = conn.execute("SELECT current_database(), current_user").fetchone()
            assert row == ("exam", "grader")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                host=host,
                port=port,
                user="grader",
                password="wrong",
                dbname="exam",
                connect_timeout=10,
            ).close()


def test_add_ca_bundle_to_local_image(client: docker.DockerClient, tmp_path: Path) -> None:
    tiny = f"api-grader-test/tiny:{uuid.uuid4().hex[:8]}"
    derived = f"{tiny}-ca"
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot-a-real-cert\n-----END CERTIFICATE-----\n")
    repository, _, version = tiny.rpartition(":")
    client.api.import_image(
        src=_tar({"hello.txt": b"hi\n"}).getvalue(), repository=repository, tag=version
    )
    try:
        assert add_ca_bundle(image=tiny, ca_bundle=bundle, tag=derived) == derived
        env = client.images.get(derived).attrs["Config"]["Env"] or []
        assert f"PIP_CERT={CA_PATH_IN_IMAGE}" in env
        assert f"SSL_CERT_FILE={CA_PATH_IN_IMAGE}" in env
        assert f"REQUESTS_CA_BUNDLE={CA_PATH_IN_IMAGE}" in env
        container = client.containers.create(derived, command=["true"], labels=TEST_LABELS)
        try:
            stream, _ = container.get_archive(CA_PATH_IN_IMAGE)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile(Path(CA_PATH_IN_IMAGE).name)
                assert member is not None and member.read() == bundle.read_bytes()
        finally:
            container.remove(force=True)
        # default tag: replaces the image itself
        assert add_ca_bundle(image=tiny, ca_bundle=bundle) == tiny
        assert f"PIP_CERT={CA_PATH_IN_IMAGE}" in (
            client.images.get(tiny).attrs["Config"]["Env"] or []
        )
    finally:
        for tag in (derived, tiny):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
