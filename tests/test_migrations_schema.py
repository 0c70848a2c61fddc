"""The migrations read no environment (issue 13, point 6): the vector column's dimension is
what the migrating command passes, and an EMBED_DIM in the environment changes nothing."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from common.dimension import column_dimension
from common.migrate import SchemaOptions, upgrade_head
from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from tests.processes import BIN

VERSIONS = Path(__file__).resolve().parent.parent / "common" / "migrations" / "versions"


def test_no_migration_imports_the_settings_or_the_environment() -> None:
    for path in sorted(VERSIONS.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {
            alias.name if isinstance(node, ast.Import) else f"{node.module}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert "common.settings" not in names and "os" not in names, path.name
        source = path.read_text()
        assert not re.search(r"get_settings\(|\benviron\b|\bgetenv\(", source), path.name


def test_the_dimension_is_what_the_command_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    try:
        monkeypatch.setenv("EMBED_DIM", "1024")  # must not matter
        url = pg.url.replace("postgresql://", "postgresql+psycopg://")
        upgrade_head(url, SchemaOptions(embed_dim=768, hnsw_m=8, hnsw_ef_construction=32))
        assert column_dimension(pg.url) == 768
        engine = create_engine(url)
        with engine.connect() as conn:
            index = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_chunks_embedding_hnsw'")
            ).scalar_one()
        engine.dispose()
        assert "m='8'" in index.replace(" ", "") and "ef_construction='32'" in index.replace(
            " ", ""
        )
    finally:
        pg.stop()


def test_eventsearch_migrate_passes_its_own_settings(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    try:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TMPDIR": str(tmp_path),
            "DATABASE_URL": pg.url,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "EMBEDDER": "ollama",
            "EMBED_MODEL": "nomic-embed-text",
            "EMBED_DIM": "768",
        }
        result = subprocess.run(
            [str(BIN / "eventsearch"), "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert column_dimension(pg.url) == 768
    finally:
        pg.stop()
