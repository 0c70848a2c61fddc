"""compose.yaml cannot run here (no Docker engine); check that it parses and is complete."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_names_every_service_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "ollama", "gateway", "worker", "flower"} <= services.keys()
    for name in ("postgres", "redis", "ollama", "gateway"):
        assert "healthcheck" in services[name], name
    for name in ("gateway", "worker", "flower"):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
    assert "pgvector" in services["postgres"]["image"]
    assert "--appendonly" in " ".join(map(str, services["redis"]["command"]))


def test_procfile_runs_gateway_worker_and_flower() -> None:
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert "uvicorn gateway.app:app" in lines["gateway"]
    assert "celery -A workers.app worker" in lines["worker"]
    assert "celery -A workers.app flower" in lines["flower"]
    assert "--basic-auth" in lines["flower"]
