"""The grader reaches an app by its IP only from the app network's gateway address: when that
network disappears, a request cannot leave by any other interface."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import httpx
import pytest
from docker import DockerClient

from grader import appclient, build, engine, run, services
from grader.assignment import Runtime, load
from grader.core import Guard

pytestmark = pytest.mark.docker

PEER = textwrap.dedent("""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # health and everything else: who is asking
            body = json.dumps({"peer": self.client_address[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
""")


def test_requests_leave_from_the_gateway_and_die_with_the_network(
    mini: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    (tmp_path / "app.py").write_text(PEER)
    (tmp_path / "Dockerfile").write_text(
        'FROM python:3.11-slim\nCOPY app.py .\nCMD ["python", "app.py"]\n'
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    labels = engine.labels(run_id)
    try:
        built = build.build_image(
            docker_client, tmp_path, tag=f"api-grader-sub:{run_id}", labels=labels, timeout=120
        )
        assert built.ok, built.log
        svc = services.start(docker_client, load(mini), labels=labels)
        started = run.start_app(
            docker_client,
            f"api-grader-sub:{run_id}",
            runtime=Runtime(start_deadline=20),
            env={},
            network=svc.network.name,
            labels=labels,
        )
        assert started.app is not None and not started.reason, started.reason
        target = started.app.target({}, None)
        gateway = docker_client.networks.get(svc.network.name).attrs["IPAM"]["Config"][0]["Gateway"]
        assert target.local_address == gateway
        with appclient.client(target.guard, target.local_address, base_url=target.base_url) as http:
            assert http.get("/who").json() == {"peer": gateway}
        started.app.stop()
        svc.stop()  # the network and its gateway address are gone
        with (
            appclient.client(
                Guard(origin=target.base_url),
                target.local_address,
                base_url=target.base_url,
                timeout=2,
            ) as http,
            pytest.raises(httpx.ConnectError, match="assign"),
        ):
            http.get("/who")
    finally:
        engine.cleanup(docker_client, run_id)
    assert not engine.leftovers(docker_client, runs=[run_id])
