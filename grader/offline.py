"""Base images without a registry: build ``python:3.11-slim`` and ``postgres:15`` look-alikes
from Debian's archive (``debootstrap`` + ``docker import``), and add a CA bundle to an image.

Used where ``docker pull`` cannot work (air-gapped exam rooms, Docker Hub rate limits, a
TLS-intercepting proxy). The packages come from the mirror of the machine's own APT sources (a
university's mirror where it has one; ``mirror=`` overrides it). The steps per image:

1. ``debootstrap --variant=minbase --include=...`` into a temporary directory, packed as a plain
   tarball cached under ``~/.cache/api-grader/`` (keyed by suite, mirror and packages) so later
   builds skip it;
2. the tarball is streamed into ``docker import`` (tagged ``api-grader-rootfs:<key>``);
3. a short ``docker build`` on top (in-memory context) adds what the official image has:
   ``python``/``pip`` names, no PEP 668 marker, the entrypoint of the Postgres image, ENV, CMD,
   the host CA bundle with ``PIP_CERT``/``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``.

Images carry the label ``api-grader.offline=1`` but never the cleanup label ``grader.core.LABEL``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from grader.core import GraderFault

logger = logging.getLogger(__name__)

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_PATH_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
OFFLINE_LABEL = "api-grader.offline"
ROOTFS_REPOSITORY = "api-grader-rootfs"
CACHE_DIR = Path.home() / ".cache" / "api-grader"
DATA_DIR = Path(__file__).with_name("images")
APT_DIR = Path("/etc/apt")
PG_MAJOR = "15"  # what bookworm ships
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _default_ca_bundle() -> Path | None:
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


DEFAULT_CA_BUNDLE = _default_ca_bundle()


@dataclass(frozen=True)
class _Spec:
    name: str  # "python" / "postgres" (cache file and rootfs tag)
    packages: tuple[str, ...]
    dockerfile: str  # body after FROM and the CA lines
    files: tuple[tuple[str, Path], ...] = ()  # (name in context, source)


_PYTHON = _Spec(
    name="python",
    packages=(
        "python3",
        "python3-venv",
        "python3-pip",
        "ca-certificates",
        "passwd",
        "adduser",
        "netbase",
    ),
    dockerfile=f"""\
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \\
 && ln -sf python3 /usr/bin/python \\
 && ln -sf pip3 /usr/bin/pip \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python3
ENV PATH={STD_PATH} LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
CMD ["python3"]
""",
)

_POSTGRES = _Spec(
    name="postgres",
    packages=(f"postgresql-{PG_MAJOR}", "ca-certificates", "netbase"),
    dockerfile=f"""\
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh \\
 && rm -rf /var/lib/postgresql/{PG_MAJOR}/main /etc/postgresql/{PG_MAJOR}/main \\
 && mkdir -p /var/run/postgresql /var/lib/postgresql/data /docker-entrypoint-initdb.d \\
 && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql \\
 && chmod 2777 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/{PG_MAJOR}/bin:{STD_PATH} PGDATA=/var/lib/postgresql/data LANG=C.UTF-8 PG_MAJOR={PG_MAJOR}
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
""",
    files=(("postgres-entrypoint.sh", DATA_DIR / "postgres-entrypoint.sh"),),
)


# --------------------------------------------------------------------------- docker helpers


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise GraderFault(
            f"Docker engine not reachable ({exc}); start it (e.g. `dockerd &`) and retry"
        ) from exc
    return client


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise GraderFault(f"cannot inspect image {tag}: {exc}") from exc
    return True


def missing_images(tags: Iterable[str]) -> list[str]:
    """The tags among ``tags`` that the local Docker engine does not have."""
    client = _client()
    try:
        return [tag for tag in tags if not _exists(client, tag)]
    finally:
        client.close()


def _context(dockerfile: str, files: Iterable[tuple[str, bytes | Path]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))

        add("Dockerfile", dockerfile.encode())
        for name, src in files:
            data = src.read_bytes() if isinstance(src, Path) else src
            add(name, data, 0o755 if name.endswith(".sh") else 0o644)
    buf.seek(0)
    return buf


def _build(
    client: docker.DockerClient,
    *,
    tag: str,
    dockerfile: str,
    files: Iterable[tuple[str, bytes | Path]],
    quiet: bool = False,
) -> str:
    ctx = _context(dockerfile, files)
    show = logger.debug if quiet else logger.info
    image_id = ""
    try:
        stream: Iterator[dict[str, Any]] = client.api.build(
            fileobj=ctx,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise GraderFault(f"building {tag} failed: {str(detail).strip()}")
            line = str(chunk.get("stream", "")).rstrip()
            if line:
                show("  %s", line)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        raise GraderFault(f"building {tag} failed: {exc}") from exc
    if not _exists(client, tag):
        raise GraderFault(f"building {tag} produced no image")
    return image_id or str(client.images.get(tag).id)


def _ca_lines(ca_bundle: Path | None) -> tuple[str, list[tuple[str, bytes | Path]]]:
    if ca_bundle is None:
        return "", []
    if not ca_bundle.is_file():
        raise GraderFault(f"CA bundle {ca_bundle} not found")
    lines = (
        f"COPY ca-certificates.crt {CA_PATH_IN_IMAGE}\n"
        f"ENV PIP_CERT={CA_PATH_IN_IMAGE} SSL_CERT_FILE={CA_PATH_IN_IMAGE} "
        f"REQUESTS_CA_BUNDLE={CA_PATH_IN_IMAGE} CURL_CA_BUNDLE={CA_PATH_IN_IMAGE}\n"
    )
    return lines, [("ca-certificates.crt", ca_bundle.read_bytes())]


# --------------------------------------------------------------------------- the mirror


@dataclass(frozen=True)
class _Source:
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]


def _one_line_sources(text: str) -> Iterator[_Source]:
    """``deb [options] URI suite [component...]`` lines (sources.list, *.list)."""
    for raw in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(words) >= 3:
            yield _Source([words[0]], [words[1]], [words[2]], words[3:])


def _deb822_sources(text: str) -> Iterator[_Source]:
    """deb822 stanzas (*.sources): ``Types:``, ``URIs:``, ``Suites:``, ``Components:``."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:  # a continuation line
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield _Source(
            *(fields.get(k, "").split() for k in ("types", "uris", "suites", "components"))
        )


