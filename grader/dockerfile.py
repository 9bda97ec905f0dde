"""A submission's Dockerfile as local mode reads it: how the image would start the app, and where.

Local mode has no image, so it runs the image's own server command from a virtual environment. This
module reads the last stage (with what it inherits from an earlier stage): its CMD/ENTRYPOINT (exec
or shell form; `sh -c "alembic upgrade head && exec uvicorn …"` chains of plain commands), its
WORKDIR, and its COPY/ADD lines, which say which folder of the submission the WORKDIR holds. It
recognises a plain uvicorn, gunicorn (uvicorn workers), `fastapi run` or `python -m …` server and
says why anything else is not one. The server's program is named by its name alone (`./uvicorn` or
`/usr/local/bin/uvicorn` is `uvicorn`: local mode runs the virtual environment's), and the values of
its options that are paths are marked for local mode to keep inside the submission. It runs nothing
and knows no assignment.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

HOST, PORT = "{host}", "{port}"  # placeholders in `Launch.serve`, filled in by local mode
SHELLS = {"sh", "bash", "dash", "ash"}
INITS = {"tini", "dumb-init", "docker-init"}  # wrappers that run their arguments as PID 1's child
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-+])([^}]*))?\}|\$(\w+)")
_HEREDOC = re.compile(r"<<-?\s*[\"']?(\w+)[\"']?")
PYTHON = re.compile(r"^python(\d(\.\d+)?)?$")
_PUNCTUATION = ";&|<>()"  # the shell's operators; only `&&` and `;` join plain commands
# the servers' options whose values are paths (files or folders they read or write), as
# uvicorn 0.54, gunicorn 27 and fastapi-cli name them (`--root-path` and the like are no paths)
PATH_OPTIONS = {
    "uvicorn": {
        "--app-dir",
        "--env-file",
        "--log-config",
        "--reload-dir",
        "--ssl-keyfile",
        "--ssl-certfile",
        "--ssl-ca-certs",
    },
    "gunicorn": {
        "--config",
        "--chdir",
        "--pythonpath",
        "--pid",
        "--worker-tmp-dir",
        "--access-logfile",
        "--error-logfile",
        "--log-file",
        "--log-config",
        "--log-config-json",
        "--reload-extra-file",
        "--paste",
        "--paster",
        "--keyfile",
        "--certfile",
        "--ca-certs",
        "--control-socket",
        "--log-syslog-to",  # addresses; a `unix:` one (a socket of the machine) is refused
        "--statsd-host",
    },
    "fastapi": {"--reload-dir"},
}
LISTS = {"--pythonpath"}  # a comma-separated list of paths
_SOCKETS = {"--log-syslog-to", "--statsd-host"}
# gunicorn parses with argparse, which takes `--chd` for `--chdir` and `-Rcconf.py` for `-R -c conf.py`
_GUNICORN_SHORT = {"c": "--config", "p": "--pid"}  # its short options whose values are paths
_GUNICORN_FLAGS = set("hvDR")  # its short options without a value
_GUNICORN_EXACT = {"--reload", "--log-syslog"}  # its options that begin a path option's name
_FASTAPI_VALUES = {
    "--workers",
    "--root-path",
    "--app",
    "--entrypoint",
    "-e",
    "--forwarded-allow-ips",
}


class Unsupported(Exception):
    """The image's command is not one local mode can run as it is; the message says why."""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    workdir: str  # the folder in the container it runs in (a `cd` earlier in a chain counts)
    paths: tuple[int, ...] = ()  # where argv has paths (relative to `workdir`, or the container's)

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Launch:
    """How the image starts the app: commands first, then the server."""

    serve: Command  # host and port are HOST and PORT
    steps: list[Command] = field(default_factory=list)  # joined by `&&`: one failing, no server
    # lists before the server's, each joined by `&&`, the lists by `;`: a failure ends its list only
    before: list[list[Command]] = field(default_factory=list)
    listens: tuple[str, int] | None = None  # the address the server listens on in the container


@dataclass
class _Copy:
    sources: list[str]  # relative to the build context
    dest: str  # absolute, in the container
    into: bool  # the destination is a folder the sources go into


