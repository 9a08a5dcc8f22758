"""The PostgreSQL image on a real engine: password rotation and resumable initialisation.

The container runs as in the StatefulSet: read-only root, the password a read-only mounted
file, the data directory a volume, ``/tmp`` and the socket directory scratch space. The
host's ``psql`` connects over TCP with a password, as the store API does.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from hardened_k8s.build import build_spec

from ..tiers import unavailable
from ..waiting import wait_until
from .engine import BASE_IMAGE, REGISTRY, REPO_ROOT, Harness, ensure_base_image, free_port, missing_tools

pytestmark = pytest.mark.image

USER, DB = "store", "store_db"
SECRETS = "/etc/secrets/credentials"
PGDATA = "/var/lib/postgresql/data/pgdata"


class EngineOnly(Harness):
    """The tier's engine and local base image without its registry: these tests push nothing,
    so they need not wait for the machine-wide registry another run may hold."""

    def __enter__(self) -> EngineOnly:
        try:
            self._start_engine()
            ensure_base_image(self.client)
        except BaseException:
            self.close()
            raise
        return self


@pytest.fixture(scope="module")
def engine() -> Iterator[Harness]:
    missing = missing_tools()
    if missing:
        unavailable("image", "missing " + ", ".join(missing) + "; scripts/ci-image-deps.sh installs them")
    if not os.environ.get("DOCKER_HOST") and os.geteuid() != 0:
        unavailable("image", "starting dockerd needs root (or set DOCKER_HOST)")
    with EngineOnly() as h:
        yield h


@pytest.fixture(scope="module")
def db_image(engine: Harness) -> str:
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
    return engine.build(spec).image_id


@dataclass
class Database:
    """One data volume and password directory, started and stopped as the tests need."""

    harness: Harness
    image: str
    secrets: Path
    volume: str
    port: int
    container: Any = None
    tls_dir: Path | None = None
    """Mounted at /etc/secrets/tls and named by POSTGRES_TLS_DIR when set."""

    def set_password(self, value: str) -> None:
        """Replace the file atomically, as the kubelet swaps a Secret volume's files."""
        staged = self.secrets / ".password.new"
        staged.write_text(value)
        staged.chmod(0o444)
        staged.replace(self.secrets / "password")

    def start(self, *args: str, **env: str) -> Any:
        volumes = {
            self.volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
            str(self.secrets): {"bind": SECRETS, "mode": "ro"},
        }
        if self.tls_dir is not None:
            volumes[str(self.tls_dir)] = {"bind": "/etc/secrets/tls", "mode": "ro"}
            env = {"POSTGRES_TLS_DIR": "/etc/secrets/tls", **env}
        self.container = self.harness.run(
            self.image,
            list(args) or None,
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
            volumes=volumes,
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

    def connects(self, password: str, database: str = DB, **params: str) -> bool:
        """A TCP session with ``password``, as a client of the Service has (libpq ``params``
        such as ``sslmode`` added to the connection string)."""
        fields = {"host": "127.0.0.1", "port": str(self.port), "user": USER, "dbname": database, **params}
        proc = subprocess.run(
            ["psql", "-X", " ".join(f"{k}={v}" for k, v in fields.items()), "-tAc", "SELECT 1"],
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
def database(engine: Harness, db_image: str, tmp_path: Path) -> Iterator[Database]:
    secrets = tmp_path / "credentials"
    secrets.mkdir()
    secrets.chmod(0o755)
    volume = f"hk8s-pgdata-{uuid.uuid4().hex[:8]}"
    engine.client.volumes.create(volume)
    db = Database(engine, db_image, secrets, volume, free_port())
    db.set_password("first-Pa55")
    try:
        yield db
    finally:
        db.stop()
        engine.client.volumes.get(volume).remove(force=True)


def test_a_rotated_password_reaches_the_running_server(database: Database) -> None:
    database.start()
    database.wait_ready()
    assert database.connects("first-Pa55")
    database.set_password("second-Pa55 with 'quote'")
    wait_until("the new password works", lambda: database.connects("second-Pa55 with 'quote'"), 20)
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


def test_a_port_given_to_the_server_alone_is_refused(database: Database) -> None:
    # The entrypoint's own sessions find the server by PGPORT; "-p" alone would leave them
    # waiting for a socket that never appears while clients see no database.
    container = database.start("-p", str(database.port))
    assert container.wait(timeout=60)["StatusCode"] == 64
    assert "PGPORT" in database.logs()


def test_a_volume_of_another_user_fails_loudly(database: Database) -> None:
    database.start()
    database.wait_ready()
    database.stop()
    container = database.start(POSTGRES_USER="someone_else")
    assert container.wait(timeout=60)["StatusCode"] == 65
    assert "initialised for another POSTGRES_USER" in database.logs()


# -- the store API (in this process) against the real database container --------------------

STORE_API = REPO_ROOT / "services" / "store-api"


def store_app(url_file: Path, **overrides: Any) -> Any:
    if str(STORE_API) not in sys.path:
        sys.path.insert(0, str(STORE_API))
    settings = importlib.import_module("store_api.settings").Settings(
        **{
            "database_url": url_file.read_text().strip(),
            "database_url_file": str(url_file),
            "host": "127.0.0.1",
            "port": 8000,
            "pool_max_size": 4,
            "connect_timeout": 1.0,
            "command_timeout": 5.0,
            "migration_timeout": 30.0,
            **overrides,
        }
    )
    return importlib.import_module("store_api.app").create_app(settings)


def write_url(url_file: Path, database: Database, password: str) -> None:
    staged = url_file.with_suffix(".new")
    staged.write_text(f"postgresql://{USER}:{quote(password, safe='')}@127.0.0.1:{database.port}/{DB}\n")
    staged.replace(url_file)


@asynccontextmanager
async def api(app: Any) -> AsyncIterator[httpx2.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://store", timeout=30) as c:
            deadline = time.monotonic() + 60
            while (await c.get("/ready")).status_code != 200:
                assert time.monotonic() < deadline, "the API never became ready"
                await asyncio.sleep(0.2)
            yield c


def test_rotation_under_a_request_stream_fails_no_request(database: Database, tmp_path: Path) -> None:
    """The order a cluster gives: the Secret changes, the database's file is updated (and
    applied within a second), the API's file a few seconds later. Requests keep flowing."""
    database.start()
    database.wait_ready()
    url_file = tmp_path / "DATABASE_URL"
    write_url(url_file, database, "first-Pa55")
    failures: list[str] = []
    answered = 0

    async def main() -> None:
        nonlocal answered
        async with api(store_app(url_file)) as c:
            created = await c.post("/products", json={"sku": "rot-1", "name": "R", "price_cents": 1})
            assert created.status_code == 201, created.text
            pid = created.json()["id"]
            stop = asyncio.Event()

            async def stream() -> None:
                nonlocal answered
                while not stop.is_set():
                    for r in (
                        await c.get(f"/products/{pid}"),
                        await c.post(f"/products/{pid}/stock", json={"delta": 1}),
                    ):
                        answered += 1
                        if r.status_code != 200:
                            failures.append(
                                f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
                            )
                    await asyncio.sleep(0.02)

            workers = [asyncio.create_task(stream()) for _ in range(4)]
            await asyncio.sleep(1)
            database.set_password("second-Pa55")
            await asyncio.to_thread(
                wait_until, "database applies it", lambda: database.connects("second-Pa55"), 20
            )
            await asyncio.sleep(1)
            # The window: PostgreSQL refuses the password of the API's file. The replica serves on
            # its pooled connections and stays ready, saying so.
            during = await c.get("/ready")
            assert during.status_code == 200, during.text
            assert during.json()["database"].startswith("password refused; serving on "), during.json()
            await asyncio.sleep(2)
            write_url(url_file, database, "second-Pa55")
            await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(*workers)
            # New connections use the new password.
            ready = await c.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["database"] == "ok", ready.json()

    asyncio.run(main())
    assert failures == [], failures[:5]
    assert answered > 100, answered
    assert not database.connects("first-Pa55"), "the old password still works"


def test_a_burst_larger_than_the_pool_fails_nothing_and_stays_ready(
    database: Database, tmp_path: Path
) -> None:
    database.start()
    database.wait_ready()
    url_file = tmp_path / "DATABASE_URL"
    write_url(url_file, database, "first-Pa55")

    async def main() -> tuple[list[int], list[int]]:
        async with api(store_app(url_file, pool_max_size=2)) as c:
            burst = [c.get("/products?limit=50") for _ in range(60)]
            probes = []
            for _ in range(5):
                probes.append(c.get("/ready"))
            answers = await asyncio.gather(*burst, *probes)
            return [a.status_code for a in answers[:60]], [a.status_code for a in answers[60:]]

    burst, probes = asyncio.run(main())
    assert burst == [200] * 60, burst
    assert probes == [200] * 5, probes


def test_a_stock_change_past_the_column_is_422_naming_delta(database: Database, tmp_path: Path) -> None:
    database.start()
    database.wait_ready()
    url_file = tmp_path / "DATABASE_URL"
    write_url(url_file, database, "first-Pa55")

    async def main() -> None:
        async with api(store_app(url_file)) as c:
            top = 2**31 - 1
            created = await c.post(
                "/products", json={"sku": "full", "name": "F", "price_cents": 1, "quantity": top - 1}
            )
            pid = created.json()["id"]
            inside = await c.post(f"/products/{pid}/stock", json={"delta": 1})
            assert inside.status_code == 200 and inside.json()["quantity"] == top, inside.text
            outside = await c.post(f"/products/{pid}/stock", json={"delta": 1})
            assert outside.status_code == 422, outside.text
            assert outside.json()["detail"][0]["loc"] == ["body", "delta"]

    asyncio.run(main())


def make_certificates(directory: Path) -> Path:
    """A CA and a server certificate for ``localhost`` signed by it, as cert-manager would
    write a kubernetes.io/tls Secret: ``tls.crt``, ``tls.key`` (the server's) and ``ca.crt``."""
    directory.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=test database CA")  # fmt: skip
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        "/CN=localhost",
    )
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tls.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    # PostgreSQL refuses a key others can read: the image's user owns it, mode 0600.
    os.chown(directory / "tls.key", 10002, 10002)
    (directory / "tls.key").chmod(0o600)
    (directory / "tls.crt").chmod(0o644)
    directory.chmod(0o755)
    return directory / "ca.crt"


def test_tls_verify_full_with_the_ca_and_no_connection_without_tls(
    database: Database, tmp_path: Path
) -> None:
    ca = make_certificates(tmp_path / "tls")
    database.tls_dir = tmp_path / "tls"
    database.start()
    database.wait_ready()
    assert database.connects("first-Pa55", host="localhost", sslmode="verify-full", sslrootcert=str(ca))
    assert not database.connects("first-Pa55", host="localhost", sslmode="disable"), (
        "plain TCP must be refused"
    )
    # verify-full checks the name: 127.0.0.1 is not in the certificate.
    assert not database.connects("first-Pa55", host="127.0.0.1", sslmode="verify-full", sslrootcert=str(ca))
    # The store API's driver with the URL the stack renders (sslrootcert in the query).
    asyncpg = importlib.import_module("asyncpg")

    async def select_one() -> int:
        url = f"postgresql://{USER}:first-Pa55@localhost:{database.port}/{DB}?sslmode=verify-full&sslrootcert={ca}"
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    assert asyncio.run(select_one()) == 1
