"""The `grader` command: a thin layer over the keyword-only Python API."""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from grader import config
from grader.console import SafeConsole
from grader.core import GraderFault, Result, Status
from grader.submission import SELF_CHECK_DIR

if TYPE_CHECKING:
    from grader.cluster import Tls

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Grade web-API assignments: build, run beside Postgres, test, fuzz, score, report.",
)
images_app = typer.Typer(no_args_is_help=True, help="Base images without a registry.")
app.add_typer(images_app, name="images")
gradescope_app = typer.Typer(no_args_is_help=True, help="Gradescope autograder bundles.")
app.add_typer(gradescope_app, name="gradescope")
firewall_app = typer.Typer(
    no_args_is_help=True,
    help="The host rules that keep the grader's "
    "networks (apps, their Postgres, builds) away from this host's services.",
)
app.add_typer(firewall_app, name="firewall")
console = SafeConsole(stderr=True)  # nothing a student wrote reaches the terminal as a command

EXIT_FAULT = 2
GRADE = "grader.pipeline:grade"
BATCH = "grader.batch:run_batch"
IMAGES = "grader.offline:build_offline_images"
EXPORT = "grader.gradebook:export"
SIMILAR = "grader.similarity:find_similar"


class ApiDefault:
    """The default of an option that is passed to an API function ("grader.pipeline:grade"): the
    function's own, written there only. An option left out is not passed at all (click gets None);
    `--help` shows the function's default, read from its signature then, not when this module is
    imported (the grader's heavy modules load only when a command needs them). Flags take
    `show_default=False`: click names a flag's default by the factory's truth, not its value."""

    def __init__(self, function: str, name: str, *, negate: bool = False) -> None:
        self.function, self.name, self.negate = function, name, negate

    def value(self) -> Any:
        module, name = self.function.split(":")
        signature = inspect.signature(getattr(importlib.import_module(module), name))
        default = signature.parameters[self.name].default
        return not default if self.negate else default

    def __call__(self) -> None:
        return None  # not given: the function's default applies

    def __str__(self) -> str:
        value = self.value()
        return "" if value is None else str(value)  # typer's "[default: …]"; "": none shown


class Executor(enum.StrEnum):
    local = "local"
    dask = "dask"


TlsCaOpt = Annotated[Path | None, typer.Option(help="TLS: the CA certificate(s) (PEM)")]
TlsCertOpt = Annotated[Path | None, typer.Option(help="TLS: this process's certificate (PEM)")]
TlsKeyOpt = Annotated[Path | None, typer.Option(help="TLS: this process's private key (PEM)")]


def _tls(ca_file: Path | None, cert: Path | None, key: Path | None) -> Tls | None:
    """Mutual TLS to the cluster: all three files, or none."""
    from grader.cluster import Tls

    given = [f for f in (ca_file, cert, key) if f is not None]
    if not given:
        return None
    if ca_file is None or cert is None or key is None:
        raise GraderFault("TLS needs all three of --tls-ca-file, --tls-cert and --tls-key")
    return Tls(ca_file, cert, key)


def _given(**kwargs: Any) -> dict[str, Any]:
    """The options given (an option left out is None: the API function's default applies)."""
    return {k: v for k, v in kwargs.items() if v is not None}


RUNTIME_HELP = (
    "docker, local (no Docker: a virtual environment and local processes) or auto "
    "(Docker when an engine answers)"
)


# the API's "inprocess" runtime imports the app into the grader's own process: the grader's tests
# use it on trusted apps; a submission is never run that way from the command line
class CliRuntime(enum.StrEnum):
    docker = "docker"
    local = "local"
    auto = "auto"


class TimesFrom(enum.StrEnum):  # grader.late.Given
    command_line = "command line"
    roster = "roster"