@dataclass
class Image:
    """What the last stage says about running the app."""

    command: list[str] | None = None  # ENTRYPOINT + CMD as the engine runs them; None: neither
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[_Copy] = field(default_factory=list)
    # the Dockerfile's words for the command, for messages (e.g. `alembic upgrade head && …`)
    text: str = ""

    def source(self, root: Path, path: str) -> Path | None:
        """The folder of the submission at `root` that the container path `path` holds; None when
        no COPY/ADD puts one there. The deepest folder copied wins; at the same depth a copied
        folder wins over the folder of a copied file (`COPY requirements.txt .` then `COPY src/ .`:
        the code is in src), then the later copy."""
        found: tuple[int, int, int] | None = None
        best: tuple[str, str] | None = None
        for order, (dest, source, folder) in enumerate(self._mappings(root)):
            if path == dest or path.startswith(dest.rstrip("/") + "/"):
                rank = (len(dest), folder, order)
                if found is None or rank > found:
                    found, best = rank, (dest, source)
        if best is None:
            return None
        folder_path = (root / best[1] / posixpath.relpath(path, best[0])).resolve()
        inside = folder_path.is_dir() and folder_path.is_relative_to(root.resolve())
        return folder_path if inside else None

    def _mappings(self, root: Path) -> list[tuple[str, str, int]]:
        """(container folder, submission folder, 1 when a folder was copied there) per copy."""
        pairs: list[tuple[str, str, int]] = []
        for copy in self.copies:
            for raw in copy.sources:
                source = posixpath.normpath(raw.lstrip("/")) if raw.strip("/") else "."
                if any(c in source for c in "*?["):  # a pattern: files of its folder, into dest
                    pair = (copy.dest, posixpath.dirname(source) or ".", 0)
                elif (root / source).is_dir():  # a folder's contents go into dest
                    pair = (copy.dest, source, 1)
                elif not (root / source).is_file():
                    continue
                elif copy.into:
                    pair = (copy.dest, posixpath.dirname(source) or ".", 0)
                elif posixpath.basename(copy.dest) == posixpath.basename(source):
                    pair = (posixpath.dirname(copy.dest), posixpath.dirname(source) or ".", 0)
                else:  # renamed on the way: says nothing about folders
                    continue
                pairs.append(pair)
                dest, src, _ = pair
                # `COPY app /code/app`: /code holds the folder that holds app
                while (
                    src != "."
                    and dest != "/"
                    and posixpath.basename(dest) == posixpath.basename(src)
                ):
                    dest, src = posixpath.dirname(dest), posixpath.dirname(src) or "."
                    pairs.append((dest, src, 0))
        return pairs


@dataclass
class _Stage:
    name: str
    image: Image = field(default_factory=Image)
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    cmd_text: str = ""
    entrypoint_text: str = ""
    cmd_here: bool = False  # set in this stage, not inherited
    shell: list[str] = field(default_factory=lambda: ["/bin/sh", "-c"])
    args: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> Image:
    """The last stage of the Dockerfile `text` (a stage built FROM an earlier one inherits it)."""
    stages: dict[str, _Stage] = {}
    stage: _Stage | None = None
    global_args: dict[str, str] = {}
    for keyword, rest in _instructions(text):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            base = words[0].lower() if words else ""
            name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""
            parent = stages.get(base)
            stage = (
                _Stage(name=name, args=dict(global_args))
                if parent is None
                else _inherit(parent, name, global_args)
            )
            stages[name or f"#{len(stages)}"] = stage
            continue
        if stage is None:  # before the first FROM only ARG is allowed
            if keyword == "ARG":
                _set_arg(global_args, rest, {})
            continue
        _apply(stage, keyword, rest)
    if stage is None:
        return Image()
    command = stage.entrypoint + (stage.cmd or []) if stage.entrypoint is not None else stage.cmd
    text = " ".join(t for t in (stage.entrypoint_text, stage.cmd_text if stage.cmd else "") if t)
    return replace(stage.image, command=command or None, text=text)