def apt_mirror(suite: str, apt_dir: Path = APT_DIR) -> str | None:
    """The first http(s) archive in the machine's APT sources that serves ``suite`` with the
    ``main`` component, in APT's own order; None when there is none."""
    parts = sorted(
        p for p in (apt_dir / "sources.list.d").glob("*") if p.suffix in {".list", ".sources"}
    )
    for path in [apt_dir / "sources.list", *parts]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        parse = _deb822_sources if path.suffix == ".sources" else _one_line_sources
        for source in parse(text):
            if (
                "deb" not in source.types
                or suite not in source.suites
                or "main" not in source.components
            ):
                continue
            for uri in source.uris:
                if uri.startswith(("http://", "https://")):
                    return uri
    return None


def _mirror(suite: str) -> str:
    found = apt_mirror(suite, APT_DIR)
    if found is None:
        raise GraderFault(
            f"no Debian mirror for {suite}: the APT sources in {APT_DIR} name no http(s) archive "
            f"with `{suite} main`; pass one with --mirror URL"
        )
    return found


# --------------------------------------------------------------------------- rootfs


def _key(spec: _Spec, *, suite: str, mirror: str) -> str:
    raw = json.dumps([suite, mirror.rstrip("/"), "minbase", sorted(spec.packages)])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _debootstrap_binary() -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if found is None:
        raise GraderFault("debootstrap not found; install it: apt-get install debootstrap")
    return found