JunitOpt = Annotated[Path | None, typer.Option(help="Also write JUnit XML here")]
MarkdownOpt = Annotated[
    Path | None, typer.Option(help="Also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="Local mode: a Postgres server to create throwaway databases on (default: a temporary "
        "cluster from the machine's PostgreSQL binaries)",
        default_factory=ApiDefault(GRADE, "database_url"),
    ),
]
DeadlineOpt = Annotated[
    float | None,
    typer.Option(
        help="Seconds all the checks' requests to the app may take together; past it, later requests "
        "fail at once (graded, the reason named)",
        default_factory=ApiDefault(GRADE, "deadline"),
    ),
]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interruptible() -> None:
    """Ctrl-C and SIGTERM (also a dying batch's parent-death signal) interrupt the grade, whose
    cleanup then removes its containers — even when started with SIGINT ignored (background jobs)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _print_result(result: Result, out: Path | None) -> None:
    from grader.output import terminal

    terminal.grade(console, result, out)


@app.command()
def grade(
    submission: Annotated[
        str, typer.Argument(help="Folder, .zip/.tar.gz archive, or git URL/path")
    ],
    *,
    assignment: Annotated[
        str, typer.Option("--assignment", "-a", help="Assignment id or spec folder")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write report.html and results.json")
    ],
    seed: Annotated[
        int | None,
        typer.Option(
            help="Fuzzing seed: same seed, same grade", default_factory=ApiDefault(GRADE, "seed")
        ),
    ],
    ref: Annotated[
        str | None,
        typer.Option(help="Git branch, tag or commit", default_factory=ApiDefault(GRADE, "ref")),
    ],
    postgres_image: Annotated[
        str | None,
        typer.Option(
            help="Postgres image for the database service",
            default_factory=ApiDefault(GRADE, "postgres_image"),
        ),
    ],
    build_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds the image build may take",
            default_factory=ApiDefault(GRADE, "build_timeout"),
        ),
    ],
    no_cache: Annotated[
        bool | None,
        typer.Option(
            "--no-cache",
            help="Build without Docker's layer cache",
            default_factory=ApiDefault(GRADE, "no_cache"),
            show_default=False,
        ),
    ],
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    published_ports: Annotated[
        bool | None,
        typer.Option(
            "--published-ports",
            help="Reach containers via 127.0.0.1 ports, not their IPs (Docker Desktop); "
            "the app's network then has a route out",
            default_factory=ApiDefault(GRADE, "isolate", negate=True),
            show_default=False,
        ),
    ],
    runtime: Annotated[
        CliRuntime | None,
        typer.Option(help=RUNTIME_HELP, default_factory=ApiDefault(GRADE, "runtime")),
    ],
    database_url: DatabaseUrlOpt,
    run_id: Annotated[
        str | None,
        typer.Option(
            hidden=True,
            help="Label the run's Docker objects with this id (`grader batch` passes one, "
            "to reap what a child it had to kill left behind)",
            default_factory=ApiDefault(GRADE, "run_id"),
        ),
    ],
    deadline: DeadlineOpt,
    submitted_at: Annotated[
        str | None,
        typer.Option(
            help="When the work was submitted (its upload time), ISO 8601 with an offset: "
            "2026-12-01T23:59:00+03:00 (default: a git source's commit date). Used by the "
            "assignment's late policy",
            default_factory=ApiDefault(GRADE, "submitted_at"),
        ),
    ],
    due: Annotated[
        str | None,
        typer.Option(
            help="The student's own deadline (an extension) instead of the assignment's, ISO 8601 "
            "with an offset",
            default_factory=ApiDefault(GRADE, "due"),
        ),
    ],
    times_from: Annotated[
        TimesFrom | None,
        typer.Option(
            hidden=True,
            help="Where --submitted-at and --due came from (`grader batch` says: roster)",
            default_factory=ApiDefault(GRADE, "times_from"),
        ),
    ],
) -> None:
    """Grade one submission end to end (in Docker unless --runtime says otherwise)."""
    if run_id is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", run_id):
        console.print("[red]--run-id: lowercase letters, digits, '_', '.', '-' (at most 64)[/]")
        raise typer.Exit(EXIT_FAULT)
    from grader.late import parse_time

    times: dict[str, Any] = {}
    for name, text in (("submitted_at", submitted_at), ("due", due)):
        try:
            times[name] = None if text is None else parse_time(text)
        except ValueError as exc:
            _say(f"--{name.replace('_', '-')}: {exc}", "red")
            raise typer.Exit(EXIT_FAULT) from None
    result = _run(
        submission_path=submission,
        assignment=assignment,
        out=out,
        seed=seed,
        ref=ref,
        run_id=run_id,
        deadline=deadline,
        postgres_image=postgres_image,
        build_timeout=build_timeout,
        no_cache=no_cache,
        isolate=None if published_ports is None else not published_ports,
        runtime=runtime,
        database_url=database_url,
        times_from=times_from,
        **times,
    )
    _print_result(result, out)
    _extra_formats(result, junit, markdown)
    if result.status is Status.NOT_GRADED:
        raise typer.Exit(EXIT_FAULT)


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="Your assignment repository (default: here)")] = Path(
        "."
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help=f"Where to write the report (default: {SELF_CHECK_DIR}/ in the repository)",
        ),
    ] = None,
    *,
    # not pipeline.grade's "docker": a student's machine may have no Docker engine
    runtime: Annotated[CliRuntime, typer.Option(help=RUNTIME_HELP)] = CliRuntime.auto,
    database_url: DatabaseUrlOpt,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Fuzzing seed: same seed, same result", default_factory=ApiDefault(GRADE, "seed")
        ),
    ],
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
) -> None:
    """Check your work before you submit: the visible checks of the assignment this repository is
    for (found from its .grader.yaml). Exit 0: all pass; 1: some fail; 2: the check could not run."""
    from grader.assignment import find_marker

    root, assignment = find_marker(path)
    out = out or root / SELF_CHECK_DIR
    # your own code on your machine: the host firewall (for graders of others' code) is not required
    result = _run(
        submission_path=root,
        assignment=assignment,
        out=out,
        seed=seed,
        runtime=runtime,
        database_url=database_url,
        visible_only=True,
        shield_host=False,
    )
    from grader.output import terminal

    terminal.check(console, result, out)
    _extra_formats(result, junit, markdown)
    if result.status is Status.NOT_GRADED:
        raise typer.Exit(EXIT_FAULT)
    if (
        any(not i.passed and not i.not_checked for i in result.items)
        or result.status is not Status.GRADED
    ):
        raise typer.Exit(1)


def _run(**kwargs: Any) -> Result:
    """pipeline.grade with the CLI's progress lines, Ctrl-C handling and fault reporting."""
    from grader.assignment import load

    load(kwargs["assignment"])  # a broken rubric fails in a moment: before the pipeline's imports
    from grader.pipeline import grade as run_grade

    _interruptible()
    config.progress(lambda msg: _say(f"… {msg}", "dim"))
    try:
        return run_grade(**_given(**kwargs))
    except KeyboardInterrupt:  # click would say "Aborted!" and exit 1
        console.print(
            "[yellow]interrupted: nothing graded; containers, processes and networks removed[/]"
        )
        raise typer.Exit(130) from None


def _say(text: str, style: str = "") -> None:
    """Print `text` as it is: a path, a student's name, a log line or an error's message may hold
    what reads as markup (a `[/]` would end a style or fail)."""
    console.print(text, style=style, markup=False, highlight=False)


def _extra_formats(result: Result, junit: Path | None, markdown: Path | None) -> None:
    from grader.core import write_atomic
    from grader.output import junit as junit_xml
    from grader.output import markdown as summary_md

    if junit is not None:
        write_atomic(junit, junit_xml.render(result))
    if markdown is not None:
        with markdown.open("a", encoding="utf-8") as fh:  # GitHub's summary file is appended to
            fh.write(summary_md.render(result))


@app.command()
def batch(
    source: Annotated[
        Path, typer.Argument(help="Folder of submissions (folders/archives) or a CSV roster")
    ],
    *,
    assignment: Annotated[str, typer.Option("--assignment", "-a")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Submissions graded at once",
            default_factory=ApiDefault(BATCH, "jobs"),
        ),
    ],
    seed: Annotated[int | None, typer.Option(default_factory=ApiDefault(BATCH, "seed"))],
    build_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds each image build may take",
            default_factory=ApiDefault(GRADE, "build_timeout"),
        ),
    ],
    deadline: DeadlineOpt,
    similarity: Annotated[
        bool, typer.Option("--similarity", help="Then compare the submissions (grader similarity)")
    ] = False,
    regrade: Annotated[
        bool | None,
        typer.Option(
            "--regrade",
            help="Regrade the grades made with an earlier version of the assignment (its tests, "
            "rubric or reference changed); changes.csv lists whose grade moved. Without it, a "
            "batch with such grades grades nothing (exit 2)",
            show_default=False,
            default_factory=ApiDefault(BATCH, "regrade"),
        ),
    ],
    executor: Annotated[
        Executor | None,
        typer.Option(
            help="local (--jobs here) or dask (on the workers of --scheduler)",
            default_factory=ApiDefault(BATCH, "executor"),
        ),
    ],
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="The Dask scheduler's address, e.g. tcp://HOST:8786",
            default_factory=ApiDefault(BATCH, "scheduler"),
        ),
    ],
    tls_ca_file: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Grade a class: parallel, resumable (killed batches keep every finished grade)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from grader.batch import run_batch
    from grader.output import changes
    from grader.regrade import StaleGrades

    # each child is given both (a grade's defaults otherwise); its time limit adds them up
    if build_timeout is None:
        build_timeout = ApiDefault(GRADE, "build_timeout").value()
    if deadline is None:
        deadline = ApiDefault(GRADE, "deadline").value()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("grading", total=None, info="")

        def progress(done: int, failed: int, remaining: int, total: int) -> None:
            bar.update(
                task,
                completed=done,
                total=total,
                info=f"done {done} · not passing {failed} · remaining {remaining}",
            )

        try:
            latest = run_batch(
                source=source,
                assignment=assignment,
                out=out,
                **_given(
                    jobs=jobs, seed=seed, regrade=regrade, executor=executor, scheduler=scheduler
                ),
                extra=["--build-timeout", str(build_timeout), "--deadline", str(deadline)],
                timeout=build_timeout + deadline + 300,  # + services, start, cleanup
                tls=_tls(tls_ca_file, tls_cert, tls_key),
                progress=progress,
                notice=_say,
            )
        except StaleGrades as exc:  # the instructor's choice to make: a usage error
            _say(str(exc), "yellow")
            raise typer.Exit(EXIT_FAULT) from None
    if regrade and (out / changes.NAME).is_file():
        _say(f"what the regrade changed: {out / changes.NAME}")
    if similarity:
        _similar(out=out, assignment=assignment)
    not_graded = [s for s, e in latest.items() if e["status"] == "not_graded"]
    console.print(
        f"{len(latest)} submissions; class summary: {out / 'index.html'}; gradebook: {out / 'grades.csv'}",
        markup=False,
    )
    if not_graded:
        _say(f"not graded (grader faults, no score given): {', '.join(not_graded)}", "yellow")
        raise typer.Exit(EXIT_FAULT)


