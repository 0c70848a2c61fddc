"""compose.yaml cannot run here (no Docker engine); check that it parses and is complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


LONG_RUNNING = ("gateway", "worker", "flower", "postgres", "redis", "ollama")
STORES = ("postgres", "redis", "ollama")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return services


def test_compose_names_every_service_with_healthchecks() -> None:
    services = _services()
    assert set(LONG_RUNNING) <= services.keys()
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check["test"] and check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "pgvector" in services["postgres"]["image"]
    assert "--appendonly" in " ".join(map(str, services["redis"]["command"]))


def test_services_wait_for_healthy_stores_and_a_finished_migration() -> None:
    services = _services()
    wanted = {
        "gateway": {"postgres", "redis", "ollama", "migrate"},
        "worker": {"postgres", "redis", "ollama", "migrate"},
        "migrate": {"postgres", "redis"},
        "flower": {"redis"},  # Flower needs only the broker
    }
    for name, needs in wanted.items():
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        assert needs <= depends.keys(), name
        for store in needs & set(STORES):
            assert depends[store]["condition"] == "service_healthy", (name, store)
        if "migrate" in needs:
            assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_a_healthy_condition_names_a_service_with_a_healthcheck() -> None:
    # Compose would wait for ever on a service that never reports healthy.
    services = _services()
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)


def test_flower_waits_for_the_worker_started_not_healthy() -> None:
    # The dashboard is what an operator opens when the worker is sick.
    assert _services()["flower"]["depends_on"]["worker"]["condition"] == "service_started"


def test_flower_user_comes_from_flower_user_everywhere() -> None:
    flower = _services()["flower"]
    assert flower["environment"]["FLOWER_USER"] == "${FLOWER_USER:-admin}"
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_USER:-admin}:")
    procfile = (ROOT / "Procfile").read_text()
    assert 'FLOWER_BASIC_AUTH="${FLOWER_USER:-admin}:' in procfile
    assert Settings.model_fields["flower_user"].default == "admin"


def test_flower_password_is_never_on_a_command_line() -> None:
    # Issue 12, item 6: `ps` shows argv to every local user; Flower reads FLOWER_BASIC_AUTH.
    command = " ".join(_services()["flower"]["command"])
    assert "PASSWORD" not in command and "basic-auth" not in command
    flower = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )["flower"]
    words = flower.split('" ', 1)[1]  # what follows the FLOWER_BASIC_AUTH="..." assignment
    assert "PASSWORD" not in words and "basic-auth" not in words


def test_procfile_runs_gateway_worker_and_flower() -> None:
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert "python -m gateway.server" in lines["gateway"]
    assert "celery -A workers.app worker" in lines["worker"]
    assert "celery -A workers.app flower" in lines["flower"]
    assert "FLOWER_BASIC_AUTH=" in lines["flower"]


def test_compose_runs_the_guarded_server_on_loopback_only() -> None:
    """gateway/server.py applies the header limits; a proxy in front faces the network."""
    gateway = _services()["gateway"]
    assert "exec python -m gateway.server " in " ".join(gateway["command"])
    assert gateway["ports"] == ["127.0.0.1:8000:8000"]
