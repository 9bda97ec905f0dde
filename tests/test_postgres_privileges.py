"""The app's Postgres role owns its database and nothing else, and the Postgres container runs in
the app's sandbox: real Docker, a real server, the app's own credentials.

Probed twice: from the test process with the app's role (the grader-side URL names the same role
and password as the app's `${postgres_url}`), and by a hostile "app" — a container on the app's
network with the app's env that tries every escalation at start and reports what worked.
"""

from __future__ import annotations

import textwrap
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from docker import DockerClient

from grader import assignment, engine, localpg, run, services
from grader.core import GraderFault, with_database
from grader.local import LocalServices

pytestmark = pytest.mark.docker

PROBE_IMAGE = "postgres:15"  # has psql; runs as the app would (run.run_once's sandbox)


def _write_spec(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "openapi.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: pg, version: '1'}\npaths: {}\n"
    )
    (root / "assignment.yaml").write_text(
        textwrap.dedent("""
        id: pg-mini
        title: A service with a database
        runtime:
          env: {DATABASE_URL: "${postgres_url}"}
        services: {postgres: true}
        categories: [{id: api, title: API}]
        items: [{id: starts, title: The app starts, category: api, points: 100, check: start}]
    """)
    )
    return root


@pytest.fixture(scope="module")
def svc(
    docker_client: DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[services.Services]:
    spec = assignment.load(_write_spec(tmp_path_factory.mktemp("pg-spec") / "pg-mini"))
    run_id = f"test-pg-{uuid.uuid4().hex[:8]}"
    started = services.start(docker_client, spec, labels=engine.labels(run_id))
    try:
        yield started
    finally:
        started.stop()
        engine.cleanup(docker_client, run_id)


@pytest.fixture(scope="module")
def added(svc: services.Services) -> dict[str, tuple[str, str]]:
    """The databases a grade adds (the migrations-alone run's; the reference's, as `grader grade`
    made it beside the app before): name → (URL for apps, URL for the grader)."""
    return {name: svc.create_database(name) for name in ("migrated", "reference")}


def _as_app(svc: services.Services, database: str | None = None) -> str:
    """The app's own URL (role and password), with the address the test process reaches."""
    assert svc.grader_database_url is not None
    return with_database(svc.grader_database_url, database) if database else svc.grader_database_url


def test_the_grader_side_url_is_the_apps_own_role(svc: services.Services) -> None:
    app, grader = urlsplit(svc.values["postgres_url"]), urlsplit(_as_app(svc))
    assert (app.username, app.password, app.path) == (grader.username, grader.password, "/app")
    assert app.hostname == services.DB_ALIAS and app.username != services.SUPERUSER
    with psycopg.connect(_as_app(svc)) as conn:
        row = conn.execute("""
            SELECT current_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
                   r.rolbypassrls, r.rolconnlimit
            FROM pg_roles r WHERE r.rolname = current_user""").fetchone()
        member_of = {
            r[0]
            for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER')"
            )
        }
    assert row == (app.username, False, False, False, False, False, services.CONNECTION_LIMIT)
    # nothing granted (pg_read_server_files, pg_execute_server_program, pg_monitor, ...) but the
    # implicit membership of its own database's owner (Postgres 15: what lets it create in `public`)
    assert member_of == {app.username, "pg_database_owner"}


@pytest.mark.parametrize("database", ["postgres", "template1", "migrated", "reference"])
def test_the_app_cannot_connect_to_another_database(
    svc: services.Services, added: dict[str, tuple[str, str]], database: str
) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(_as_app(svc, database), connect_timeout=10).close()