# grader.gradebook's own (Format, IdColumn): that module loads only when `export` runs
class ExportFormat(enum.StrEnum):
    canvas = "canvas"
    moodle = "moodle"
    csv = "csv"


class ExportId(enum.StrEnum):
    email = "email"
    idnumber = "idnumber"


@app.command()
def export(
    out_dir: Annotated[Path, typer.Argument(help="A `grader batch` output folder")],
    *,
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format", "-f", help="canvas or moodle (a gradebook import), csv (for spreadsheets)"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write")],
    roster: Annotated[
        Path | None,
        typer.Option(
            help="Class roster CSV: student,name,email,sis_id[,section] (canvas and moodle need it)",
            default_factory=ApiDefault(EXPORT, "roster"),
        ),
    ],
    id_column: Annotated[
        ExportId | None,
        typer.Option(
            help="moodle: match students on their e-mail or ID number (the roster's sis_id)",
            default_factory=ApiDefault(EXPORT, "id_column"),
        ),
    ],
    title: Annotated[
        str | None,
        typer.Option(
            help="The assignment's column (default: its title), e.g. the LMS assignment's name",
            default_factory=ApiDefault(EXPORT, "title"),
        ),
    ],
    report_url: Annotated[
        str | None,
        typer.Option(
            help="moodle: where OUT_DIR is published; each feedback links the student's report",
            default_factory=ApiDefault(EXPORT, "report_url"),
        ),
    ],
) -> None:
    """Export a batch's grades: a Canvas or Moodle gradebook import, or a CSV for spreadsheets.
    Not graded and missing students get no grade, never 0."""
    from rich.markup import escape

    from grader import gradebook

    try:
        path = gradebook.export(
            out_dir=out_dir,
            format=gradebook.Format(format),
            out=out,
            **_given(roster=roster, id_column=id_column, title=title, report_url=report_url),
            warn=lambda message: console.print(f"[yellow]warning:[/] {escape(message)}"),
        )
    except gradebook.InputError as exc:  # the instructor's input: a usage error, exit 2
        raise typer.BadParameter(str(exc), param_hint=exc.param) from None
    _say(f"wrote {path}")


