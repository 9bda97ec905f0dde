"""Error responses declared in the OpenAPI document: every error body is `{"detail": ...}`."""

from typing import Any

from app.schemas import ErrorOut

DESCRIPTIONS = {
    400: "Bad request (e.g. a body that is not valid UTF-8: FastAPI's default answer)",
    401: "Not authenticated",
    403: "Not enough permissions",
    404: "Not found",
    503: "Database unavailable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}
