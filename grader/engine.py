"""Docker engine access: labels, owners' leases, reaping, and the watch on a run's sandbox.

Ownership. Everything a run creates (containers, networks, volumes, its submission image) carries
`api-grader=<run id>` and its owner's labels: the machine (`/etc/machine-id`), the boot, the mount
and pid namespaces, the owning process (pid and start time) and its lease file. The lease is a file
under `CACHE_DIR/runs/` on which the owning process holds an exclusive `flock` from before its
first object exists until it exits; the kernel releases it when the process dies, even by SIGKILL.

Reaping removes only runs whose owner is gone (every owner, when a run's objects name two: a
batch's spare taken over by a grade), and it decides that from the labels:
* no owner labels (a grader from before leases): gone once its newest object is older than
  `LEGACY_GRACE`, longer than any grade lasts;
* another machine (an engine shared by several hosts) or a namespace that can see neither the
  owner's lease nor its process: left alone (`grader cleanup --run ID` removes one by hand);
* this machine, another boot: gone (a reboot ended every process of then);
* the lease is held: alive. Not held (or missing), in a namespace where the lease path is ours
  to see: gone. Else the owner's pid and start time, when we share its pid namespace, decide.
A run's leftovers are thus reaped by any later grader command (`grader batch` and `grader grade`
at their start, `grader cleanup`), and a batch reaps each child's run as soon as the child ends.

A run's sandbox (`Watch`): a grade follows the engine's events for its run, and before it scores
it checks that its app, its Postgres and its network are still the ones it started. A container or
network removed, paused, stopped or restarted by anyone but the grader, or an engine that stopped,
restarted or failed during the grade (its event stream breaks, a call fails), is a grader fault:
the result is "not graded", never a score computed from whatever answered instead.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker import DockerClient

from grader.core import CACHE_DIR, LABEL, GraderFault

HOST = f"{LABEL}.host"  # machine id
BOOT = f"{LABEL}.boot"  # kernel boot id
MOUNTS = f"{LABEL}.mnt"  # mount namespace: where the lease path means the same file
PROCESS = f"{LABEL}.pid"  # "<pid namespace>/<pid>/<start time in clock ticks>"
LEASE = f"{LABEL}.lease"  # the owner's lease file
OWNER = (HOST, BOOT, MOUNTS, PROCESS, LEASE)
RUNS_DIR = CACHE_DIR / "runs"
LEGACY_GRACE = 2 * 3600.0  # seconds: objects without an owner count as orphaned after this age
SUBMISSION_IMAGE = "api-grader-sub"  # repository of submission images (removed after each grade)
MIN_FREE_BYTES = 2 * 1024**3  # a build needs at least this much free on the engine's disk
# What a call to the engine raises when the engine fails: its own errors, and the HTTP client's
# (a connection refused or cut while the engine stops or restarts is not wrapped by the SDK).
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def failure(exc: Exception) -> str:
    """An engine error in a few words (the HTTP client's own text runs to several lines)."""
    if isinstance(exc, docker.errors.APIError):
        return f"{exc.status_code} {exc.explanation or ''}".strip()[:300]
    return type(exc).__name__


def connect(timeout: int = 120) -> DockerClient:
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise GraderFault(
            f"no Docker engine answers ({exc}). Start one (e.g. `sudo dockerd &`), "
            "or use `--runtime local` to grade without Docker."
        ) from exc
    return client


# -- owners and leases -------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _namespace(kind: str) -> str:
    try:
        return str(os.stat(f"/proc/self/ns/{kind}").st_ino)
    except OSError:
        return ""


def _start_time(pid: int | str) -> str:
    """The process's start time since boot (clock ticks), "" if there is no such process. With
    the pid, it names one process for the whole boot: pids are reused, start times are not."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else ""


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    mounts: str
    pidns: str
    pid: int
    start: str

    @classmethod
    def me(cls) -> Owner:
        host = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or socket.gethostname()
        return cls(
            host=host,
            boot=_read("/proc/sys/kernel/random/boot_id"),
            mounts=_namespace("mnt"),
            pidns=_namespace("pid"),
            pid=os.getpid(),
            start=_start_time(os.getpid()),
        )


_lease: tuple[int, int, Path] | None = None  # (pid, fd, path) of this process's lease
_lease_lock = threading.Lock()


def lease() -> Path:
    """This process's lease file, taken on first use and held until the process exits. It appears
    under its final name only once locked (lock a temporary name, then rename), so a reaper never
    finds it unlocked while its owner lives."""
    global _lease
    with _lease_lock:
        # a forked child owns nothing of its parent's: it takes a lease of its own
        if _lease is None or _lease[0] != os.getpid():
            path = RUNS_DIR / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.lock"
            tmp = path.with_name(f".{path.name}.tmp")
            try:
                RUNS_DIR.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.rename(tmp, path)
            except OSError as exc:
                raise GraderFault(f"cannot take a run lease in {RUNS_DIR}: {exc}") from exc
            atexit.register(_release, os.getpid(), fd, path)
            _lease = (os.getpid(), fd, path)
        return _lease[2]


def _release(pid: int, fd: int, path: Path) -> None:
    """At exit, after the runs' own cleanup: the lease goes (a forked child leaves it alone)."""
    if os.getpid() == pid:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def labels(run_id: str) -> dict[str, str]:
    """The labels of everything run `run_id` creates: the run, and its owner (this process)."""
    me = Owner.me()
    return {
        LABEL: run_id,
        HOST: me.host,
        BOOT: me.boot,
        MOUNTS: me.mounts,
        PROCESS: f"{me.pidns}/{me.pid}/{me.start}",
        LEASE: str(lease()),
    }


def _held(path: str) -> bool | None:
    """Whether someone holds the lease at `path`: None when it cannot be told (no permission)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # its owner removed it on exit (or it was wiped): nobody holds it
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two reapers never block each other
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def verdict(owner: dict[str, str], newest: float, me: Owner | None = None) -> str:
    """What the owner labels of a run say: "alive", "gone" or "elsewhere" (cannot tell here)."""
    me = me or Owner.me()
    if HOST not in owner:
        return "gone" if time.time() - newest > LEGACY_GRACE else "alive"
    if owner[HOST] != me.host:
        return "elsewhere"
    if owner.get(BOOT) != me.boot:
        return "gone"
    held = _held(owner.get(LEASE, "")) if owner.get(MOUNTS) == me.mounts else None
    if held:
        return "alive"
    pidns, _, rest = owner.get(PROCESS, "").partition("/")
    pid, _, start = rest.partition("/")
    if pidns and pidns == me.pidns and pid.isdigit():
        return "alive" if start and _start_time(pid) == start else "gone"
    return "gone" if held is False else "elsewhere"


# -- runs and reaping --------------------------------------------------------------------------


@dataclass
class Run:
    """The objects of one run on the engine, and what their labels say about its owner."""

    id: str
    # what the labels of its objects say about their owners: one, or two when a batch started
    # the run's services ahead of the grade that took them over (grader.batch's spares)
    owners: list[dict[str, str]] = field(default_factory=list)
    newest: float = 0.0  # creation time of its newest object (seconds since the epoch)
    names: list[str] = field(default_factory=list)


def _epoch(stamp: Any) -> float:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return time.time()  # unreadable: count it as new, the cautious side


def _submission_tags(image: Any) -> list[str]:
    return [t for t in image.tags if t.startswith(f"{SUBMISSION_IMAGE}:")]


def _objects(
    client: DockerClient, run_id: str | None
) -> Iterator[tuple[str, Any, dict[str, str], float]]:
    """(kind, object, labels, created) of every grader-labelled object, or of one run's."""
    selector = {"label": f"{LABEL}={run_id}" if run_id else LABEL}
    # one list call, no look-up per container: one removed in between (another run's, ending)
    # would make that look-up fail
    for raw in client.api.containers(all=True, filters=selector):
        name = (raw.get("Names") or [raw["Id"][:12]])[0].lstrip("/")
        container = client.containers.prepare_model({**raw, "Name": name})
        yield (
            "container",
            container,
            raw.get("Labels") or {},
            float(raw.get("Created") or time.time()),
        )
    for n in client.networks.list(filters=selector):
        yield "network", n, n.attrs.get("Labels") or {}, _epoch(n.attrs.get("Created"))
    for v in client.volumes.list(filters=selector):
        yield "volume", v, v.attrs.get("Labels") or {}, _epoch(v.attrs.get("CreatedAt"))
    # only submission images: the reference's image and base images are kept, whatever their
    # labels. The list call's own rows too: `images.list` looks each image up, and one removed in
    # between (another grade's, ending) failed the whole listing with ImageNotFound
    for raw in client.api.images(filters=selector):
        image = client.images.prepare_model(raw)
        if _submission_tags(image):
            yield "image", image, raw.get("Labels") or {}, float(raw.get("Created") or time.time())


def runs(client: DockerClient) -> dict[str, Run]:
    found: dict[str, Run] = {}
    for kind, obj, tags, created in _objects(client, None):
        run = found.setdefault(tags[LABEL], Run(tags[LABEL]))
        owner = {k: tags[k] for k in OWNER if k in tags}
        if owner not in run.owners:
            run.owners.append(owner)
        run.newest = max(run.newest, created)
        run.names.append(f"{kind} {_name(kind, obj)}")
    return found


def _name(kind: str, obj: Any) -> str:
    return ", ".join(_submission_tags(obj)) if kind == "image" else str(obj.name)


@dataclass
class Reaped:
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<object>: <why>", still there
    kept: dict[str, str] = field(default_factory=dict)  # run id -> "alive" / "elsewhere"


def cleanup(client: DockerClient, run_id: str) -> Reaped:
    """Remove run `run_id`'s containers, networks, volumes and submission image, whoever owns it.
    Never raises (it runs on the way out of a grade, whatever ended it): what the engine did not
    remove is listed in `failed`, and a later reaping removes it once its owner is gone.

    A submission's image goes with the layers no other image uses; shared layers stay (base
    images', the reference's, a concurrent grade's), so does an image a container still uses."""
    reaped = Reaped()
    order = {"container": 0, "volume": 1, "network": 2, "image": 3}  # users before what they use
    try:
        found = sorted(_objects(client, run_id), key=lambda o: order[o[0]])
    except ENGINE_ERRORS as exc:
        reaped.failed.append(f"run {run_id}: the Docker engine did not answer ({failure(exc)})")
        return reaped
    for kind, obj, _, _ in found:
        name = f"{kind} {_name(kind, obj)}"
        try:
            if kind == "container":
                obj.remove(force=True, v=True)
            elif kind == "volume":
                obj.remove(force=True)
            elif kind == "network":
                obj.remove()
            else:
                for tag in _submission_tags(obj):
                    client.images.remove(tag, noprune=False)
        except docker.errors.NotFound:
            continue  # gone already, not by this call
        except ENGINE_ERRORS as exc:
            reaped.failed.append(f"{name}: {failure(exc)}")
        else:
            reaped.removed.append(name)
    return reaped


def reap_orphans(client: DockerClient) -> Reaped:
    """Remove the runs whose owner is gone (see the module's docstring); report the others."""
    me, reaped = Owner.me(), Reaped()
    for run in runs(client).values():
        # gone only once every owner is: a batch's spare lives while the batch or its grade does
        states = {verdict(owner, run.newest, me) for owner in run.owners}
        state = next(s for s in ("alive", "elsewhere", "gone") if s in states)
        if state == "gone":
            done = cleanup(client, run.id)
            reaped.removed += done.removed
            reaped.failed += done.failed
        else:
            reaped.kept[run.id] = state
    _sweep_leases()
    return reaped


def reap_quietly(client: DockerClient) -> None:
    """reap_orphans for the start of a command: an engine error here is no reason not to grade."""
    with contextlib.suppress(*ENGINE_ERRORS, GraderFault):
        reap_orphans(client)


def _sweep_leases() -> None:
    """Delete the lease files of dead owners (their objects are gone or go by the rule above)."""
    for path in RUNS_DIR.glob("*.lock"):
        if _held(str(path)) is False:
            with contextlib.suppress(OSError):
                path.unlink()


def leftovers(
    client: DockerClient, *, runs: Collection[str] | None = None, lease_dir: Path | None = None
) -> list[str]:
    """Grader-labelled objects still present: all, or those of `runs` or of owners whose lease is
    under `lease_dir` (so a test looks at its own runs, not at a grade running beside it)."""
    names = []
    for kind, obj, tags, _ in _objects(client, None):
        ours = runs is None and lease_dir is None
        ours |= runs is not None and tags[LABEL] in runs
        ours |= lease_dir is not None and Path(tags.get(LEASE, "/")).parent == lease_dir
        if ours:
            names.append(f"{kind} {_name(kind, obj)}")
    return names


def require_disk(client: DockerClient) -> None:
    """Refuse to build when the engine's disk is nearly full: a build fills it further and every
    grade beside it would fail. Docker has no per-build disk quota on its usual storage drivers;
    this check, the submission's size caps and the build's time limit bound a build in practice.
    An engine whose data directory is not on this machine (remote engines) is not checked."""
    root = str(client.info().get("DockerRootDir") or "")
    if not root or not os.path.isdir(root):
        return
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise GraderFault(
            f"the Docker engine's disk ({root}) has {free / 1024**3:.1f} GB free, "
            f"below the {MIN_FREE_BYTES / 1024**3:.0f} GB a build needs: free some "
            "space (e.g. `docker image prune`, `docker builder prune`)"
        )


# -- the sandbox watch ---------------------------------------------------------------------------


@dataclass
class _Watched:
    role: str  # "the app", "Postgres"
    started: str  # State.StartedAt when the grader (re)started it
    restarts: int = 0  # restarts the grader made


SETTLE = 3.0  # seconds a stopped container may take to be removed or started again
_STOPPED = "was stopped"


class Watch:
    """Notices a run's sandbox being lost during a grade (see the module's docstring)."""

    def __init__(self) -> None:
        self.client: DockerClient | None = None
        self.fault = ""  # the first loss seen
        self._containers: dict[str, _Watched] = {}
        self._networks: dict[str, str] = {}  # id -> name
        self._actions: dict[str, list[str]] = {}  # container id -> its event actions, in order
        self._lock = threading.Lock()
        self._closing = False
        self._lost = ""
        self._stream: Any = None

    def start(self, client: DockerClient, run_id: str) -> None:
        """Follow the run's container events from now on (before any of its containers exists)."""
        self.client = client
        self._stream = client.api.events(
            decode=True, filters={"label": f"{LABEL}={run_id}", "type": "container"}
        )
        threading.Thread(target=self._follow, name="engine-events", daemon=True).start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # any end of the stream is handled below
            for event in self._stream:
                actor = (event.get("Actor") or {}).get("ID") or event.get("id", "")
                with self._lock:
                    self._actions.setdefault(actor, []).append(str(event.get("Action", "")))
        if not self._closing:
            self._lost = "the Docker engine stopped or restarted during the grade"

    def close(self) -> None:
        self._closing = True
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()

    def container(self, container: Any, role: str) -> None:
        self._containers[container.id] = _Watched(role, container.attrs["State"]["StartedAt"])
        with contextlib.suppress(*ENGINE_ERRORS):  # gone already, or the engine: `check` says so
            container.reload()
            self._containers[container.id].started = container.attrs["State"]["StartedAt"]

    def network(self, network_id: str, name: str) -> None:
        self._networks[network_id] = name

    def restarting(self, container: Any) -> None:
        """The grader itself restarts `container` now: expect its restart event."""
        self._containers[container.id].restarts += 1

    def restarted(self, container: Any) -> None:
        """After the grader's restart (done or failed): its new start time, or the loss seen."""
        with contextlib.suppress(*ENGINE_ERRORS):
            container.reload()
            self._containers[container.id].started = container.attrs["State"]["StartedAt"]
        self.check()

    def check(self) -> str:
        """The first loss of the sandbox seen so far, "" while it is intact; remembered."""
        if self.client is not None and not self.fault:
            self.fault = self._loss(self.client)
        return self.fault

    def verify(self) -> None:
        if self.check():
            raise GraderFault(f"the grading sandbox was lost: {self.fault}; grade again")

    def _loss(self, client: DockerClient) -> str:
        if self._lost:
            return self._lost
        try:
            found = self._changed(client)
            # a container being removed or restarted is stopped first: name what it settles to
            end = time.monotonic() + SETTLE
            while _STOPPED in found and time.monotonic() < end:
                time.sleep(0.2)
                found = self._changed(client)
            return found
        except ENGINE_ERRORS as exc:  # stopping, restarting, or gone: what it runs is unknown
            return f"the Docker engine failed during the grade ({failure(exc)})"

    def _changed(self, client: DockerClient) -> str:
        """What the engine shows of the sandbox that the grader did not do ("" if nothing)."""
        for cid, watched in self._containers.items():
            with self._lock:
                actions = list(self._actions.get(cid, []))
            try:
                state = client.containers.get(cid).attrs["State"]
            except docker.errors.NotFound:
                return f"{watched.role}'s container was removed by something other than the grader"
            if "pause" in actions:
                return f"{watched.role}'s container was paused by something other than the grader"
            if actions.count("restart") > watched.restarts or state["StartedAt"] != watched.started:
                return (
                    f"{watched.role}'s container was restarted by something other than the grader"
                )
            last_start = max((i for i, a in enumerate(actions) if a == "start"), default=-1)
            # the app's own exit (a crash, out of memory) sends no kill: that is the student's
            if not state["Running"] and "kill" in actions[last_start + 1 :]:
                return f"{watched.role}'s container {_STOPPED} by something other than the grader"
        for nid, name in self._networks.items():
            try:
                client.networks.get(nid)
            except docker.errors.NotFound:
                return f"the network {name} was removed by something other than the grader"
        return ""


def tail(text: str, lines: int = 60, chars: int = 8000) -> str:
    kept = "\n".join(text.rstrip().splitlines()[-lines:])
    return kept[-chars:]
