"""grader.dockerfile: how a Dockerfile's image would start the app, as local mode reads it; and
local mode's plan from it (grader.local.plan_for). Fast: nothing is built or run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT

from grader import dockerfile, local
from grader.assignment import Runtime
from grader.dockerfile import HOST, PORT, Command, Unsupported, launch, parse


def _tree(root: Path, *files: str) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


def test_the_references_start_as_their_cmd_says() -> None:
    db_auth = parse((ROOT / "reference_solution/fastapi-db-auth/Dockerfile").read_text())
    assert db_auth.workdir == "/app"
    assert launch(db_auth) == dockerfile.Launch(
        serve=Command(["uvicorn", "app.main:app", "--host", HOST, "--port", PORT], "/app"),
        steps=[Command(["alembic", "upgrade", "head"], "/app")],
        listens=("0.0.0.0", 8000),
    )
    basics = parse((ROOT / "reference_solution/fastapi-basics/Dockerfile").read_text())
    assert launch(basics).serve.argv == [
        "gunicorn",
        "app.main:app",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--workers",
        "2",
        "--access-logfile",
        "-",
        "--bind",
        f"{HOST}:{PORT}",
    ]
    for name in ("fastapi-db-auth", "fastapi-basics"):
        root = ROOT / "reference_solution" / name
        assert parse((root / "Dockerfile").read_text()).source(root, "/app") == root.resolve()


def test_exec_and_shell_forms_entrypoint_and_cmd() -> None:
    shell = parse("FROM python:3.11-slim\nCMD uvicorn main:app --host 0.0.0.0\n")
    assert shell.command == ["/bin/sh", "-c", "uvicorn main:app --host 0.0.0.0"]
    assert launch(shell).serve.argv == ["uvicorn", "main:app", "--host", HOST, "--port", PORT]
    both = parse('FROM python:3.11-slim\nENTRYPOINT ["uvicorn"]\nCMD ["main:app", "--port=8000"]\n')
    assert both.command == ["uvicorn", "main:app", "--port=8000"]
    assert both.text == "uvicorn main:app --port=8000"
    # a shell entrypoint runs the CMD through `sh -c`; an init wrapper runs its arguments
    sh = parse(
        'FROM python:3.11-slim\nENTRYPOINT ["/bin/sh", "-c"]\nCMD ["fastapi run app/main.py"]\n'
    )
    assert launch(sh).serve.argv == [
        "fastapi",
        "run",
        "app/main.py",
        "--host",
        HOST,
        "--port",
        PORT,
    ]
    tini = parse(
        'FROM x\nENTRYPOINT ["tini", "-g", "--"]\nCMD ["python", "-m", "uvicorn", "m:app"]\n'
    )
    assert launch(tini).serve.argv[:4] == ["python", "-m", "uvicorn", "m:app"]
    # SHELL changes the shell form's shell; a JSON-looking CMD that is not an array is shell form
    bash = parse('FROM x\nSHELL ["/bin/bash", "-ec"]\nCMD echo hi; uvicorn m:app\n')
    assert bash.command == ["/bin/bash", "-ec", "echo hi; uvicorn m:app"]
    assert launch(bash).steps == [Command(["echo", "hi"], "/")]  # -e: `;` stops at a failure


def test_the_last_stage_and_what_it_inherits() -> None:
    text = """# escape=\\
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /code
COPY ./app /code/app
CMD ["uvicorn", "app.main:app"]

FROM build AS final
ENV APP_HOME=/code \\
    MODE="prod"
