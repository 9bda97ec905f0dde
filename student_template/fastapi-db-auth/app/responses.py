"""Error responses to declare in the OpenAPI document: every error body is `{"detail": ...}`."""

from typing import Any

from app.schemas import ErrorOut


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Use as `@router.get(..., responses=errors(401, 404))` so /openapi.json lists those codes."""
    return {code: {"model": ErrorOut} for code in codes}