@app.command("similarity")
def similarity_command(
    out: Annotated[Path, typer.Argument(help="A `grader batch` output folder")],
    *,
    assignment: Annotated[
        str | None,
        typer.Option(
            "--assignment",
            "-a",
            help="Default: the one its grades name",
            default_factory=ApiDefault(SIMILAR, "assignment"),
        ),
    ],
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Flag a pair when this share of one submission's code is found in the other",
            default_factory=ApiDefault(SIMILAR, "threshold"),
        ),
    ],
    min_tokens: Annotated[
        int | None,
        typer.Option(
            help="…and at least this many tokens match",
            default_factory=ApiDefault(SIMILAR, "min_tokens"),
        ),
    ],
    starter: Annotated[
        Path | None,
        typer.Option(
            help="The starter repo (boilerplate); default: student_template/<assignment>, if any",
            default_factory=ApiDefault(SIMILAR, "starter"),
        ),
    ],
    boilerplate: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder of other code the students were given (repeatable)",
            metavar="FOLDER",
            default_factory=ApiDefault(SIMILAR, "boilerplate"),
        ),
    ],
) -> None:
    """Pairs of a batch's submissions whose code is suspiciously similar: similarity.html and .csv
    in OUT, linked from its index.html."""
    _similar(
        out=out,
        **_given(
            assignment=assignment,
            threshold=threshold,
            min_tokens=min_tokens,
            starter=starter,
            boilerplate=boilerplate,
        ),
    )


