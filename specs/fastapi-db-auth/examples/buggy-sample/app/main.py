"""The application: `uvicorn app.main:app`. Migrations run before it starts (see the Dockerfile)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from app import db
from app.routers import auth, health, items, users


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await db.engine.dispose()


app = FastAPI(title="Users & Items", version="1.0.0", lifespan=lifespan)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": "Database unavailable"}
    )


# Losing the database mid-request is the server's trouble, but say so plainly rather than a bare 500.
for error in (OperationalError, InterfaceError, ConnectionError, TimeoutError):
    app.add_exception_handler(error, database_unavailable)

app.include_router(health.router)
app.include_router(auth.router)
app.include_router(users.router)
app.include_router(items.router)
