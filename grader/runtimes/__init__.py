"""Runtimes: how an app comes up for the checks (see base.py). `create` picks one by name."""

from __future__ import annotations

import logging
from typing import Any

from grader.core import GraderFault
from grader.runtimes.base import Runtime, RuntimeName, Started

__all__ = ["Runtime", "RuntimeName", "Started", "choose", "create"]
logger = logging.getLogger(__name__)


def choose(name: RuntimeName | str) -> str:
    """`name`, with "auto" resolved: Docker when an engine answers, else local (with a notice)."""
    if name != "auto":
        return name
    from grader import engine

    try:
        engine.connect(timeout=10)
    except GraderFault:
        logger.info(
            "no Docker engine answers: grading in local mode (the Dockerfile is not checked)"
        )
        return "local"
    return "docker"


def create(
    name: str,
    *,
    run_id: str | None = None,
    postgres_image: str | None = None,
    build_timeout: float = 600.0,
    no_cache: bool = False,
    isolate: bool = True,
    shield_host: bool = True,
    database_url: str | None = None,
    reference: bool = False,
) -> Runtime:
    """The runtime called `name` ("docker", "local" or "inprocess"; "auto" resolved by `choose`
    first), given the options it takes; the others do not apply to it."""
    if name == "docker":
        from grader.runtimes.docker import DockerRuntime

        options: dict[str, Any] = (
            {} if postgres_image is None else {"postgres_image": postgres_image}
        )
        return DockerRuntime(
            run_id=run_id,
            build_timeout=build_timeout,
            no_cache=no_cache,
            isolate=isolate,
            shield_host=shield_host,
            reference=reference,
            **options,
        )
    if name == "local":
        from grader.runtimes.local import LocalRuntime

        return LocalRuntime(
            database_url=database_url, build_timeout=build_timeout, reference=reference
        )
    if name == "inprocess":
        from grader.runtimes.inprocess import InProcessRuntime

        return InProcessRuntime(database_url=database_url, reference=reference)
    raise GraderFault(f"unknown runtime {name!r}: docker, local, inprocess or auto")