def _similar(**kwargs: Any) -> None:
    from grader.output import similarity as page
    from grader.similarity import find_similar

    report = find_similar(**kwargs)
    out = kwargs["out"]
    console.print(
        f"{len(report.codes)} submissions compared, {len(report.flagged)} pairs flagged: "
        f"{out / page.NAME}; every pair: {out / page.CSV_NAME}",
        markup=False,  # students' names and paths are printed as they are
    )
    if report.skipped:
        console.print(
            f"not compared: {', '.join(sorted(report.skipped))}", style="yellow", markup=False
        )


@app.command()
def worker(
    *,
    scheduler: Annotated[str, typer.Option(help="The Dask scheduler's address, tcp://HOST:8786")],
    slots: Annotated[int, typer.Option(help="Grades at once on this machine")] = 1,
    name: Annotated[
        str | None, typer.Option(help="This worker's name (default: its address)")
    ] = None,
    specs: Annotated[
        Path | None,
        typer.Option(
            help="Find assignments by id in this folder (default: as the batch names them)"
        ),
    ] = None,
    tls_ca_file: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Grade a cluster's tasks on this machine's Docker engine (a `dask worker`)."""
    from grader.cluster import start_worker

    start_worker(
        scheduler=scheduler,
        slots=slots,
        name=name,
        specs=specs,
        tls=_tls(tls_ca_file, tls_cert, tls_key),
        show=_say,
    )


@app.command()
def scheduler(
    *,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port for workers and batches")] = 8786,
    dashboard_address: Annotated[str, typer.Option(help="The dashboard's [host]:port")] = ":8787",
    tls_ca_file: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """The cluster's scheduler (a `dask scheduler`) for `grader batch --executor dask`."""
    from grader.cluster import start_scheduler

    start_scheduler(
        host=host,
        port=port,
        dashboard=dashboard_address,
        tls=_tls(tls_ca_file, tls_cert, tls_key),
        show=_say,
    )


@app.command()
def setup(
    *,
    for_tests: Annotated[
        bool | None,
        typer.Option(
            "--for-tests",
            help="Also install what the test suite needs",
            default_factory=ApiDefault("grader.machine:setup", "for_tests"),
            show_default=False,
        ),
    ],
) -> None:
    """Make this machine ready: a Docker engine (installed and started if none answers), the
    firewall rules, base images."""
    from grader import machine

    config.progress(_say)
    machine.setup(**_given(for_tests=for_tests))


@firewall_app.command("install")
def firewall_install(
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="A private network builds may reach, e.g. a package mirror on the LAN "
            "(CIDR, repeatable; replaces the stored list, which is kept when no --allow is given)",
        ),
    ] = None,
) -> None:
    """Install the rules (root; idempotent). An isolated grade refuses to run without them."""
    from grader import firewall

    config.progress(_say)
    firewall.install(allow=allow)


