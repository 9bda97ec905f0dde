from fastapi import APIRouter, HTTPException
from sqlalchemy import text

from app import db
from app.responses import errors
from app.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses=errors(503))
def health() -> HealthOut:
    try:
        with db.engine.connect() as connection:  # connect_timeout=3 s (see app/db.py)
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(503, "Database unavailable") from exc
    return HealthOut()