def _rootfs_tarball(spec: _Spec, *, suite: str, mirror: str) -> Path:
    """The cached debootstrap tarball for ``spec``, made when missing."""
    key = _key(spec, suite=suite, mirror=mirror)
    tarball = CACHE_DIR / f"rootfs-{suite}-{spec.name}-{key}.tar"
    with _locked(tarball.with_suffix(".lock")):
        if tarball.is_file() and tarball.stat().st_size > 0:
            logger.info(f"{spec.name}: using cached root filesystem {tarball}")
            return tarball
        binary = _debootstrap_binary()
        if os.geteuid() != 0:
            raise GraderFault(
                "debootstrap needs root: run the offline image build as root (e.g. with sudo)"
            )
        with tempfile.TemporaryDirectory(prefix=f"api-grader-{spec.name}-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            cmd = [
                binary,
                "--variant=minbase",
                f"--include={','.join(spec.packages)}",
                suite,
                str(rootfs),
                mirror,
            ]
            logger.info(f"{spec.name}: {' '.join(cmd)}  (about a minute)")
            started = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                debootstrap_log = rootfs / "debootstrap" / "debootstrap.log"
                if debootstrap_log.is_file():
                    tail += "\n" + "\n".join(
                        debootstrap_log.read_text(errors="replace").splitlines()[-15:]
                    )
                raise GraderFault(
                    f"debootstrap of {suite} from {mirror} failed (exit {proc.returncode}); "
                    f"is the Debian mirror reachable?\n{tail}"
                )
            logger.info(f"{spec.name}: debootstrap done in {time.monotonic() - started:.0f} s")
            # what a container image does not need
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (rootfs / junk).glob("*"):
                    if entry.is_file() and entry.name != "lock":
                        entry.unlink()
            partial = tarball.with_suffix(".tar.partial")
            proc = subprocess.run(
                ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs", "-cf", str(partial), "."],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                partial.unlink(missing_ok=True)
                raise GraderFault(f"packing the root filesystem failed: {proc.stderr.strip()}")
            partial.replace(tarball)
        logger.info(
            f"{spec.name}: cached root filesystem {tarball} ({tarball.stat().st_size >> 20} MiB)"
        )
        return tarball


def _rootfs_image(
    client: docker.DockerClient,
    spec: _Spec,
    *,
    suite: str,
    mirror: str,
    force: bool,
) -> str:
    key = _key(spec, suite=suite, mirror=mirror)
    tag = f"{ROOTFS_REPOSITORY}:{suite}-{spec.name}-{key}"
    if not force and _exists(client, tag):
        logger.info(f"{spec.name}: root filesystem image {tag} present")
        return tag
    # force: a deleted cache means a fresh debootstrap; an unchanged tarball is not re-imported
    tarball = _rootfs_tarball(spec, suite=suite, mirror=mirror)
    st = tarball.stat()
    stamp = f"{st.st_size}-{st.st_mtime_ns}"
    if _exists(client, tag):
        labels = client.images.get(tag).labels or {}
        if labels.get(f"{OFFLINE_LABEL}.rootfs") == stamp:
            logger.info(f"{spec.name}: root filesystem image {tag} matches the cached tarball")
            return tag
    logger.info(f"{spec.name}: importing {tarball.name} as {tag}")
    repository, _, version = tag.rpartition(":")
    try:
        # a path is streamed from disk by the SDK, never read whole into memory
        answer = client.api.import_image(
            src=str(tarball),
            repository=repository,
            tag=version,
            changes=[f'LABEL {OFFLINE_LABEL}.rootfs="{stamp}"'],
        )
    except docker.errors.APIError as exc:
        raise GraderFault(f"docker import of {tarball} failed: {exc}") from exc
    if "error" in str(answer) and not _exists(client, tag):
        raise GraderFault(f"docker import of {tarball} failed: {answer}")
    if not _exists(client, tag):
        raise GraderFault(f"docker import of {tarball} produced no image {tag}")
    return tag


# --------------------------------------------------------------------------- public API


def build_offline_images(
    *,
    python_tag: str = "python:3.11-slim",
    postgres_tag: str = "postgres:15",
    ca_bundle: Path | None = DEFAULT_CA_BUNDLE,
    mirror: str | None = None,
    suite: str = "bookworm",
    force: bool = False,
) -> list[str]:
    """Build the Python and Postgres base images from Debian's archive; return the tags built.

    Images already present are kept unless ``force``. ``mirror`` (default: the first archive of
    ``suite`` in the machine's APT sources) is looked up only when an image is built. The
    debootstrap tarballs stay cached under ``~/.cache/api-grader/`` (delete them to fetch fresh
    packages). ``ca_bundle`` (default: the host's bundle) replaces Debian's and is exported as
    ``PIP_CERT``, ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``; pass ``None`` to keep Debian's.
    """
    client = _client()
    built: list[str] = []
    try:
        for spec, tag in ((_PYTHON, python_tag), (_POSTGRES, postgres_tag)):
            if not force and _exists(client, tag):
                logger.info(f"{tag}: present, not rebuilt (force=True rebuilds)")
                continue
            started = time.monotonic()
            mirror = mirror or _mirror(suite)
            logger.info(f"{tag}: building from Debian {suite} ({mirror})")
            base = _rootfs_image(client, spec, suite=suite, mirror=mirror, force=force)
            ca_lines, ca_files = _ca_lines(ca_bundle)
            dockerfile = (
                f"FROM {base}\n"
                + ca_lines
                + spec.dockerfile
                + f'LABEL {OFFLINE_LABEL}="1" {OFFLINE_LABEL}.suite="{suite}"\n'
            )
            files: list[tuple[str, bytes | Path]] = [*ca_files, *spec.files]
            _build(client, tag=tag, dockerfile=dockerfile, files=files)
            logger.info(f"{tag}: built in {time.monotonic() - started:.0f} s")
            built.append(tag)
    finally:
        client.close()
    return built


def add_ca_bundle(*, image: str, ca_bundle: Path, tag: str | None = None) -> str:
    """Derive from ``image`` an image with ``ca_bundle`` as the system CA bundle and
    ``PIP_CERT``/``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` pointing at it; tagged ``tag``
    (default: ``image`` itself, replacing it). Returns the tag."""
    target = tag or image
    client = _client()
    try:
        if not _exists(client, image):
            raise GraderFault(f"image {image} not found locally; pull or build it first")
        ca_lines, ca_files = _ca_lines(ca_bundle)
        dockerfile = f'FROM {image}\n{ca_lines}LABEL {OFFLINE_LABEL}.ca-bundle="1"\n'
        _build(client, tag=target, dockerfile=dockerfile, files=ca_files, quiet=True)
    finally:
        client.close()
    return target
