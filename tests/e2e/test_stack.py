"""The rendered dev stack runs: MCP -> API -> PostgreSQL, each pod under its exact spec.

Tests share one running stack (module fixture) and run in file order; the restart and
SIGTERM tests come last because they stop containers.
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest

from ..image.engine import ARBITRARY_UID
from .podman import wait_for
from .stack import API, DB, MCP, RACE_REPLICAS, RunningStack

pytestmark = pytest.mark.e2e

WRITABLE_CANDIDATES = (
    "/",
    "/etc",
    "/usr",
    "/var",
    "/opt",
    "/app",
    "/home",
    "/root",
    "/srv",
    "/var/lib",
    "/var/tmp",
)


def http(
    url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None, timeout: float = 10
) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, body.decode(errors="replace")


def every_pod(stack: RunningStack) -> list[tuple[str, str]]:
    return [(w, p) for w, wl in stack.workloads.items() for p in wl.pods]


# -- the pods run under their rendered security context ------------------------------------------
def test_every_workload_runs(stack: RunningStack) -> None:
    assert set(stack.workloads) == {API, MCP, DB}
    print(f"\nkube play -> all {len(every_pod(stack))} pods Ready: {stack.ready_seconds:.1f}s")


@pytest.mark.parametrize("workload", [API, MCP, DB])
def test_containers_run_as_rendered(stack: RunningStack, workload: str) -> None:
    w = stack.workloads[workload]
    sc = w.container_spec["securityContext"]
    for pod in w.pods:
        container = w.container(pod)
        code, status = stack.cluster.exec(container, "cat", "/proc/1/status")
        assert code == 0, status
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = fields["Uid"].split()
        gids = fields["Gid"].split()
        assert uids == [str(sc["runAsUser"])] * 4, f"{container}: Uid {uids}"
        assert int(uids[0]) >= 10000 and int(gids[0]) >= 10000, f"{container}: Uid {uids} Gid {gids}"
        assert gids == [str(sc["runAsGroup"])] * 4, f"{container}: Gid {gids}"
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(fields[cap].strip(), 16) == 0, f"{container}: {cap} {fields[cap].strip()}"
        assert fields["NoNewPrivs"].strip() == "1", f"{container}: privilege escalation possible"
        assert fields["Seccomp"].strip() == "2", f"{container}: no seccomp filter"


@pytest.mark.parametrize("workload", [API, MCP, DB])
def test_only_rendered_volumes_are_writable(stack: RunningStack, workload: str) -> None:
    w = stack.workloads[workload]
    assert w.container_spec["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = [m["mountPath"] for m in w.container_spec.get("volumeMounts", [])]
    probe = " ".join([*WRITABLE_CANDIDATES, *mounts])
    script = f'for d in {probe}; do if touch "$d/.w" 2>/dev/null; then rm -f "$d/.w"; echo "$d"; fi; done'
    code, out = stack.cluster.exec(w.container(w.pods[0]), "sh", "-c", script)
    assert code == 0, out
    writable = set(out.split())
    # Only rendered volumes are writable (podman mounts some emptyDirs root-owned 0755, where
    # Kubernetes makes them 0777, so a rendered one may be read-only here; never the reverse).
    assert writable <= set(mounts), f"writable outside the rendered volumes: {sorted(writable - set(mounts))}"
    assert "/tmp" in writable or "/tmp" not in mounts, "the /tmp emptyDir is writable"


@pytest.mark.parametrize("kind", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_rendered_probes_pass(stack: RunningStack, kind: str) -> None:
    for workload, pod in every_pod(stack):
        result = stack.run_probe(workload, pod, kind)
        assert result.ok, f"{kind} of {pod}: {result.detail}"


@pytest.mark.parametrize(
    ("workload", "variable", "secret"),
    [
        (API, "DATABASE_URL_FILE", f"{DB}-url"),
        (MCP, "AUTH_TOKEN_FILE", f"{MCP}-auth"),
        (DB, "POSTGRES_PASSWORD_FILE", f"{DB}-credentials"),
    ],
)
def test_secrets_are_read_only_files_not_environment(
    stack: RunningStack, workload: str, variable: str, secret: str
) -> None:
    """The container reads its secret from a read-only file of the Secret's volume; no
    variable of the running process holds a secret, only the file's path."""
    w = stack.workloads[workload]
    spec = w.container_spec
    path = next(e["value"] for e in spec["env"] if e["name"] == variable)
    volumes = {v["name"]: v for v in w.pod_spec["volumes"]}
    (mount,) = [m for m in spec["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert volumes[mount["name"]]["secret"]["secretName"] == secret and mount["readOnly"] is True
    container = w.container(w.pods[0])
    script = (
        f'test -r "${variable}" && test -s "${variable}" && echo readable; '
        f'if (: >> "${variable}") 2>/dev/null; then echo writable; fi; '
        f'if touch "$(dirname "${variable}")/.w" 2>/dev/null; then echo dir-writable; fi'
    )
    code, out = stack.cluster.exec(container, "sh", "-c", script)
    assert code == 0 and out.split() == ["readable"], out
    # PID 1's environment (what the server and its children inherit) has no secret in it.
    code, environ = stack.cluster.exec(container, "cat", "/proc/1/environ")
    assert code == 0
    names = {entry.split("=", 1)[0] for entry in environ.split("\0") if entry}
    assert variable in names
    assert not names & {"DATABASE_URL", "AUTH_TOKEN", "POSTGRES_PASSWORD", "PGPASSWORD"}, names
    for value in (stack.generated.database_password, stack.generated.auth_token):
        assert value not in environ


# -- migrations: several replicas, one schema ---------------------------------------------------
def test_schema_created_exactly_once(stack: RunningStack) -> None:
    rows = stack.psql("SELECT version, applied_by FROM schema_migrations ORDER BY version")
    assert len(rows.splitlines()) == 1 and rows.startswith("1|"), rows


def test_replicas_starting_at_once_migrate_exactly_once(stack: RunningStack) -> None:
    """Several API containers (the rendered image, UID and env) start at once on an empty database."""
    api = stack.workloads[API].container_spec
    owner = stack.run_config_database()["user"]
    stack.psql(f'CREATE DATABASE race OWNER "{owner}"')
    url = f"postgresql://{owner}:{quote(stack.generated.database_password, safe='')}@{DB}:5432/race"
    names = [f"race-{i}" for i in range(RACE_REPLICAS)]
    uid = str(api["securityContext"]["runAsUser"])
    argv = [
        "run", "--detach", "--network", stack.cluster.name, "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--user", f"{uid}:{uid}", "--tmpfs", "/tmp",
        "--env", "DATABASE_URL", "--env", f"PORT={api['ports'][0]['containerPort']}",
    ]  # fmt: skip
    threads = [
        threading.Thread(
            target=stack.cluster.podman,
            args=(*argv, "--name", n, api["image"]),
            kwargs={"env": {"DATABASE_URL": url}},
        )
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:

        def settled() -> list[str] | None:
            logs = [stack.cluster.logs(n) for n in names]
            done = all("schema migrations applied" in log or "schema up to date" in log for log in logs)
            return logs if done else None

        try:
            logs = wait_for("every replica migrated", settled, 90)
        except AssertionError as exc:
            tails = "\n".join(f"--- {n}\n{stack.cluster.logs(n)[-1500:]}" for n in names)
            raise AssertionError(f"{exc}\n{tails}") from None
        assert sum("schema migrations applied: 1" in log for log in logs) == 1, logs
        assert sum("schema up to date" in log for log in logs) == RACE_REPLICAS - 1, logs
        assert "already exists" not in "".join(logs)
        rows = stack.cluster.ns_run(
            ["psql", "--no-psqlrc", "-At", "-h", stack.ip(stack.workloads[DB].pods[0]), "-U", owner,
             "-d", "race", "-c", "SELECT count(*) FROM schema_migrations"],
            env={"PGPASSWORD": stack.generated.database_password},
        ).strip()  # fmt: skip
        assert rows == "1"
    finally:
        stack.cluster.podman("rm", "--force", *names, check=False)


def test_postgresql_runs_as_an_arbitrary_uid_in_group_0(stack: RunningStack) -> None:
    """The rendered database image under restricted-v2's terms: another UID in group 0, a
    read-only root, a fresh data volume, the password as a mounted file."""
    image = stack.workloads[DB].container_spec["image"]
    name, secret = "pg-arbitrary-uid", "pg-arbitrary-uid-password"
    password = secrets.token_urlsafe(18)
    subprocess.run(
        stack.cluster.podman_argv("secret", "create", secret, "-"),
        input=password, text=True, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        stack.cluster.podman(
            "run", "--detach", "--name", name, "--network", "none", "--read-only",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--user", f"{ARBITRARY_UID}:0", "--tmpfs", "/tmp", "--tmpfs", "/var/run/postgresql",
            "--volume", "/var/lib/postgresql/data",
            "--secret", f"{secret},type=mount,target=/etc/secrets/credentials/password,mode=0440,gid=0",
            "--env", "POSTGRES_USER=owner", "--env", "POSTGRES_DB=store",
            "--env", "POSTGRES_PASSWORD_FILE=/etc/secrets/credentials/password",
            image,
        )  # fmt: skip

        def ready() -> bool:
            return stack.cluster.exec(name, "pg_isready", "-h", "127.0.0.1", "-p", "5432")[0] == 0

        try:
            wait_for("PostgreSQL ready as an arbitrary UID", ready, 90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.cluster.logs(name)[-2000:]}") from None
        out = stack.cluster.podman(
            "exec", "--env", "PGPASSWORD", name, "psql", "--no-psqlrc", "-At", "-h", "127.0.0.1",
            "-U", "owner", "-d", "store",
            "-c", "SELECT current_database(), current_setting('data_directory')",
            env={"PGPASSWORD": password},
        ).strip()  # fmt: skip
        assert out == "store|/var/lib/postgresql/data/pgdata", out
        code, ids = stack.cluster.exec(
            name, "sh", "-c", "id -u; id -g; stat -c %u /var/lib/postgresql/data/pgdata"
        )
        assert code == 0 and ids.split() == [ARBITRARY_UID, "0", ARBITRARY_UID], ids
        assert password not in stack.cluster.logs(name)
    finally:
        stack.cluster.podman("rm", "--force", "--volumes", name, check=False)
        stack.cluster.podman("secret", "rm", secret, check=False)


# -- MCP -> API -> PostgreSQL -----------------------------------------------------------------------
def test_mcp_tools_change_stock_in_postgresql(stack: RunningStack) -> None:
    sku = f"e2e-{int(time.time() * 1000)}"
    created, listed = stack.mcp(
        [
            ("create_product", {"sku": sku, "name": "Widget", "price_cents": 1250, "quantity": 5}),
            ("list_products", {"limit": 500}),
        ]
    )
    assert created["sku"] == sku and created["quantity"] == 5
    assert sku in [p["sku"] for p in listed]
    (changed,) = stack.mcp([("adjust_stock", {"product_id": created["id"], "delta": -3})])
    assert changed["quantity"] == 2
    assert stack.psql(f"SELECT quantity FROM products WHERE sku = '{sku}'") == "2"


def test_mcp_needs_the_bearer_token(stack: RunningStack) -> None:
    url = stack.base_url(MCP) + "/mcp"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    base = {
        "Host": stack.mcp_host,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": stack.generated.auth_token}):
        code, _ = stack.cluster.call(lambda a=auth: http(url, headers={**base, **a}, data=body))  # type: ignore[misc]
        assert code == 401
    with pytest.raises(Exception) as caught:  # the SDK's own error for an HTTP 401
        stack.mcp([("list_products", {})], token="not-the-token")
    text = "".join(traceback.format_exception(caught.value))  # causes and groups too
    assert "401" in text or "nauthori" in text, text[-3000:]
    assert stack.mcp([("list_products", {"limit": 1})])  # the right token works
    # Probes need no token.
    assert stack.cluster.call(lambda: http(stack.base_url(MCP) + "/health"))[0] == 200


def test_dns_rebinding_protection_is_on(stack: RunningStack) -> None:
    url = stack.base_url(MCP) + "/mcp"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    headers = {
        "Authorization": f"Bearer {stack.generated.auth_token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    code, _ = stack.cluster.call(
        lambda: http(url, headers={**headers, "Host": "attacker.example"}, data=body)
    )
    assert code in (403, 421), code
    code, _ = stack.cluster.call(
        lambda: http(
            url, headers={**headers, "Host": stack.mcp_host, "Origin": "https://attacker.example"}, data=body
        )
    )
    assert code == 403, code


def test_exposed_through_ingress_with_tls_only_from_the_controller(stack: RunningStack) -> None:
    ingress = stack.get("Ingress", MCP)
    assert ingress["spec"]["tls"] == [{"hosts": [stack.mcp_host], "secretName": f"{MCP}-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": MCP, "port": {"name": "http"}}
    policy = stack.get("NetworkPolicy", MCP)
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    env = {e["name"]: e.get("value") for e in stack.workloads[MCP].container_spec["env"]}
    assert stack.mcp_host in env["ALLOWED_HOSTS"].split(",")


def test_mcp_tool_call_latency(stack: RunningStack) -> None:
    """200 tool calls in one session (a bounded loop); p50/p95 printed for docs/benchmarks.md."""
    calls = [("list_products", {"limit": 10})] * 200
    started = time.monotonic()
    timings = stack.cluster.call(lambda: _timed_calls(stack, calls), timeout=600)
    total = time.monotonic() - started
    q = statistics.quantiles(timings, n=100)
    print(f"\n200 MCP tool calls: p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, total {total:.1f}s")
    assert len(timings) == 200


def _timed_calls(stack: RunningStack, calls: list[tuple[str, dict[str, Any]]]) -> list[float]:
    import asyncio

    from .stack import _mcp_session_timings

    return asyncio.run(
        _mcp_session_timings(stack.base_url(MCP) + "/mcp", stack.generated.auth_token, stack.mcp_host, calls)
    )


# -- failures: PostgreSQL restarts, SIGTERM ------------------------------------------------------
def test_postgresql_restart_drops_and_restores_readiness(stack: RunningStack) -> None:
    api, pod = stack.workloads[API], stack.workloads[API].pods[0]
    db = stack.workloads[DB]
    sku = f"survivor-{int(time.time())}"
    (kept,) = stack.mcp([("create_product", {"sku": sku, "name": "Kept", "price_cents": 1})])
    stack.cluster.podman("stop", "--time", "60", db.container(db.pods[0]))
    try:
        wait_for("API readiness drops", lambda: not stack.ready(API, pod), 30)
        started = time.monotonic()
        result = stack.run_probe(API, pod, "readinessProbe")
        assert (
            not result.ok
            and time.monotonic() - started < api.container_spec["readinessProbe"]["timeoutSeconds"]
        ), result
        assert stack.run_probe(API, pod, "livenessProbe").ok, "liveness must not depend on the database"
    finally:
        stack.cluster.podman("start", db.container(db.pods[0]))
    try:
        wait_for("API ready again", lambda: stack.ready(API, pod), 90)
    except AssertionError as exc:
        tails = "\n".join(
            f"--- {c}\n{stack.cluster.logs(c)[-2000:]}"
            for c in (db.container(db.pods[0]), api.container(pod))
        )
        raise AssertionError(f"{exc}\n{tails}") from None
    (again,) = stack.mcp([("get_product", {"product_id": kept["id"]})])
    assert again["sku"] == sku, "data lives on the volume"
    log = stack.cluster.logs(db.container(db.pods[0]))
    assert "received fast shutdown request" in log, log[-3000:]
    assert "database system was interrupted" not in log, "crash recovery after the stop"


def test_postgresql_sigterm_is_a_fast_shutdown(stack: RunningStack) -> None:
    """SIGTERM (what a kubelet sends) with the API's pooled connections open: PostgreSQL
    rolls back, disconnects them and exits 0 at once, instead of waiting for them ("smart"
    shutdown) until SIGKILL; the restart policy starts it again and the API recovers."""
    api, pod = stack.workloads[API], stack.workloads[API].pods[0]
    db = stack.workloads[DB]
    container = db.container(db.pods[0])
    sku = f"sigterm-{int(time.time())}"
    (kept,) = stack.mcp([("create_product", {"sku": sku, "name": "Kept", "price_cents": 1})])
    assert int(stack.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")) >= 2
    grace = int(db.pod_spec["terminationGracePeriodSeconds"])
    killed_at = time.time()
    stack.cluster.podman("kill", "--signal", "TERM", container)
    exits = wait_for("PostgreSQL exits", lambda: stack.cluster.exits(container, killed_at), grace + 10, 0.5)
    code, exited_at = exits[0]
    log = stack.cluster.logs(container)
    assert code == 0 and exited_at - killed_at < 10, (code, exited_at - killed_at, log[-3000:])
    assert log.count("received fast shutdown request") >= 2 and "smart shutdown" not in log, log[-3000:]
    try:
        wait_for("API ready again", lambda: stack.ready(API, pod), 90)
    except AssertionError as exc:
        tails = "\n".join(
            f"--- {c}\n{stack.cluster.logs(c)[-2000:]}" for c in (container, api.container(pod))
        )
        raise AssertionError(f"{exc}\n{tails}") from None
    (again,) = stack.mcp([("get_product", {"product_id": kept["id"]})])
    assert again["sku"] == sku


def _in_flight(stack: RunningStack, workload: str, request: Any) -> Any:
    """Hold a lock so ``request`` blocks in PostgreSQL, SIGTERM the container, release it."""
    w = stack.workloads[workload]
    container = w.container(w.pods[-1])
    db = stack.workloads[DB]
    config = stack.run_config_database()
    locker = subprocess.Popen(
        stack.cluster.podman_argv(
            "exec", "-i", "--env", "PGPASSWORD", db.container(db.pods[0]),
            "psql", "-h", "127.0.0.1", "-U", config["user"], "-d", config["database"],
            "-v", "ON_ERROR_STOP=1",
        ),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PGPASSWORD": stack.generated.database_password, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip
    assert locker.stdin is not None
    locker.stdin.write("BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
    locker.stdin.flush()
    time.sleep(1.5)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = request()
        except BaseException as exc:  # reported below, with the container's log
            outcome["error"] = "".join(traceback.format_exception(exc))[-3000:]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(1.5)
    grace = int(w.pod_spec["terminationGracePeriodSeconds"])
    killed_at = time.time()
    stack.cluster.podman("kill", "--signal", "TERM", container)
    time.sleep(2)
    assert thread.is_alive(), f"the request finished before the lock was released: {outcome}"
    locker.stdin.write("COMMIT;\n\\q\n")
    locker.stdin.flush()
    locker.wait(timeout=30)
    thread.join(timeout=30)
    # The Deployment's restartPolicy (Always) starts the container again right away, so its
    # exit is read from podman's events rather than waited for.
    exits = wait_for("the container exits", lambda: stack.cluster.exits(container, killed_at), grace + 10, 1)
    code, exited_at = exits[0]
    logs = stack.cluster.logs(container)[-3000:]
    assert "result" in outcome, f"in-flight request did not finish: {outcome.get('error')}\n{logs}"
    assert code == 0, f"exit status {code}\n{logs}"
    assert exited_at - killed_at < grace, f"exited after {exited_at - killed_at:.1f}s, grace {grace}s"
    return outcome["result"]


def test_sigterm_mcp_server_finishes_in_flight_call_and_exits_0(stack: RunningStack) -> None:
    (product,) = stack.mcp([("list_products", {"limit": 1})])
    result = _in_flight(stack, MCP, lambda: stack.mcp([("list_products", {"limit": 1})]))
    assert result[0] == product


def test_sigterm_api_finishes_in_flight_request_and_exits_0(stack: RunningStack) -> None:
    w = stack.workloads[API]
    url = f"http://{stack.ip(w.pods[-1])}:{w.ports['http']}/products?limit=1"
    code, body = _in_flight(stack, API, lambda: stack.cluster.call(lambda: http(url, timeout=30)))
    assert code == 200 and isinstance(body, list)
