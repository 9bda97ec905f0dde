"""Row 1: GET /health."""

import pytest

from grader.testing import expect_equal, expect_json, expect_status

pytestmark = pytest.mark.rubric("health")


def test_health_answers_status_ok(client):
    """GET /health must answer 200 with the JSON body {"status": "ok"}."""
    r = client.get("/health")
    expect_status(r, 200)
    body = expect_json(r)
    expect_equal(
        body.get("status") if isinstance(body, dict) else body, "ok", "GET /health body: status"
    )
