"""The application: `uvicorn app.main:app`. Migrations run before it starts (see the Dockerfile)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import db
from app.routers import auth, health, items, users


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await db.engine.dispose()


app = FastAPI(title="Users & Items", version="0.1.0", lifespan=lifespan)

app.include_router(health.router)
app.include_router(auth.router)
app.include_router(users.router)
app.include_router(items.router)