def _inherit(parent: _Stage, name: str, global_args: dict[str, str]) -> _Stage:
    image = replace(parent.image, env=dict(parent.image.env), copies=list(parent.image.copies))
    return _Stage(
        name=name,
        image=image,
        cmd=parent.cmd,
        entrypoint=parent.entrypoint,
        cmd_text=parent.cmd_text,
        entrypoint_text=parent.entrypoint_text,
        shell=list(parent.shell),
        args=dict(global_args),
    )


def _apply(stage: _Stage, keyword: str, rest: str) -> None:
    image = stage.image
    values = {**stage.args, **image.env}
    if keyword == "ARG":
        _set_arg(stage.args, rest, values)
    elif keyword == "ENV":
        image.env.update(_pairs(rest, values))
    elif keyword == "WORKDIR":
        image.workdir = posixpath.normpath(
            posixpath.join(image.workdir, _expand(rest.strip(), values))
        )
    elif keyword in {"COPY", "ADD"}:
        words = _words(rest)
        if any(
            w.startswith("--from") for w in words
        ):  # from another stage or image: not the submission's
            return
        paths = [_expand(w, values) for w in words if not w.startswith("--")]
        if len(paths) < 2:
            return
        *sources, dest = paths
        sources = [s for s in sources if "://" not in s and not s.startswith("git@")]
        into = dest.endswith("/") or len(sources) > 1 or dest in {".", "./"}
        absolute = posixpath.normpath(posixpath.join(image.workdir, dest))
        image.copies.append(_Copy(sources=sources, dest=absolute, into=into))
    elif keyword == "SHELL":
        shell = _exec_form(rest)
        if shell:
            stage.shell = shell
    elif keyword in {"CMD", "ENTRYPOINT"}:
        argv = _exec_form(rest)
        text = " ".join(rest.split()) if argv is None else shlex.join(argv)  # as typed, on one line
        if argv is None:  # shell form
            argv = [*stage.shell, rest.strip()]
        if keyword == "CMD":
            stage.cmd, stage.cmd_text, stage.cmd_here = argv, text, True
        else:
            stage.entrypoint, stage.entrypoint_text = argv, text
            if not stage.cmd_here:  # ENTRYPOINT resets a CMD the stage inherited
                stage.cmd, stage.cmd_text = None, ""


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments out, continuation lines joined, heredoc
    bodies skipped, the `# escape=` directive honoured."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives: comments at the very top
        directive = re.match(r"#\s*escape\s*=\s*(\S)", line.strip())
        if directive:
            escape = directive.group(1)
        elif not line.strip().startswith("#"):
            break
    out: list[tuple[str, str]] = []
    current = ""
    heredoc: str | None = None
    for line in lines:
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if line.strip().startswith("#") or (not line.strip() and current):
            continue
        stripped = line.rstrip()
        if stripped.endswith(escape):
            current += stripped[: -len(escape)] + " "
            continue
        current += line
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
            marker = _HEREDOC.search(rest) if keyword.upper() in {"RUN", "COPY", "ADD"} else None
            heredoc = marker.group(1) if marker else None
        current = ""
    return out


def _exec_form(rest: str) -> list[str] | None:
    """A JSON array of strings (exec form); None for anything else (the engine's shell form)."""
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _words(rest: str) -> list[str]:
    return _exec_form(rest) or shlex.split(rest, comments=False)


def _expand(word: str, values: dict[str, str]) -> str:
    """`$NAME`, `${NAME}`, `${NAME:-default}` as the builder expands them (unknown: empty)."""

    def fill(match: re.Match[str]) -> str:
        name, operator, word = (
            match.group(1) or match.group(4),
            match.group(2) or "",
            match.group(3) or "",
        )
        known = values.get(name, "")
        if operator.endswith("+"):
            return word if known else ""
        return known or word

    return _VAR.sub(fill, word)


def _pairs(rest: str, values: dict[str, str]) -> dict[str, str]:
    """ENV's `a=1 b="two words"` or legacy `NAME value with spaces`."""
    try:
        words = shlex.split(rest)
    except ValueError:
        return {}
    if words and "=" not in words[0]:
        return {words[0]: _expand(" ".join(words[1:]), values)}
    return {k: _expand(v, values) for k, _, v in (w.partition("=") for w in words)}


