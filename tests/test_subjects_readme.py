"""The README's job-board flow (section "Subjects"), run command by command with bash and curl
against the test gateway, waiting for the worker after each post as a reader would."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import make_key, wait_for
from tests.processes import Gateway, Worker

README = Path(__file__).parent.parent / "README.md"


def commands() -> tuple[str, list[str]]:
    """The flow's shell function and its commands, continuation lines joined."""
    section = README.read_text().split("## Subjects: versions of one thing", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    joined: list[str] = []
    for line in block.splitlines():
        if joined and (joined[-1].endswith("\\") or joined[-1].count("'") % 2):
            joined[-1] = joined[-1] + "\n" + line
        elif line.strip() and not line.lstrip().startswith("#"):
            joined.append(line)
    return joined[0], joined[1:]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_readme_job_board_flow(gateway: Gateway, worker: Worker, db: Engine) -> None:
    tenant = f"readme-{uuid.uuid4().hex[:8]}"
    key = make_key(db, tenant)
    function, steps = commands()
    outputs = []
    for step in steps:
        script = f"AUTH='Authorization: Bearer {key}'\n{function}\n{step}"
        script = script.replace("localhost:8000", gateway.url.removeprefix("http://"))
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
        if step.startswith("post "):
            wait_for(lambda: not _queued(db, tenant), 60, "the worker caught up")
    searches = [json.loads(o) for o, s in zip(outputs, steps, strict=True) if "search?" in s]
    v2 = json.loads(outputs[1])["id"]
    assert [hit["id"] for hit in searches[0]["results"]] == [v2]
    assert searches[1]["results"] == []
    history = json.loads(outputs[3])
    assert [v["status"] for v in history["versions"]] == ["embedded", "superseded"]
    with db.connect() as conn:
        statuses = {r[0] for r in conn.execute(
            text("SELECT status FROM events WHERE tenant = :t"), {"t": tenant}
        )}  # fmt: skip
    assert statuses == {"deleted"}


def _queued(db: Engine, tenant: str) -> bool:
    with db.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT 1 FROM events WHERE tenant = :t AND status = 'queued'"), {"t": tenant}
            ).first()
        )
