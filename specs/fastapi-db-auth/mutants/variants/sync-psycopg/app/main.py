"""The application (sync SQLAlchemy): `uvicorn app.main:app` after `alembic upgrade head`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from app import db
from app.routers import auth, health, items, users


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    db.engine.dispose()


app = FastAPI(title="Users & Items", version="1.0.0", lifespan=lifespan)


@app.exception_handler(OperationalError)
@app.exception_handler(InterfaceError)
@app.exception_handler(ConnectionError)
@app.exception_handler(TimeoutError)
async def database_unavailable(_: Request, __: Exception) -> JSONResponse:
    return JSONResponse({"detail": "Database unavailable"}, status_code=503)


for router in (health.router, auth.router, users.router, items.router):
    app.include_router(router)