def _set_arg(args: dict[str, str], rest: str, values: dict[str, str]) -> None:
    name, _, default = rest.strip().partition("=")
    if name and (default or name not in args):
        args[name] = _expand(default.strip("\"'"), values) if default else args.get(name, "")


# the command --------------------------------------------------------------------------------------
def launch(image: Image, *, env_keys: Iterable[str] = ()) -> Launch:
    """How `image` starts its server, for local mode. `env_keys`: the variables the app gets besides
    the image's ENV (they may choose its address). Raises Unsupported with the reason."""
    if not image.command:
        raise Unsupported("the Dockerfile has no CMD")
    argv = _without_init(image.command)
    keys = set(env_keys) | set(image.env)
    if (
        len(argv) >= 3
        and posixpath.basename(argv[0]) in SHELLS
        and re.fullmatch(r"-[a-z]*c", argv[1])
    ):
        return _chain(argv[2], image.workdir, errexit="e" in argv[1], env_keys=keys)
    serve, listens, paths = _server(argv, keys)
    return Launch(serve=Command(serve, image.workdir, paths), listens=listens)


def _without_init(argv: list[str]) -> list[str]:
    while argv and posixpath.basename(argv[0]) in INITS:
        argv = argv[1:]
        while argv and argv[0].startswith("-"):
            done = argv[0] == "--"
            argv = argv[1:]
            if done:
                break
    return argv


def _chain(script: str, workdir: str, *, errexit: bool, env_keys: set[str]) -> Launch:
    """A shell script of plain commands joined by `&&`, `;` or new lines, the server last."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=_PUNCTUATION + "\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise Unsupported(f"the shell cannot read it ({exc})") from None
    lists: list[list[Command]] = [[]]
    words: list[str] = []
    for word in [*tokens, ";"]:
        # punctuation comes in runs: ";\n" ends a command, "&&\n" continues the list on a new line
        token = ";" if set(word) <= set(";\n") else "&&" if word.strip("\n") == "&&" else word
        if token not in {"&&", ";"}:
            if set(token) <= set(_PUNCTUATION):
                raise Unsupported(
                    f"`{token.strip()}` is more than a chain of plain commands (&&, ;)"
                )
            words.append(token)
            continue
        words = words[1:] if words[:1] == ["exec"] else words
        if words:
            if words[0] == "cd":
                if len(words) != 2 or "$" in words[1]:
                    raise Unsupported(f"`{shlex.join(words)}` is not a plain `cd FOLDER`")
                workdir = posixpath.normpath(posixpath.join(workdir, words[1]))
            elif words[0] == "set" and all(w.startswith(("-", "+")) for w in words[1:]):
                errexit = errexit or any("e" in w for w in words[1:] if w.startswith("-"))
            elif words[0] not in {"true", ":"}:
                lists[-1].append(Command(words, workdir))
            words = []
        if token != "&&" and not errexit and lists[-1]:
            lists.append([])
    lists = [group for group in lists if group]
    if not lists:
        raise Unsupported("the shell command is empty")
    *before, last = lists
    *steps, server = last
    for command in [*steps, *(c for group in before for c in group)]:
        _plain_step(command)
    serve, listens, paths = _server(server.argv, env_keys)
    return Launch(
        serve=Command(serve, server.workdir, paths), steps=steps, before=before, listens=listens
    )


def _plain_step(command: Command) -> None:
    words = command.argv
    if any("$" in w for w in words) or "=" in words[0]:
        raise Unsupported(f"`{command}` uses shell variables")
    program = posixpath.basename(words[0])
    module = words[2] if PYTHON.match(program) and len(words) > 2 and words[1] == "-m" else ""
    if program in {"pip", "pip3", "uv"} or module == "pip":
        raise Unsupported(
            f"`{command}` installs packages when the app starts (local mode installs "
            "requirements.txt once)"
        )


# the server's argv, the address it listens on, where its argv has paths
_Served = tuple[list[str], tuple[str, int] | None, tuple[int, ...]]


def _server(argv: list[str], env_keys: set[str]) -> _Served:
    """The server's argv with HOST and PORT in place of its address, and that address. Its program
    by name only: a path's folder is the image's, never the submission's (`./uvicorn` is uvicorn)."""
    if not argv:
        raise Unsupported("the command is empty")
    program = posixpath.basename(argv[0])
    if PYTHON.match(program):
        if len(argv) < 3 or argv[1] != "-m":
            raise Unsupported(
                f"`{shlex.join(argv)}` starts the server from Python code, where local "
                "mode cannot choose its address"
            )
        prefix, kind, rest = [program, *argv[1:3]], argv[2], argv[3:]
    else:
        prefix, kind, rest = [program], program, argv[1:]
    if "$" in " ".join(argv[: len(prefix)]):
        raise Unsupported(f"`{shlex.join(argv)}` names its program through a shell variable")
    if kind == "uvicorn":
        return _uvicorn(prefix, rest, env_keys)
    if kind == "gunicorn":
        return _gunicorn(prefix, rest, env_keys)
    if kind == "fastapi" and rest[:1] in (["run"], ["dev"]):
        return _fastapi(prefix, rest, env_keys)
    raise Unsupported(
        f"`{shlex.join(argv[: len(prefix)])}` is not uvicorn, gunicorn or `fastapi run`"
    )