@firewall_app.command("check")
def firewall_check() -> None:
    """Exit 0 when the rules are in place, 2 (with what is missing) when not."""
    from grader import firewall

    missing = firewall.check()
    for problem in missing:
        console.print(Text.assemble(("missing:", "red"), f" {problem}"))
    if missing:
        console.print(f"fix: `{firewall.FIX}`")
        raise typer.Exit(EXIT_FAULT)
    console.print("the grader's firewall rules are in place")


@app.command()
def demo(
    assignment: Annotated[
        list[str] | None,
        typer.Option(
            "--assignment",
            "-a",
            help="Assignment id (repeatable; default: every assignment in specs/)",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("out/demo"),
    *,
    seed: Annotated[int | None, typer.Option(default_factory=ApiDefault(GRADE, "seed"))],
) -> None:
    """Grade the bundled examples: each assignment's reference solution, starter repo and samples."""
    import tempfile

    from grader import variants
    from grader.assignment import SPECS_DIR, load
    from grader.pipeline import grade as run_grade

    # sample specs (examples/*.yaml) are made here; the folder goes when `made` does, as demo returns
    made = tempfile.TemporaryDirectory(prefix="api-grader-samples-")
    ids = assignment or sorted(
        p.name for p in SPECS_DIR.iterdir() if (p / "assignment.yaml").is_file()
    )
    faults = 0
    config.progress(lambda msg: _say(f"… {msg}", "dim"))
    for name in ids:
        spec = load(name)
        repo = spec.dir.parent.parent
        samples = [
            (kind, repo / kind / spec.id) for kind in ("reference_solution", "student_template")
        ]
        samples += sorted((p.name, p) for p in (spec.dir / "examples").glob("*") if p.is_dir())
        samples += [
            (s.name, variants.materialize(s, Path(made.name) / spec.id / s.name))
            for s in variants.samples(spec.dir / "examples")
        ]
        for sample, path in samples:
            if not path.is_dir():
                continue
            console.rule(Text(f"{spec.id} · {sample}: {path}"))
            result = run_grade(
                submission_path=path,
                assignment=spec.id,
                out=out / spec.id / sample,
                **_given(seed=seed),
            )
            _print_result(result, out / spec.id / sample)
            faults += result.status is Status.NOT_GRADED
    if faults:
        raise typer.Exit(EXIT_FAULT)


@app.command()
def cleanup(
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Remove this run's containers, networks, volumes and image, whoever "
            "owns it (a run id: the `run_id` of a result's full.json)",
        ),
    ] = None,
) -> None:
    """Remove containers, networks, volumes and images left by graders that died (killed,
    crashed); runs of live graders, here or on other machines, are left alone."""
    from grader import engine

    try:
        client = engine.connect()
        reaped = engine.cleanup(client, run) if run is not None else engine.reap_orphans(client)
    except engine.ENGINE_ERRORS as exc:
        _say(f"the Docker engine failed: {engine.failure(exc)}", "yellow")
        raise typer.Exit(EXIT_FAULT) from None
    console.print(
        f"removed {len(reaped.removed)} object(s)" + "".join(f"\n  {r}" for r in reaped.removed)
    )
    why = {
        "alive": "its grader is running",
        "elsewhere": "its grader runs elsewhere (another machine or container)",
    }
    for run_id, state in sorted(reaped.kept.items()):
        console.print(f"kept run {run_id}: {why[state]} (`grader cleanup --run {run_id}` forces)")
    if reaped.failed:
        console.print(
            f"[yellow]could not remove {len(reaped.failed)} object(s):[/]"
            + "".join(f"\n  {f}" for f in reaped.failed)
        )
        raise typer.Exit(EXIT_FAULT)


