import asyncio

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import text

from app import db
from app.responses import errors
from app.schemas import HealthOut

router = APIRouter(tags=["health"])

HEALTH_TIMEOUT = 5.0  # seconds, connection included


@router.get("/health", response_model=HealthOut, responses=errors(503))
async def health() -> HealthOut:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT), db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # unreachable, refused, timed out, wrong password: all "unavailable"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Database unavailable") from exc
    return HealthOut(status="ok")