def _take(args: list[str], short: str | None, long: str) -> tuple[list[str], list[str]]:
    """(args without the option `short`/`long` and its values, the values in order)."""
    kept: list[str] = []
    values: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in {long, short} and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        if arg.startswith(long + "="):
            values.append(arg.partition("=")[2])
        elif short and arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            values.append(arg[len(short) :].lstrip("="))
        else:
            kept.append(arg)
        i += 1
    return kept, values


def _take_paths(rest: list[str], kind: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(`rest` without the options of server `kind` whose values are paths, those options and
    their values); gunicorn's abbreviations and short options (`-c x`, `-cx`, `-Rcx`) included."""
    names = PATH_OPTIONS[kind]
    gunicorn = kind == "gunicorn"
    kept: list[str] = []
    taken: list[tuple[str, str]] = []
    words = list(rest)
    while words:
        word = words.pop(0)
        if word == "--":  # arguments only from here on
            kept += [word, *words]
            break
        option: str | None = None
        value: str | None = None
        flags = ""
        if word.startswith("--"):
            name, equals, inline = word.partition("=")
            value = inline if equals else None
            if name in names:
                option = name
            elif (
                gunicorn and name not in _GUNICORN_EXACT and any(n.startswith(name) for n in names)
            ):
                raise Unsupported(
                    f"gunicorn `{word}` is short for an option whose value is a path: "
                    "write the option in full"
                )
        elif gunicorn and len(word) > 1 and word[0] == "-" and word[1] != "-":
            for at, char in enumerate(word[1:], start=2):
                if char in _GUNICORN_SHORT:
                    option, value = _GUNICORN_SHORT[char], word[at:].removeprefix("=") or None
                    break
                if char not in _GUNICORN_FLAGS:
                    break  # an option with a value: the rest of the word (or the next) is it
                flags += char
        if option is None:
            kept.append(word)
            continue
        if flags:
            kept.append("-" + flags)
        if value is None:
            if not words:
                raise Unsupported(f"{kind} `{word}` has no value")
            value = words.pop(0)
        taken.append((option, value))
    return kept, taken


def _with_paths(
    argv: list[str], taken: list[tuple[str, str]], address: list[str]
) -> tuple[list[str], tuple[int, ...]]:
    """`argv`, the options `taken`, `address`; and where the paths are among them (not `-`, the
    output, nor gunicorn's `python:module` config or a socket's network address)."""
    marked: list[int] = []
    for option, value in taken:
        if option in _SOCKETS and value.startswith("unix:"):
            raise Unsupported(f"gunicorn `{option} {value}` writes to a socket of the machine")
        value = value.removeprefix("file:") if option == "--config" else value
        argv = [*argv, option, value]
        if value != "-" and option not in _SOCKETS and not value.startswith("python:"):
            marked.append(len(argv) - 1)
    return [*argv, *address], tuple(marked)


def _check_words(words: list[str]) -> None:
    if any("$" in w for w in words):
        raise Unsupported(f"`{shlex.join(words)}` uses shell variables")


def _port(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _uvicorn(prefix: list[str], rest: list[str], env_keys: set[str]) -> _Served:
    rest, hosts = _take(rest, None, "--host")
    rest, ports = _take(rest, None, "--port")
    for unix in ("--uds", "--fd"):
        if _take(rest, None, unix)[1]:
            raise Unsupported(f"uvicorn {unix} does not listen on a TCP port")
    rest, taken = _take_paths(rest, "uvicorn")
    _check_words([*rest, *(w for pair in taken for w in pair)])
    host = hosts[-1] if hosts else (None if "UVICORN_HOST" in env_keys else "127.0.0.1")
    port = _port(ports[-1]) if ports else (None if "UVICORN_PORT" in env_keys else 8000)
    listens = (host, port) if host is not None and port is not None and "$" not in host else None
    argv, paths = _with_paths([*prefix, *rest], taken, ["--host", HOST, "--port", PORT])
    return argv, listens, paths


def _gunicorn(prefix: list[str], rest: list[str], env_keys: set[str]) -> _Served:
    rest, binds = _take(rest, "-b", "--bind")
    rest, taken = _take_paths(rest, "gunicorn")
    workers = _take(rest, "-k", "--worker-class")[1]
    if any(_daemon(w) for w in rest):
        raise Unsupported("gunicorn --daemon leaves the command: the container would stop")
    configured = any(o == "--config" for o, _ in taken) or "GUNICORN_CMD_ARGS" in env_keys
    if not configured and not any("uvicorn" in w.lower() for w in workers):
        raise Unsupported(
            "gunicorn without uvicorn workers (`-k uvicorn.workers.UvicornWorker`) "
            "cannot serve an ASGI app"
        )
    _check_words([*rest, *(w for pair in taken for w in pair)])
    listens: tuple[str, int] | None = None
    if binds:
        if binds[-1].startswith(("unix:", "fd://")):
            raise Unsupported("gunicorn binds a socket that is not a TCP port")
        host, _, port = binds[-1].rpartition(":") if ":" in binds[-1] else (binds[-1], "", "8000")
        number = _port(port)
        listens = (host or "0.0.0.0", number) if number is not None and "$" not in host else None
    elif not configured and "PORT" not in env_keys:
        listens = ("127.0.0.1", 8000)
    argv, paths = _with_paths([*prefix, *rest], taken, ["--bind", f"{HOST}:{PORT}"])
    return argv, listens, paths


def _daemon(word: str) -> bool:
    """`--daemon` (or short for it), or `-D` among gunicorn's short flags (`-RD`)."""
    if word.startswith("--"):
        return len(word) > 3 and "--daemon".startswith(word)
    for char in word[1:] if word.startswith("-") else "":
        if char == "D" or char not in _GUNICORN_FLAGS:
            return char == "D"
    return False


def _fastapi(prefix: list[str], rest: list[str], env_keys: set[str]) -> _Served:
    rest, hosts = _take(rest, None, "--host")
    rest, ports = _take(rest, None, "--port")
    rest, taken = _take_paths(rest, "fastapi")
    _check_words([*rest, *(w for pair in taken for w in pair)])
    host = hosts[-1] if hosts else ("0.0.0.0" if rest[0] == "run" else "127.0.0.1")
    port = _port(ports[-1]) if ports else 8000
    listens = (host, port) if port is not None and "$" not in host else None
    argv, paths = _with_paths([*prefix, *rest], taken, ["--host", HOST, "--port", PORT])
    at = _fastapi_path(rest)  # `fastapi run app/main.py`: the file or package it serves
    if at is not None:
        paths = (len(prefix) + at, *paths)
    return argv, listens, paths


def _fastapi_path(rest: list[str]) -> int | None:
    """Where in `rest` (`run …`) the path argument is, if any."""
    at = 1
    while at < len(rest):
        word = rest[at]
        if word == "--":
            return at + 1 if at + 1 < len(rest) else None
        if not word.startswith("-"):
            return at
        at += 2 if word in _FASTAPI_VALUES else 1
    return None
