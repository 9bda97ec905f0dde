"""Prepare a machine to grade: a Docker engine that answers, and base images without a registry.

`grader setup` runs this. On Debian-like machines (as root) it installs what is missing with apt,
starts `dockerd` in the background when no engine answers, installs the firewall rules that keep
the grader's networks away from this host's services (grader/firewall.py), and builds the base
images from Debian's archive (the mirror of the machine's own APT sources) when they are missing
and no registry can provide them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from grader.core import GraderFault

logger = logging.getLogger(__name__)
DOCKERD_LOG = Path("/var/log/api-grader-dockerd.log")


def _run(cmd: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).returncode == 0
        )
    except subprocess.TimeoutExpired:
        return False


def apt_install(packages: list[str]) -> None:
    missing = [p for p in packages if _run(["dpkg", "-s", p], timeout=30).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise GraderFault(
            f"missing packages {missing}: install them (e.g. `sudo apt-get install -y {' '.join(missing)}`)"
        )
    logger.info(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=1800, check=False
        )
        if done.returncode != 0:
            raise GraderFault(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-500:]}")


def ensure_engine(*, deadline: float = 60.0) -> None:
    """Make `docker info` answer: install docker.io and start dockerd when needed."""
    if engine_answers():
        return
    if shutil.which("dockerd") is None:
        apt_install(["docker.io"])
    if os.geteuid() != 0:
        raise GraderFault(
            "no Docker engine answers and starting one needs root: run `sudo dockerd &`"
        )
    logger.info(f"starting dockerd (log: {DOCKERD_LOG})")
    with DOCKERD_LOG.open("ab") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if engine_answers():
            logger.info("Docker engine is up")
            return
        time.sleep(0.5)
    raise GraderFault(f"dockerd did not answer within {deadline:.0f} s; see {DOCKERD_LOG}")


def registry_reachable(image: str = "hello-world:latest") -> bool:
    try:
        return _run(["docker", "pull", "-q", image], timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def setup(
    *,
    python_tag: str = "python:3.11-slim",
    postgres_tag: str = "postgres:15",
    for_tests: bool = False,
) -> None:
    ensure_engine()
    from grader import firewall, offline

    firewall.install()

    wanted = [python_tag, postgres_tag]
    if offline.missing_images(wanted):
        if registry_reachable():
            for tag in offline.missing_images(wanted):
                logger.info(f"pulling {tag}")
                if _run(["docker", "pull", "-q", tag]).returncode != 0:
                    raise GraderFault(f"cannot pull {tag}")
        else:
            logger.info("no registry answers: building base images from Debian's archive")
            apt_install(["debootstrap"])
            offline.build_offline_images(python_tag=python_tag, postgres_tag=postgres_tag)
    if for_tests:
        # local mode needs PostgreSQL binaries; report screenshots need Chromium
        apt_install(["postgresql", "chromium"])
    logger.info("ready")
