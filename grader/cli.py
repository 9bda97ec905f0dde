"""The `grader` command: a thin layer over the keyword-only Python API."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from grader.core import GraderFault, Result, Status
from grader.submission import SELF_CHECK_DIR

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
console = Console(stderr=True)

EXIT_FAULT = 2
RuntimeOpt = Annotated[
    str,
    typer.Option(
        help="docker, local (no Docker: a virtual environment and local processes) or auto "
        "(Docker when an engine answers)"
    ),
]
JunitOpt = Annotated[Path | None, typer.Option(help="Also write JUnit XML here")]
MarkdownOpt = Annotated[
    Path | None, typer.Option(help="Also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="Local mode: a Postgres server to create throwaway databases on (default: a temporary "
        "cluster from the machine's PostgreSQL binaries)"
    ),
]
DeadlineOpt = Annotated[
    float,
    typer.Option(
        help="Seconds all the checks' requests to the app may take together; past it, later requests "
        "fail at once (graded, the reason named)"
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
    from grader.report import summary

    style = {Status.GRADED: "green", Status.NOT_GRADED: "yellow"}.get(result.status, "red")
    console.print(f"[bold {style}]{summary(result)}[/]")
    for cat in result.categories:
        console.print(f"  {cat.title:<34} {cat.points:>6g} / {cat.max_points:g}")
    _print_causes(result)
    if out is not None:
        console.print(f"report: {out / 'report.html'}   results: {out / 'results.json'}")


@app.command()
def grade(
    submission: Annotated[
        str, typer.Argument(help="Folder, .zip/.tar.gz archive, or git URL/path")
    ],
    assignment: Annotated[
        str, typer.Option("--assignment", "-a", help="Assignment id or spec folder")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write report.html and results.json")
    ],
    seed: Annotated[int, typer.Option(help="Fuzzing seed: same seed, same grade")] = 0,
    ref: Annotated[str | None, typer.Option(help="Git branch, tag or commit")] = None,
    postgres_image: Annotated[
        str, typer.Option(help="Postgres image for the database service")
    ] = "postgres:15",
    build_timeout: Annotated[float, typer.Option(help="Seconds the image build may take")] = 600.0,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Build without Docker's layer cache")
    ] = False,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    published_ports: Annotated[
        bool,
        typer.Option(
            "--published-ports",
            help="Reach containers via 127.0.0.1 ports, not their IPs (Docker Desktop); "
            "the app's network then has a route out",
        ),
    ] = False,
    runtime: RuntimeOpt = "docker",
    database_url: DatabaseUrlOpt = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            hidden=True,
            help="Label the run's Docker objects with this id (`grader batch` passes one, "
            "to reap what a child it had to kill left behind)",
        ),
    ] = None,
    deadline: DeadlineOpt = 300.0,
) -> None:
    """Grade one submission end to end (in Docker unless --runtime says otherwise)."""
    if run_id is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", run_id):
        console.print("[red]--run-id: lowercase letters, digits, '_', '.', '-' (at most 64)[/]")
        raise typer.Exit(EXIT_FAULT)
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
        isolate=not published_ports,
        runtime=runtime,
        database_url=database_url,
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
    runtime: RuntimeOpt = "auto",
    database_url: DatabaseUrlOpt = None,
    seed: Annotated[int, typer.Option(help="Fuzzing seed: same seed, same result")] = 0,
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
    _print_check(result, out)
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
    from grader.pipeline import grade as run_grade

    _interruptible()
    try:
        return run_grade(**kwargs, log=lambda msg: console.print(f"[dim]… {msg}[/]"))
    except KeyboardInterrupt:  # click would say "Aborted!" and exit 1
        console.print(
            "[yellow]interrupted: nothing graded; containers, processes and networks removed[/]"
        )
        raise typer.Exit(130) from None


def _extra_formats(result: Result, junit: Path | None, markdown: Path | None) -> None:
    from grader import report

    if junit is not None:
        report.write_atomic(junit, report.junit(result))
    if markdown is not None:
        with markdown.open("a", encoding="utf-8") as fh:  # GitHub's summary file is appended to
            fh.write(report.markdown(result))


def _print_causes(result: Result) -> None:
    """The root causes the report opens with, each with the points it costs."""
    from grader.report import top_causes

    shown, rest = top_causes(result)
    if not shown:
        return
    console.print("[bold]Where the points went[/]")
    for n, c in enumerate(shown, 1):
        console.print(f"  {n}. {c.title}  (−{c.points:g})", markup=False, highlight=False)
    if rest:
        console.print(
            f"  … and {len(rest)} smaller cause(s) ({sum(c.points for c in rest):.2f} points)"
        )


def _print_check(result: Result, out: Path) -> None:
    """The self-check's terminal summary: categories, then each failure with a reproducer."""
    from rich.table import Table

    from grader.report import (
        cause,
        failure_groups,
        not_run,
        not_run_line,
        reproducers,
        summary,
        to_fix,
        zeroed,
    )

    if result.status is Status.NOT_GRADED:
        console.print(f"[bold yellow]{summary(result)}[/]")
        return
    table = Table(
        title=f"{result.assignment} · visible checks · {result.runtime} mode", title_justify="left"
    )
    table.add_column("category")
    table.add_column("points", justify="right")
    table.add_column("not checked", justify="right")
    for cat in result.categories:
        unchecked = sum(
            i.max_points for i in result.items if i.category == cat.id and i.not_checked
        )
        style = "green" if cat.points >= cat.max_points - unchecked else "red"
        table.add_row(
            cat.title,
            f"[{style}]{cat.points:g} / {cat.max_points - unchecked:g}[/]",
            f"[dim]{unchecked:g}[/]" if unchecked else "",
        )
    console.print(table)
    for why, items in not_run(result):  # one line for the items that could not run
        console.print(
            f"✗ {not_run_line(why, items)}", style="bold red", markup=False, highlight=False
        )
    _print_causes(result)
    scripts = reproducers(result)
    fix = to_fix(result)
    for item in result.items:
        if item.not_checked:
            console.print(f"[dim]○ {item.title}: not checked in {result.runtime} mode[/]")
        elif item in fix:
            console.print(f"[bold red]✗ {item.title}[/] ({item.points:g}/{item.max_points:g})")
            if item.zeroed_by:
                console.print(f"    {zeroed(item)}", style="bold", markup=False, highlight=False)
            groups = failure_groups(item)
            for first, same in groups[:3]:
                what = cause(first)
                console.print(f"    {first.name}: {what}", markup=False, highlight=False)
                if first.expected is not None:
                    console.print(
                        f"      expected: {first.expected}", markup=False, highlight=False
                    )
                    console.print(f"      actual:   {first.actual}", markup=False, highlight=False)
                if id(first) in scripts:  # the whole sequence, against the student's own app
                    script = os.path.relpath(out / scripts[id(first)][0])  # copied as one line
                    console.print(
                        f"      reproduce: python {script}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
                elif first.exchange is not None:
                    console.print(
                        f"      reproduce: {first.exchange.curl()}", markup=False, highlight=False
                    )
                if same:
                    console.print(f"      … and {len(same)} more with the same cause")
            if len(groups) > 3:
                console.print(f"    … {len(groups) - 3} more problem(s): see the report")
    style = "green" if all(i.passed or i.not_checked for i in result.items) else "red"
    console.print(f"[bold {style}]{summary(result)}[/]")
    console.print(f"report: {out / 'report.html'}")


@app.command()
def batch(
    source: Annotated[
        Path, typer.Argument(help="Folder of submissions (folders/archives) or a CSV roster")
    ],
    assignment: Annotated[str, typer.Option("--assignment", "-a")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Submissions graded at once")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    build_timeout: Annotated[float, typer.Option(help="Seconds each image build may take")] = 600.0,
    deadline: DeadlineOpt = 300.0,
) -> None:
    """Grade a class: parallel, resumable (killed batches keep every finished grade)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from grader.batch import run_batch

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

        latest = run_batch(
            source=source,
            assignment=assignment,
            out=out,
            jobs=jobs,
            seed=seed,
            extra=["--build-timeout", str(build_timeout), "--deadline", str(deadline)],
            timeout=build_timeout + deadline + 300,  # + services, start, cleanup
            progress=progress,
        )
    not_graded = [s for s, e in latest.items() if e["status"] == "not_graded"]
    console.print(
        f"{len(latest)} submissions; class summary: {out / 'index.html'}; gradebook: {out / 'grades.csv'}"
    )
    if not_graded:
        console.print(
            f"[yellow]not graded (grader faults, no score given): {', '.join(not_graded)}[/]"
        )
        raise typer.Exit(EXIT_FAULT)


@app.command()
def setup(
    for_tests: Annotated[
        bool, typer.Option("--for-tests", help="Also install what the test suite needs")
    ] = False,
) -> None:
    """Make this machine ready: a Docker engine (installed and started if none answers), the
    firewall rules, base images."""
    from grader import machine

    machine.setup(for_tests=for_tests, log=console.print)


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

    firewall.install(allow=allow, log=console.print)


@firewall_app.command("check")
def firewall_check() -> None:
    """Exit 0 when the rules are in place, 2 (with what is missing) when not."""
    from grader import firewall

    missing = firewall.check()
    for problem in missing:
        console.print(f"[red]missing:[/] {problem}")
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
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Grade the bundled examples: each assignment's reference solution, starter repo and samples."""
    from grader.assignment import SPECS_DIR, load
    from grader.pipeline import grade as run_grade

    ids = assignment or sorted(
        p.name for p in SPECS_DIR.iterdir() if (p / "assignment.yaml").is_file()
    )
    faults = 0
    for name in ids:
        spec = load(name)
        repo = spec.dir.parent.parent
        samples = [
            (kind, repo / kind / spec.id) for kind in ("reference_solution", "student_template")
        ]
        samples += sorted((p.name, p) for p in (spec.dir / "examples").glob("*") if p.is_dir())
        for sample, path in samples:
            if not path.is_dir():
                continue
            console.rule(f"{spec.id} · {sample}: {path}")
            result = run_grade(
                submission_path=path,
                assignment=spec.id,
                out=out / spec.id / sample,
                seed=seed,
                log=lambda msg: console.print(f"[dim]… {msg}[/]"),
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
        console.print(f"[yellow]the Docker engine failed: {engine.failure(exc)}[/]")
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
    python_tag: Annotated[
        str, typer.Option(help="Tag of the Python base image")
    ] = "python:3.11-slim",
    postgres_tag: Annotated[str, typer.Option(help="Tag of the Postgres image")] = "postgres:15",
    ca_bundle: Annotated[
        Path | None, typer.Option(help="CA bundle to trust inside the images (default: the host's)")
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            help="Debian mirror URL (default: the first "
            "archive of the suite in this machine's APT sources)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if the images exist")] = False,
) -> None:
    """Build the base images from Debian's archive (debootstrap + docker import), no registry needed."""
    from grader import offline

    built = offline.build_offline_images(
        python_tag=python_tag,
        postgres_tag=postgres_tag,
        ca_bundle=ca_bundle or offline.DEFAULT_CA_BUNDLE,
        mirror=mirror,
        force=force,
        log=console.print,
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
    seed: Annotated[int, typer.Option(help="Fuzzing seed every submission is graded with")] = 0,
) -> None:
    """Write the autograder zip Gradescope expects: setup.sh, run_autograder, grader, spec, reference.
    Gradescope has no Docker engine: submissions are graded in local mode."""
    from grader import gradescope

    path = gradescope.bundle(assignment=assignment, out=out, seed=seed)
    console.print(f"wrote {path}: upload it as the assignment's autograder (Ubuntu base image)")


def main() -> None:
    """The `grader` command. A grader fault (the grader or its machine failed, never the student)
    maps to its exit code here, once, whichever command raised it."""
    try:
        app()
    except GraderFault as exc:
        console.print(f"[bold yellow]not done, the grader's fault:[/] {exc}", highlight=False)
        raise SystemExit(EXIT_FAULT) from None


if __name__ == "__main__":
    main()
