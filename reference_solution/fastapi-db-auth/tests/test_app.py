import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, start_app, wait_for

# Every operation of the assignment and the status codes its OpenAPI document must declare.
CONTRACT = {
    ("get", "/health"): {200, 503},
    ("post", "/users/"): {201, 400, 422},
    ("get", "/users/"): {200, 422},
    ("get", "/users/{user_id}"): {200, 404, 422},
    ("post", "/token"): {200, 401, 422},
    ("get", "/users/me"): {200, 401},
    ("get", "/users/me/basic"): {200, 401},
    ("get", "/users/me/items/"): {200, 401},
    ("post", "/users/{user_id}/items/"): {201, 401, 403, 404, 422},
    ("get", "/items/"): {200, 422},
    ("get", "/items/{item_id}"): {200, 404, 422},
    ("patch", "/items/{item_id}"): {200, 401, 403, 404, 422},
    ("delete", "/items/{item_id}"): {204, 401, 403, 404, 422},
}


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_declares_the_contract(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for (method, path), codes in CONTRACT.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing"
        declared = {int(code) for code in paths[path][method]["responses"]}
        assert codes <= declared, f"{method.upper()} {path}: {codes - declared} not declared"


def test_no_response_mentions_passwords(client: httpx.Client) -> None:
    assert "hashed_password" not in client.get("/openapi.json").text.replace('"password"', "")


def test_health_503_when_database_unreachable(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    port = free_port()
    env = {
        "DATABASE_URL": f"postgresql://nobody:secret@127.0.0.1:{closed}/nothing",
        "SECRET_KEY": "x",
    }
    process = start_app(env, port, subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/openapi.json", process)
        started = time.monotonic()
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert response.status_code == 503
        assert "detail" in response.json()
        assert time.monotonic() - started < 6
    finally:
        process.terminate()
        process.wait(timeout=15)