WORKDIR $APP_HOME/app
RUN <<EOF
CMD this heredoc line is not an instruction
EOF
"""
    image = parse(text)
    assert image.workdir == "/code/app" and image.env == {"APP_HOME": "/code", "MODE": "prod"}
    assert image.command == ["uvicorn", "app.main:app"]  # inherited from the stage it builds on
    # ENTRYPOINT resets an inherited CMD; a stage FROM an image inherits nothing of earlier stages
    assert parse(text + 'ENTRYPOINT ["gunicorn"]\n').command == ["gunicorn"]
    assert parse(text + "FROM python:3.11-slim\nCOPY --from=final /code /code\n").command is None


@pytest.mark.parametrize(
    ("dockerfile_text", "files", "expected"),
    [
        ("WORKDIR /app\nCOPY . .\n", ["main.py"], "."),
        ("WORKDIR /code\nCOPY ./app /code/app\n", ["app/main.py"], "."),
        (
            "WORKDIR /srv\nCOPY requirements.txt .\nCOPY src/ /srv/\n",
            ["requirements.txt", "src/main.py"],
            "src",
        ),
        ("COPY . /code\nWORKDIR /code/backend\n", ["backend/main.py"], "backend"),
        ("WORKDIR /app\nCOPY requirements.txt /app/requirements.txt\n", ["requirements.txt"], "."),
        ("ARG DIR=service\nWORKDIR /srv\nCOPY ${DIR} .\n", ["service/main.py"], "service"),
        (
            "WORKDIR /elsewhere\nCOPY . /code\n",
            ["main.py"],
            None,
        ),  # nothing of the submission there
        ("WORKDIR /code\nCOPY --from=build /code /code\n", ["main.py"], None),
    ],
)
def test_the_workdir_is_the_folder_copied_there(
    tmp_path: Path, dockerfile_text: str, files: list[str], expected: str | None
) -> None:
    root = _tree(tmp_path / "sub", *files)
    image = parse("FROM python:3.11-slim\n" + dockerfile_text)
    found = image.source(root, image.workdir)
    assert found == (None if expected is None else (root / expected).resolve())


def test_chains_of_plain_commands() -> None:
    chain = parse(
        "FROM x\nWORKDIR /app\nCMD set -e; cd src && alembic upgrade head; "
        "python seed.py && exec gunicorn m:app -k uvicorn.workers.UvicornWorker -b :8000\n"
    )
    got = launch(chain)
    # `set -e`: every command must succeed before the server
    assert got.steps == [
        Command(["alembic", "upgrade", "head"], "/app/src"),
        Command(["python", "seed.py"], "/app/src"),
    ]
    assert got.serve == Command(
        ["gunicorn", "m:app", "-k", "uvicorn.workers.UvicornWorker", "--bind", f"{HOST}:{PORT}"],
        "/app/src",
    )
    assert got.listens == ("0.0.0.0", 8000)
    plain = launch(
        parse('FROM x\nCMD ["sh", "-c", "echo a && echo b; uvicorn m:app --port 8000"]\n')
    )
    assert plain.before == [[Command(["echo", "a"], "/"), Command(["echo", "b"], "/")]]
    assert plain.steps == []


@pytest.mark.parametrize(
    ("cmd", "why"),
    [
        ('["./start.sh"]', "`./start.sh` is not uvicorn, gunicorn or `fastapi run`"),
        ('["python", "main.py"]', "starts the server from Python code"),
        ("uvicorn m:app | tee log", "`|` is more than a chain of plain commands"),
        ("alembic upgrade head && uvicorn m:app &", "`&` is more than a chain"),
        ("$SERVER m:app", "names its program through a shell variable"),
        (
            "pip install -r requirements.txt && uvicorn m:app",
            "installs packages when the app starts",
        ),
        ('["gunicorn", "m:app", "-w", "2"]', "gunicorn without uvicorn workers"),
        ('["uvicorn", "m:app", "--uds", "/tmp/s"]', "does not listen on a TCP port"),
        ("hypercorn m:app", "`hypercorn` is not uvicorn"),
        ("./bin/hypercorn m:app", "`./bin/hypercorn` is not uvicorn"),
        ("gunicorn m:app -k uvicorn.workers.UvicornWorker --chd ..", "write the option in full"),
        ("gunicorn m:app -k uvicorn.workers.UvicornWorker -RD", "gunicorn --daemon leaves"),
        ("uvicorn m:app --app-dir", "uvicorn `--app-dir` has no value"),
        ("uvicorn m:app --env-file $ENV_FILE", "uses shell variables"),
    ],
)
def test_what_is_not_a_plain_server_command_says_why(cmd: str, why: str) -> None:
    with pytest.raises(Unsupported, match=re.escape(why)):
        launch(parse(f"FROM x\nCMD {cmd}\n"))
    with pytest.raises(Unsupported, match="no CMD"):
        launch(parse("FROM python:3.11-slim\nRUN pip install fastapi\n"))


def test_where_the_server_listens() -> None:
    def listens(cmd: str, env: str = "", keys: tuple[str, ...] = ()) -> tuple[str, int] | None:
        return launch(parse(f"FROM x\n{env}CMD {cmd}\n"), env_keys=keys).listens

    assert listens("uvicorn m:app") == ("127.0.0.1", 8000)  # uvicorn's defaults
    assert listens("uvicorn m:app --host=0.0.0.0 --port 80") == ("0.0.0.0", 80)
    assert listens("uvicorn m:app", env="ENV UVICORN_HOST=0.0.0.0\n") is None  # the env decides
    assert listens("uvicorn m:app --host 0.0.0.0 --port $PORT") is None
    assert listens("gunicorn m:app -k uvicorn.workers.UvicornWorker") == ("127.0.0.1", 8000)
    assert listens("gunicorn m:app -k uvicorn.workers.UvicornWorker", keys=("PORT",)) is None
    assert listens("gunicorn -c conf.py m:app") is None
    assert listens("fastapi run") == ("0.0.0.0", 8000)


RUNTIME = Runtime(port=8000, migrate=["alembic", "upgrade", "head"])


def test_local_mode_runs_the_dockerfiles_command_in_its_workdir(tmp_path: Path) -> None:
    root = _tree(tmp_path, "requirements.txt", "src/api/main.py")
    (root / "Dockerfile").write_text(
        "FROM python:3.11-slim\nWORKDIR /srv\nCOPY requirements.txt .\n"
        "COPY src/ /srv/\nCMD alembic upgrade head && uvicorn api.main:app "
        "--host 0.0.0.0 --port 8000\n"
    )
    plan = local.plan_for(root, RUNTIME)
    assert plan.serve == ["uvicorn", "api.main:app", "--host", HOST, "--port", PORT]
    assert plan.cwd == (root / "src").resolve() and not plan.note
    assert plan.steps == [(["alembic", "upgrade", "head"], (root / "src").resolve())]
    assert local.workdir_for(root) == (root / "src").resolve()


def test_local_mode_falls_back_only_to_a_module_that_exists(tmp_path: Path) -> None:
    root = _tree(tmp_path, "app/main.py", "start.sh")
    (root / "Dockerfile").write_text(
        'FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nCMD ["./start.sh"]\n'
    )
    plan = local.plan_for(root, RUNTIME)
    assert plan.serve == RUNTIME.local_command and plan.cwd == root
    assert plan.steps == [(["alembic", "upgrade", "head"], root)]  # as the image presumably does
    assert plan.note == (
        "local mode does not run the Dockerfile's command `./start.sh` (`./start.sh` is not "
        "uvicorn, gunicorn or `fastapi run`): the app was started with the assignment's "
        "`uvicorn app.main:app --host 127.0.0.1 --port 8000` instead"
    )
    (root / "app" / "main.py").unlink()
    with pytest.raises(local.LocalAppError) as caught:
        local.plan_for(root, RUNTIME)
    assert caught.value.reason.startswith(
        "local mode runs the Dockerfile's CMD when it is a plain uvicorn/gunicorn/fastapi command; "
        "yours is `./start.sh`"
    )
    assert "finds no module app.main" in caught.value.reason
    (root / "Dockerfile").unlink()
    with pytest.raises(local.LocalAppError, match="there is no Dockerfile"):
        local.plan_for(root, RUNTIME)


@pytest.mark.parametrize(
    ("cmd", "why"),
    [
        ('["uvicorn", "app.main:app"]', "listens on 127.0.0.1:8000, inside the container only"),
        (
            '["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "80"]',
            "listens on port 80, but",
        ),
    ],
)
def test_an_address_the_container_would_not_answer_on_fails_locally_too(
    tmp_path: Path, cmd: str, why: str
) -> None:
    root = _tree(tmp_path, "app/main.py")
    (root / "Dockerfile").write_text(
        f"FROM python:3.11-slim\nCOPY . /app\nWORKDIR /app\nCMD {cmd}\n"
    )
    with pytest.raises(local.LocalAppError, match=why):
        local.plan_for(root, RUNTIME)


def test_programs_come_from_the_virtual_environment(tmp_path: Path) -> None:
    venv = _tree(tmp_path / "venv", "bin/python", "bin/uvicorn", "bin/alembic")
    assert local.resolve(["python3", "-m", "x"], venv) == [str(venv / "bin/python"), "-m", "x"]
    assert local.resolve(["/usr/local/bin/uvicorn", "m:app"], venv) == [
        str(venv / "bin/uvicorn"),
        "m:app",
    ]
    # a path is mapped by its name: the venv's program, never the submission's file
    assert local.resolve(["./alembic", "upgrade"], venv) == [str(venv / "bin/alembic"), "upgrade"]
    assert local.resolve(["bin/python", "seed.py"], venv) == [str(venv / "bin/python"), "seed.py"]
    sleep = local.resolve(["sleep", "1"], venv)
    assert Path(sleep[0]).is_absolute() and Path(sleep[0]).name == "sleep" and sleep[1:] == ["1"]
    assert local.resolve(["./sleep", "1"], venv) == sleep  # the system's, not the submission's
    with pytest.raises(local.Missing, match="alembic"):  # never the grader's own alembic
        local.resolve(["alembic", "upgrade", "head"], _tree(tmp_path / "bare", "bin/python"))
    # a file of the submission, or a shell that would run one, is refused with what to change
    for argv, why in [
        (["./start.sh"], "`./start.sh` is a file, and local mode runs the programs of the app's "),
        (["/opt/tools/migrate", "up"], "the venv has no `migrate`, so write the commands it runs"),
        (["bash", "prestart.sh"], "`bash prestart.sh` runs a shell, which runs a script"),
        (["sh", "-c", "./x"], "runs a shell"),
    ]:
        with pytest.raises(local.Refused, match=re.escape(why)):
            local.resolve(argv, venv)


@pytest.mark.parametrize(
    "program",
    [
        ["./uvicorn"],
        ["../../x/uvicorn"],
        ["/usr/local/bin/uvicorn"],
        ["bin/python", "-m", "uvicorn"],
        ["/usr/bin/python3.11", "-m", "uvicorn"],
    ],
)
def test_the_server_is_the_venvs_program_whatever_path_the_cmd_gives(
    tmp_path: Path, program: list[str]
) -> None:
    """`./uvicorn` in the CMD is uvicorn by name: the venv's, never a file of the submission."""
    root = _tree(tmp_path / "sub", "app/main.py", "uvicorn", "bin/python", "x/uvicorn")
    cmd = [*program, "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
    (root / "Dockerfile").write_text(f"FROM x\nWORKDIR /app\nCOPY . .\nCMD {json.dumps(cmd)}\n")
    plan = local.plan_for(root, RUNTIME)
    name = Path(program[0]).name
    assert plan.serve == [name, *program[1:], "app.main:app", "--host", HOST, "--port", PORT]
    venv = _tree(tmp_path / "venv", "bin/python", "bin/uvicorn")
    argv = local.resolve(plan.serve, venv)
    assert argv[0] == str(venv / "bin" / ("uvicorn" if name == "uvicorn" else "python"))


def _plan(root: Path, cmd: str) -> local.Plan:
    (root / "Dockerfile").write_text(f"FROM x\nWORKDIR /app\nCOPY . .\nCMD {cmd}\n")
    return local.plan_for(root, RUNTIME)


GUNICORN = "gunicorn app.main:app -k uvicorn.workers.UvicornWorker -b 0.0.0.0:8000"
UVICORN = "uvicorn app.main:app --host 0.0.0.0 --port 8000"


@pytest.mark.parametrize(
    "cmd",
    [
        f"{UVICORN} --app-dir /abs/path",
        f"{UVICORN} --app-dir=../..",
        f"{UVICORN} --env-file /etc/passwd",
        f"{UVICORN} --log-config ../x.py",
        f"{UVICORN} --app-dir link",  # a symlink of the submission to a folder outside
        f"{UVICORN} --env-file link/passwd",
        f"{GUNICORN} --chdir ..",
        f"{GUNICORN} -c ../x.py",
        f"{GUNICORN} -c file:../x.py",
        f"{GUNICORN} -Rc../x.py",  # argparse: -R, then -c ../x.py
        f"{GUNICORN} --config=/app/../x.py",
        f"{GUNICORN} --pythonpath src,..",
        f"{GUNICORN} --access-logfile /tmp/access.log",
        "fastapi run --workers 2 ../x/main.py --port 8000",
    ],
)
def test_a_servers_path_outside_the_submission_fails_the_start(tmp_path: Path, cmd: str) -> None:
    root = _tree(tmp_path / "sub", "app/main.py", "src/m.py")
    _tree(tmp_path, "x.py", "x/main.py", "etc/passwd")
    (root / "link").symlink_to(tmp_path / "etc")
    with pytest.raises(local.LocalAppError) as caught:
        _plan(root, cmd)
    assert caught.value.reason.startswith(f"the Dockerfile's command `{cmd}` gives the path `")
    assert (
        "outside the submission: local mode lets the server use the submission's files only, "
        in (caught.value.reason)
    )


def test_a_servers_paths_inside_the_submission_are_its_own(tmp_path: Path) -> None:
    root = _tree(tmp_path / "sub", "src/app/main.py", ".env", "gunicorn.conf.py")
    inner = str((root / "src").resolve())
    plan = _plan(root, f"{UVICORN} --app-dir src --env-file /app/.env --root-path /api")
    assert plan.serve == [
        "uvicorn",
        "app.main:app",
        "--root-path",
        "/api",  # a URL prefix, not a path
        "--app-dir",
        inner,
        "--env-file",
        str((root / ".env").resolve()),  # the container's /app is the submission
        "--host",
        HOST,
        "--port",
        PORT,
    ]
    plan = _plan(root, f"{GUNICORN} --chdir /app/src --access-logfile - -c python:conf")
    assert plan.serve[4:] == [
        "--chdir",
        inner,
        "--access-logfile",
        "-",  # the output, not a file
        "--config",
        "python:conf",  # a module
        "--bind",
        f"{HOST}:{PORT}",
    ]
    plan = _plan(root, f"{GUNICORN} --pythonpath src,. -c gunicorn.conf.py")
    assert plan.serve[4:8] == [
        "--pythonpath",
        f"{inner},{root.resolve()}",
        "--config",
        str((root / "gunicorn.conf.py").resolve()),
    ]


def test_python_m_never_runs_a_module_of_the_submission_named_like_the_server(
    tmp_path: Path,
) -> None:
    root = _tree(tmp_path / "sub", "app/main.py", "uvicorn/__init__.py")
    with pytest.raises(local.LocalAppError, match="would run the submission's own `uvicorn`"):
        _plan(root, f"python -m {UVICORN}")
    (root / "uvicorn" / "__init__.py").rename(root / "uvicorn.py")
    with pytest.raises(local.LocalAppError, match="rename it, or start `uvicorn …`"):
        _plan(root, f"python -m {UVICORN}")


def test_a_refused_pre_step_runs_nothing(tmp_path: Path) -> None:
    """`./prestart.sh && uvicorn …`: the start fails with the reason before anything runs."""
    root = _tree(tmp_path / "sub", "app/main.py")
    marker = tmp_path / "marker"
    script = root / "prestart.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    plan = _plan(root, f"echo start; ./prestart.sh && {UVICORN}")
    venv = _tree(tmp_path / "venv", "bin/python", "bin/uvicorn")
    app = local.LocalApp(
        root,
        {},
        tmp_path / "app.log",
        serve=plan.serve,
        venv=venv,
        steps=plan.steps,
        before=plan.before,
        cwd=plan.cwd,
    )
    with pytest.raises(local.LocalAppError, match=re.escape("`./prestart.sh` is a file")):
        app.start()
    assert not marker.exists() and not (tmp_path / "app.log").exists()
