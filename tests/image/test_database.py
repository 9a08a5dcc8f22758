"""The PostgreSQL image on a real engine: password rotation and resumable initialisation.

The container runs as in the StatefulSet: read-only root, the password a read-only mounted
file, the data directory a volume, ``/tmp`` and the socket directory scratch space. The
host's ``psql`` connects over TCP with a password, as the store API does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hardened_k8s.build import build_spec

from .engine import BASE_IMAGE, REGISTRY, REPO_ROOT, Harness, free_port

pytestmark = pytest.mark.image

USER, DB = "store", "store_db"
SECRETS = "/etc/secrets/credentials"
PGDATA = "/var/lib/postgresql/data/pgdata"


@pytest.fixture(scope="module")
def db_image(harness: Harness) -> str:
    if shutil.which("psql") is None:
        pytest.skip("the host has no psql (Debian package postgresql-client)")
    spec = build_spec(
        "postgresql",
        context=REPO_ROOT / "database",
        registry=REGISTRY,
        version="0.1.0",
        revision="0" * 40,
        base_image=BASE_IMAGE,
    )
    return harness.build(spec).image_id


@dataclass
class Database:
    """One data volume and password directory, started and stopped as the tests need."""

    harness: Harness
    image: str
    secrets: Path
    volume: str
    port: int
    container: Any = None

    def set_password(self, value: str) -> None:
        """Replace the file atomically, as the kubelet swaps a Secret volume's files."""
        staged = self.secrets / ".password.new"
        staged.write_text(value)
        staged.chmod(0o444)
        staged.replace(self.secrets / "password")

    def start(self, **env: str) -> Any:
        self.container = self.harness.run(
            self.image,
            environment={
                "PGPORT": str(self.port),
                "POSTGRES_USER": USER,
                "POSTGRES_DB": DB,
                "POSTGRES_PASSWORD_FILE": f"{SECRETS}/password",
                "PGDATA": PGDATA,
                "PASSWORD_CHECK_SECONDS": "1",
                **env,
            },
            user="10002:10002",
            read_only=True,
            tmpfs={"/tmp": "mode=1777", "/var/run/postgresql": "mode=1777"},
            volumes={
                self.volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
                str(self.secrets): {"bind": SECRETS, "mode": "ro"},
            },
        )
        return self.container

    def stop(self, *, kill: bool = False) -> None:
        if self.container is None:
            return
        if kill:
            self.container.kill()
        else:
            self.container.stop(timeout=30)
        self.container.wait(timeout=60)
        self.harness.remove(self.container)
        self.container = None

    def ready(self) -> bool:
        code, _ = self.container.exec_run(["postgres-ready"], environment={"PGPORT": str(self.port)})
        return bool(code == 0)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status == "exited":
                raise AssertionError("database exited:\n" + self.logs())
            if self.ready():
                return
            time.sleep(0.5)
        raise AssertionError("database not ready:\n" + self.logs())

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))

    def connects(self, password: str, database: str = DB) -> bool:
        """A TCP session with ``password``, as a client of the Service has."""
        proc = subprocess.run(
            [
                "psql",
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                database,
                "-tAc",
                "SELECT 1",
            ],
            env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"},
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.returncode == 0

    def sql(self, password: str, statement: str, database: str = "postgres") -> str:
        proc = subprocess.run(
            [
                "psql",
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                database,
                "-tAc",
                statement,
            ],
            env={**os.environ, "PGPASSWORD": password},
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip()

    def run_in_volume(self, script: str) -> None:
        """A shell script in a throwaway container on the data volume, as the image's user."""
        self.harness.output(
            self.image,
            ["sh", "-c", script],
            entrypoint=[],
            user="10002:10002",
            volumes={self.volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
        )


@pytest.fixture
def database(harness: Harness, db_image: str, tmp_path: Path) -> Iterator[Database]:
    secrets = tmp_path / "credentials"
    secrets.mkdir()
    secrets.chmod(0o755)
    volume = f"hk8s-pgdata-{uuid.uuid4().hex[:8]}"
    harness.client.volumes.create(volume)
    db = Database(harness, db_image, secrets, volume, free_port())
    db.set_password("first-Pa55")
    try:
        yield db
    finally:
        db.stop()
        harness.client.volumes.get(volume).remove(force=True)


def wait_for(what: str, check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def test_a_rotated_password_reaches_the_running_server(database: Database) -> None:
    database.start()
    database.wait_ready()
    assert database.connects("first-Pa55")
    database.set_password("second-Pa55 with 'quote'")
    wait_for("the new password works", lambda: database.connects("second-Pa55 with 'quote'"))
    assert not database.connects("first-Pa55"), "the old password still works"
    assert database.ready(), "readiness lost during the rotation"
    assert "second-Pa55" not in database.logs(), "the password reached the log"


def test_a_password_changed_while_stopped_is_applied_at_start(database: Database) -> None:
    database.start()
    database.wait_ready()
    database.stop()
    database.set_password("third-Pa55")
    database.start()
    database.wait_ready()
    assert database.connects("third-Pa55")
    assert not database.connects("first-Pa55")


def test_a_database_missing_after_a_partial_init_is_created_at_the_next_start(database: Database) -> None:
    """The container died after initdb but before CREATE DATABASE: the next start finishes."""
    database.start()
    database.wait_ready()
    database.sql("first-Pa55", f"DROP DATABASE {DB}")
    assert not database.ready(), "readiness must reflect that the application database is missing"
    database.stop()
    database.start()
    database.wait_ready()
    assert database.connects("first-Pa55")


def test_a_kill_at_any_point_of_the_first_start_is_repaired(database: Database) -> None:
    """Killed (SIGKILL, no shutdown) a little later each time during initialisation."""
    for delay in (0.3, 0.8, 1.5, 2.5):
        database.start()
        time.sleep(delay)
        database.stop(kill=True)
    database.start()
    database.wait_ready()
    assert database.connects("first-Pa55")
    assert database.sql("first-Pa55", "SELECT count(*) FROM pg_database WHERE datname = 'store_db'") == "1"


def test_a_left_over_data_directory_without_pg_version_fails_loudly(database: Database) -> None:
    database.run_in_volume(f"mkdir -p {PGDATA} && echo junk > {PGDATA}/postgresql.conf")
    container = database.start()
    assert container.wait(timeout=60)["StatusCode"] == 65
    assert "holds files but no PG_VERSION" in database.logs()
    assert "empty the volume" in database.logs()


def test_a_volume_of_another_user_fails_loudly(database: Database) -> None:
    database.start()
    database.wait_ready()
    database.stop()
    container = database.start(POSTGRES_USER="someone_else")
    assert container.wait(timeout=60)["StatusCode"] == 65
    assert "initialised for another POSTGRES_USER" in database.logs()