def test_each_added_database_has_its_own_role(
    svc: services.Services, added: dict[str, tuple[str, str]]
) -> None:
    """The migrations-alone run and the reference log in as roles of their own, each to its own
    database alone; the app's URL for each names the same role as the grader's."""
    users = {urlsplit(svc.values["postgres_url"]).username}
    for name, (app_url, grader_url) in added.items():
        assert urlsplit(app_url).username == urlsplit(grader_url).username
        users.add(urlsplit(app_url).username)
        with psycopg.connect(grader_url) as conn:
            assert conn.execute(
                "SELECT current_database(), rolsuper, rolconnlimit FROM pg_roles "
                "WHERE rolname = current_user"
            ).fetchone() == (name, False, services.CONNECTION_LIMIT)
        for other in {"app", "migrated", "reference"} - {name}:
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                psycopg.connect(with_database(grader_url, other), connect_timeout=10).close()
    assert len(users) == 3


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE ROLE intruder LOGIN SUPERUSER",
        "CREATE ROLE intruder LOGIN",
        "CREATE DATABASE another",
        "ALTER ROLE CURRENT_USER SUPERUSER",
        "SET ROLE grader",
        "CREATE TEMP TABLE t (x text); COPY t FROM PROGRAM 'sh -c \"id\"'",
        "COPY (SELECT 1) TO PROGRAM 'sh -c \"id\"'",
        "COPY (SELECT 1) TO '/tmp/out.txt'",
        "SELECT rolpassword FROM pg_authid",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('/')",
        "SELECT lo_import('/etc/passwd')",
        "CREATE EXTENSION dblink",  # untrusted: would reach the other databases
        "CREATE EXTENSION file_fdw",
    ],
)
def test_the_app_cannot_escalate(svc: services.Services, statement: str) -> None:
    with (
        psycopg.connect(_as_app(svc), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_the_app_owns_its_database(svc: services.Services) -> None:
    """What an app and its Alembic migrations do, in its own database (Postgres 15 no longer lets
    every role create in `public`)."""
    with psycopg.connect(_as_app(svc), autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001')")
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL)")
        conn.execute("CREATE UNIQUE INDEX ix_users_email ON users (email)")
        conn.execute(
            "CREATE TABLE items (id serial PRIMARY KEY, owner_id int REFERENCES users (id))"
        )
        conn.execute("ALTER TABLE users ADD COLUMN is_active boolean NOT NULL DEFAULT true")
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'not ok')")
        conn.execute("CREATE SCHEMA extra")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.com')")
        assert conn.execute("SELECT email, is_active FROM users").fetchall() == [
            ("a@example.com", True)
        ]
        conn.execute("CREATE TEMP TABLE scratch (x int)")  # TEMPORARY stays the owner's
        conn.execute("DROP TABLE items")
        conn.execute("UPDATE alembic_version SET version_num = '0002'")


def test_the_grader_reads_a_students_objects_without_more_rights(svc: services.Services) -> None:
    """A view whose function tries to make the app's role a superuser when someone reads it: read
    through the grader's URL, it runs with the app's rights (a superuser's read would succeed)."""
    role = urlsplit(svc.values["postgres_url"]).username
    with psycopg.connect(_as_app(svc), autocommit=True) as conn:
        conn.execute(f"""
            CREATE FUNCTION trap() RETURNS text LANGUAGE plpgsql AS $$
            BEGIN
                ALTER ROLE "{role}" SUPERUSER;
                RETURN 'escalated';
            EXCEPTION WHEN OTHERS THEN
                RETURN 'refused';
            END $$""")
        conn.execute("CREATE VIEW trapped AS SELECT trap() AS outcome")
    assert svc.grader_database_url is not None
    with psycopg.connect(svc.grader_database_url) as conn:
        assert conn.execute("SELECT outcome FROM trapped").fetchone() == ("refused",)
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone() == (False,)


def test_the_connection_limit_holds(svc: services.Services) -> None:
    conns = [
        psycopg.connect(_as_app(svc), connect_timeout=10) for _ in range(services.CONNECTION_LIMIT)
    ]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            psycopg.connect(_as_app(svc), connect_timeout=10).close()
    finally:
        for conn in conns:
            conn.close()


def test_the_postgres_container_is_sandboxed(
    svc: services.Services, docker_client: DockerClient
) -> None:
    container = docker_client.containers.get(svc.postgres.get_wrapped_container().id)
    host = container.attrs["HostConfig"]
    limits = services.POSTGRES_LIMITS
    assert limits.memory == "1792m" and host["Memory"] == host["MemorySwap"] == 1792 * 1024**2
    assert host["NanoCpus"] == int(limits.cpus * 1e9)
    assert host["PidsLimit"] == limits.pids
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["LogConfig"]["Config"].get("max-size") == "5m"
    assert container.attrs["Config"]["User"] == "postgres"
    # nothing on the engine's disk: a read-only root, no volume, the data in memory
    assert host["ReadonlyRootfs"] and container.attrs["Mounts"] == []
    assert host["Tmpfs"] == services.POSTGRES_TMPFS
    # every process of the server: no capability in any set
    _, out = container.exec_run(["sh", "-c", "cat /proc/[0-9]*/status"])
    caps = {
        line.split(":")[1].strip() for line in out.decode().splitlines() if line.startswith("Cap")
    }
    assert caps == {"0000000000000000"}, caps


def test_the_app_cannot_fill_the_engines_disk(
    svc: services.Services, docker_client: DockerClient
) -> None:
    """1 GB of rows, and a sort that spills 1 GB to temporary files, from the app's role: both
    fail in the run's own memory-backed storage ("No space left on device", temp_file_limit);
    the server goes on serving the app and the grader, and the container writes nothing to disk."""
    with psycopg.connect(_as_app(svc), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DiskFull, match="No space left on device"):
            conn.execute(
                "BEGIN; CREATE TABLE filler (x text); INSERT INTO filler "
                "SELECT repeat('x', 1000) FROM generate_series(1, 1000000); COMMIT"
            )
        conn.execute("ROLLBACK")
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="temp_file_limit"):
            conn.execute(
                "SELECT g, md5(g::text) FROM generate_series(1, 20000000) g ORDER BY 2 LIMIT 1"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET temp_file_limit = -1")  # a superuser's setting
        conn.execute("CREATE TABLE after_the_flood (x int); INSERT INTO after_the_flood VALUES (1)")
    _, grader_url = svc.create_database(f"after_{uuid.uuid4().hex[:6]}")  # what a grade does next
    with psycopg.connect(grader_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    (row,) = docker_client.api.containers(
        all=True, size=True, filters={"id": svc.postgres.get_wrapped_container().id}
    )
    assert row.get("SizeRw", 0) == 0, row  # the engine leaves out a size of 0


ENTRYPOINT_FAKE = """FROM postgres:15
ENTRYPOINT ["sh", "-c", "psql -X -q \\"$DATABASE_URL\\" -c 'CREATE TABLE faked (x int)'; echo ENTRYPOINT RAN"]
"""


def test_the_migrate_command_runs_without_the_images_entrypoint(
    svc: services.Services, docker_client: DockerClient, tmp_path: Path
) -> None:
    """An ENTRYPOINT that ignores its arguments and makes the schema itself (create_all, a stamped
    revision) would fake "the migrations alone build the schema": the run gets exactly the
    assignment's migrate command, whatever the image's entrypoint."""
    run_id = f"test-pg-entry-{uuid.uuid4().hex[:8]}"
    tag = f"api-grader-test/entrypoint:{run_id}"
    (tmp_path / "Dockerfile").write_text(ENTRYPOINT_FAKE)
    docker_client.images.build(path=str(tmp_path), tag=tag, rm=True, forcerm=True)
    app_url, grader_url = svc.create_database(f"entry_{uuid.uuid4().hex[:6]}")
    try:
        code, log = run.run_once(
            docker_client,
            tag,
            command=["sh", "-c", "echo the migrate command ran"],
            env={"DATABASE_URL": app_url},
            network=svc.network.name,
            labels=engine.labels(run_id),
        )
    finally:
        engine.cleanup(docker_client, run_id)
        docker_client.images.remove(tag, force=True)
    assert code == 0 and "the migrate command ran" in log and "ENTRYPOINT RAN" not in log, log
    with psycopg.connect(grader_url) as conn:
        assert conn.execute("SELECT to_regclass('faked')").fetchone() == (None,)


PROBES = r"""
probe() {  # name, database, SQL: "WORKED name" or "REFUSED name: the server's error"
    if error=$(psql -X -q -v ON_ERROR_STOP=1 "${DATABASE_URL%/*}/$2" -c "$3" 2>&1 >/dev/null)
    then echo "WORKED $1"; else echo "REFUSED $1: $error" | tr '\n' ' '; echo; fi
}
probe own-table app 'CREATE TABLE mine (x int); INSERT INTO mine VALUES (1); SELECT * FROM mine'
probe copy-from-program app "CREATE TEMP TABLE t (x text); COPY t FROM PROGRAM 'sh -c \"id\"'"
probe read-server-file app "SELECT pg_read_file('/etc/passwd')"
probe create-role app 'CREATE ROLE intruder LOGIN SUPERUSER'
probe grant-self app 'ALTER ROLE CURRENT_USER SUPERUSER CREATEROLE'
for db in postgres template1 migrated reference; do probe "connect-$db" "$db" 'SELECT 1'; done
echo PROBES DONE
"""


def test_a_hostile_app_reports_only_its_own_database(
    svc: services.Services, added: dict[str, tuple[str, str]], docker_client: DockerClient
) -> None:
    """A hostile app on the app's network with the app's env, started in the app's sandbox; the
    databases it tries exist (`added`)."""
    run_id = f"test-pg-probe-{uuid.uuid4().hex[:8]}"
    try:
        code, log = run.run_once(
            docker_client,
            PROBE_IMAGE,
            command=["sh", "-c", PROBES],
            env={"DATABASE_URL": svc.values["postgres_url"]},
            network=svc.network.name,
            labels=engine.labels(run_id),
        )
    finally:
        engine.cleanup(docker_client, run_id)
    assert code == 0 and "PROBES DONE" in log, log
    worked = [line.split()[1] for line in log.splitlines() if line.startswith("WORKED ")]
    refused = [line for line in log.splitlines() if line.startswith("REFUSED ")]
    assert worked == ["own-table"], log
    assert len(refused) == 8, log
    for line in refused:  # refused for want of rights, not for a typo or a missing database
        assert "permission denied" in line or "must be superuser" in line, line


def test_local_mode_gives_the_same_role(tmp_path: Path) -> None:
    """Parity: the throwaway cluster of local mode gives each database an owner role too."""
    if not localpg.available():  # fail, never skip: CI must run these
        pytest.fail("PostgreSQL server binaries not found: run `grader setup --for-tests`")
    local = LocalServices(values={}, postgres=True)
    try:
        url = local.values["postgres_url"]
        assert local.grader_database_url == url
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute(
                "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (False, False)
            conn.execute("CREATE TABLE mine (x int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE ROLE intruder")
        migrated, _ = local.create_database("migrated")
        assert urlsplit(migrated).username != urlsplit(url).username
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(with_database(url, "migrated"), connect_timeout=10).close()
    finally:
        local.stop()


def test_databases_made_at_once_from_threads_all_work(svc: services.Services) -> None:
    """A grade makes the twin's and the migrations-alone run's databases from two threads at
    once: Postgres refuses two sessions that change the same catalog row together ('tuple
    concurrently updated'), which once failed a grade as a grader fault."""
    names = [f"at_once_{i}_{uuid.uuid4().hex[:6]}" for i in range(48)]
    barrier = threading.Barrier(4)

    def make(name: str) -> str:
        barrier.wait(timeout=30)  # four at a time, every time
        return svc.create_database(name)[1]

    with ThreadPoolExecutor(4) as pool:
        urls = list(pool.map(make, names))
    for url in urls:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() in [(n,) for n in names]


def test_a_server_that_fails_a_database_is_the_graders_fault() -> None:
    with pytest.raises(GraderFault, match="cannot create the database 'twin'"):
        services.own_database("postgresql://grader:x@127.0.0.1:1/postgres", "twin")