@images_app.command("build-offline")
def build_offline(
    *,
    python_tag: Annotated[
        str | None,
        typer.Option(
            help="Tag of the Python base image", default_factory=ApiDefault(IMAGES, "python_tag")
        ),
    ],
    postgres_tag: Annotated[
        str | None,
        typer.Option(
            help="Tag of the Postgres image", default_factory=ApiDefault(IMAGES, "postgres_tag")
        ),
    ],
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            help="CA bundle to trust inside the images (the host's)",
            default_factory=ApiDefault(IMAGES, "ca_bundle"),
        ),
    ],
    mirror: Annotated[
        str | None,
        typer.Option(
            help="Debian mirror URL (default: the first "
            "archive of the suite in this machine's APT sources)",
            default_factory=ApiDefault(IMAGES, "mirror"),
        ),
    ],
    force: Annotated[
        bool | None,
        typer.Option(
            help="Rebuild even if the images exist",
            default_factory=ApiDefault(IMAGES, "force"),
            show_default=False,
        ),
    ],
) -> None:
    """Build the base images from Debian's archive (debootstrap + docker import), no registry needed."""
    from grader import offline

    config.progress(_say)

    built = offline.build_offline_images(
        **_given(
            python_tag=python_tag,
            postgres_tag=postgres_tag,
            ca_bundle=ca_bundle,
            mirror=mirror,
            force=force,
        ),
    )
    console.print(f"built: {', '.join(built) or 'nothing (all present; --force rebuilds)'}")


@images_app.command("add-ca")
def add_ca(
    image: Annotated[str, typer.Argument(help="Image to extend, e.g. python:3.11-slim")],
    ca_bundle: Annotated[Path, typer.Option(help="CA bundle (PEM) to trust")] = Path(
        "/etc/ssl/certs/ca-certificates.crt"
    ),
    tag: Annotated[
        str | None, typer.Option(help="Tag of the result (default: replace IMAGE)")
    ] = None,
) -> None:
    """Make an image trust a CA bundle (behind a TLS-intercepting proxy): sets PIP_CERT too."""
    from grader import offline

    console.print(offline.add_ca_bundle(image=image, ca_bundle=ca_bundle, tag=tag))


@gradescope_app.command("bundle")
def gradescope_bundle(
    assignment: Annotated[
        str, typer.Option("--assignment", "-a", help="Assignment id or spec folder")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The zip to write")] = Path(
        "autograder.zip"
    ),
    *,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Fuzzing seed every submission is graded with",
            default_factory=ApiDefault("grader.bundle:bundle", "seed"),
        ),
    ],
) -> None:
    """Write the autograder zip Gradescope expects: setup.sh, run_autograder, grader, spec, reference.
    Gradescope has no Docker engine: submissions are graded in local mode."""
    from grader.bundle import bundle

    path = bundle(assignment=assignment, out=out, **_given(seed=seed))
    console.print(f"wrote {path}: upload it as the assignment's autograder (Ubuntu base image)")


def main() -> None:
    """The `grader` command. A grader fault (the grader or its machine failed, never the student)
    maps to its exit code here, once, whichever command raised it. Process settings are applied
    by the API functions the commands call (`config.configure`), not here."""
    try:
        app()
    except GraderFault as exc:
        console.print(Text.assemble(("not done, the grader's fault:", "bold yellow"), f" {exc}"))
        raise SystemExit(EXIT_FAULT) from None


if __name__ == "__main__":
    main()
