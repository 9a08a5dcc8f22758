"""bench/load.py: targets only on loopback, bounded runs, and honest accounting.

The generator runs in this process against a small in-memory store API on a loopback port of
the test's own event loop: products with stock that never goes below 0 (409 naming the
product otherwise), so the accounting of accepted deltas can be checked against it.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import random
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load

# -- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.9.9.9:1/", "http://localhost:8000", "http://[::1]:8000"]
)
def test_loopback_targets_are_accepted(url: str) -> None:
    assert load.check_target(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "allow", "message"),
    [
        ("http://10.244.1.7:8000", False, "pod network; pass --allow-pod-network"),
        ("http://10.96.0.15:8000", False, "Service network; pass --allow-pod-network"),
        ("http://10.97.0.1:8000", True, "neither loopback nor in the pod network"),
        ("http://10.245.0.1:8000", True, "neither loopback nor in the pod network"),
        ("http://192.168.1.10:8000", True, "neither loopback nor in the pod network"),
        ("http://8.8.8.8", False, "neither loopback"),
        ("http://store-inventory:8000", True, "is a name"),
        ("ftp://127.0.0.1/", False, r"not an http\(s\) URL"),
    ],
)
def test_other_targets_are_refused(url: str, allow: bool, message: str) -> None:
    with pytest.raises(load.TargetRefusedError, match=message):
        load.check_target(url, allow_pod_network=allow)


def test_pod_network_needs_the_flag() -> None:
    assert load.check_target("http://10.244.3.4:8000", allow_pod_network=True) == "http://10.244.3.4:8000"


def test_service_network_needs_the_flag() -> None:
    assert load.check_target("http://10.96.12.9:8000/", allow_pod_network=True) == "http://10.96.12.9:8000"


def test_command_line_refuses_a_remote_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load.main(["--store-url", "http://93.184.216.34"])
    assert exit_info.value.code == 2
    assert "neither loopback" in capsys.readouterr().err


# -- arguments ---------------------------------------------------------------------------------


def test_mix_and_deltas_parse() -> None:
    assert load.parse_mix("get=3, adjust=1") == {"get": 3, "adjust": 1}
    assert load.parse_deltas("-4..3") == (-4, 3)
    with pytest.raises(ValueError, match="unknown operation 'delete'"):
        load.parse_mix("delete=1")
    with pytest.raises(ValueError, match="add up to more than 0"):
        load.parse_mix("get=0")
    with pytest.raises(ValueError, match=r"LOW\.\.HIGH"):
        load.parse_deltas("3")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"requests": 0}, "--requests"),
        ({"concurrency": 0}, "--concurrency"),
        ({"deadline": 0}, "--deadline"),
        ({"deadline": 10_000}, "--deadline"),
        ({"deltas": (3, -3)}, "--deltas"),
        ({"mcp_url": "http://127.0.0.1:8080/mcp"}, "bearer token"),
        ({"rate": 0}, "--rate"),
        ({"rate": -5.0}, "--rate"),
        ({"rate": 1e9}, "--rate"),
    ],
)
def test_config_bounds(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load.LoadConfig(store_urls=("http://127.0.0.1:1",), **overrides)


def test_percentiles() -> None:
    ms = load.percentiles([i / 1000 for i in range(1, 101)])
    assert ms["p50"] == pytest.approx(50.5) and ms["p99"] == pytest.approx(99.01)
    assert load.percentiles([0.002]) == {"p50": 2.0, "p95": 2.0, "p99": 2.0}


# -- runs against an in-memory store API -------------------------------------------------------


@dataclass
class MemoryStore:
    """The store API's product routes, in memory; ``delay`` seconds before every answer."""

    delay: float = 0.0
    port: int = 0
    stock: dict[int, int] = field(default_factory=dict)
    requests: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    """The headers of every request, names in lower case."""

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.split("?")[0].strip("/").split("/")
        if method == "POST" and parts == ["products"]:
            pid = len(self.stock) + 1
            self.stock[pid] = body["quantity"]
            return 201, {"id": pid, "quantity": body["quantity"]}
        if method == "GET" and parts == ["products"]:
            return 200, [{"id": p, "quantity": q} for p, q in list(self.stock.items())[:10]]
        pid = int(parts[1])
        if pid not in self.stock:
            return 404, {"detail": "product not found"}
        if method == "POST":
            if self.stock[pid] + body["delta"] < 0:
                return 409, {"detail": f"not enough stock of product {pid} for delta {body['delta']}"}
            self.stock[pid] += body["delta"]
        return 200, {"id": pid, "quantity": self.stock[pid]}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                method, path, _ = head[0].split(" ")
                length = next(
                    (int(h.split(":")[1]) for h in head if h.lower().startswith("content-length")), 0
                )
                body = json.loads(await reader.readexactly(length)) if length else {}
                self.requests += 1
                self.headers.append(
                    {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
                )
                if self.delay:
                    await asyncio.sleep(self.delay)
                status, answer = self.answer(method, path, body)
                data = json.dumps(answer).encode()
                head_out = (
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}"
                )
                writer.write(head_out.encode() + b"\r\n\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server closed with an answer pending (deadline)
        finally:
            writer.close()


@asynccontextmanager
async def memory_store(delay: float = 0.0, tls: ssl.SSLContext | None = None) -> AsyncIterator[MemoryStore]:
    store = MemoryStore(delay)
    server = await asyncio.start_server(store.handle, "127.0.0.1", 0, ssl=tls)
    store.port = server.sockets[0].getsockname()[1]
    async with server:
        yield store


def run_against_memory(delay: float = 0.0, **overrides: Any) -> tuple[Any, MemoryStore]:
    async def scenario() -> tuple[Any, MemoryStore]:
        async with memory_store(delay) as store:
            config = load.LoadConfig(store_urls=(f"http://127.0.0.1:{store.port}",), **overrides)
            return await load.run_load(config), store

    result: tuple[Any, MemoryStore] = asyncio.run(scenario())
    return result


def test_sends_exactly_the_requests_asked_with_the_mix() -> None:
    report, store = run_against_memory(requests=300, concurrency=6, products=5, seed=1)
    summary = report.summary()
    assert summary["completed"] == 300 and not report.errors, summary
    assert store.requests == 300 + 5 + 5, "the timed requests, five shared products, five read back"
    assert summary["stock"]["consistent"] is True, summary["stock"]
    for pid in report.products:
        assert summary["stock"]["products"][str(pid)]["final"] == store.stock[pid]
    assert set(summary["by_operation"]) == {"get", "list", "create", "adjust"}
    assert summary["throughput_per_s"] > 0 and summary["latency_ms"]["p99"] >= summary["latency_ms"]["p50"]


def test_accepted_deltas_add_up_and_refusals_name_the_product() -> None:
    report, store = run_against_memory(
        requests=400, concurrency=8, mix={"adjust": 1}, products=1, initial_stock=10, deltas=(-4, 3), seed=2
    )
    (pid,) = report.products
    assert report.refusals, "a draining mix from 10 units must be refused at some point"
    assert all(status == 409 and f"product {p}" in detail for p, status, detail in report.refusals)
    assert store.stock[pid] == 10 + report.accepted_deltas[pid] >= 0
    summary = report.summary()
    assert summary["refused"] == len(report.refusals) == len(summary["refusals"])
    assert summary["refusals"][0]["status"] == 409 and summary["refusals"][0]["product_id"] == pid
    assert summary["stock"]["products"][str(pid)] == {
        "accepted_delta": report.accepted_deltas[pid],
        "final": store.stock[pid],
    }
    assert summary["stock"]["consistent"] is True
    assert not report.errors


def test_stops_at_the_deadline_and_counts_what_it_did_not_do() -> None:
    report, _ = run_against_memory(delay=0.05, requests=1_000, concurrency=4, deadline=0.5, products=1)
    summary = report.summary()
    assert report.wall_seconds < 1.5, f"ran {report.wall_seconds:.2f}s past a 0.5s deadline"
    assert summary["completed"] < 1_000
    assert summary["completed"] + report.not_sent + report.cancelled == 1_000, summary
    assert report.errors["not sent (deadline)"] == report.not_sent > 0


def test_http_errors_are_counted_by_kind() -> None:
    async def scenario() -> Any:
        async with memory_store() as store:
            config = load.LoadConfig(store_urls=(f"http://127.0.0.1:{store.port}",), requests=20, products=1)
            original = store.answer

            def flaky(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
                if method == "GET" and store.requests % 2:
                    return 503, {"detail": "database unavailable"}
                return original(method, path, body)

            store.answer = flaky  # type: ignore[method-assign]
            return await load.run_load(config)

    report = asyncio.run(scenario())
    assert set(report.errors) == {"http 503"}, report.errors


# -- an Ingress host name mapped to loopback, over TLS with a CA of the test's own ---------------

INGRESS_HOST = "mcp.load.invalid"
"""A name that never resolves (RFC 6761 ``.invalid``): answered only through ``--connect-to``."""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mcp.example.com:443:127.0.0.1:8443", load.ConnectTo("mcp.example.com", 443, "127.0.0.1", 8443)),
        ("MCP.Example.com:443:[::1]:8443", load.ConnectTo("mcp.example.com", 443, "[::1]", 8443)),
        ("mcp.example.com:8443:localhost:1", load.ConnectTo("mcp.example.com", 8443, "localhost", 1)),
    ],
)
def test_connect_to_maps_a_host_to_loopback(text: str, expected: load.ConnectTo) -> None:
    assert load.parse_connect_to(text) == expected
    assert str(expected) == text.lower()


@pytest.mark.parametrize(
    ("text", "allow", "message"),
    [
        ("mcp.example.com:443:192.168.1.10:8443", True, "neither loopback nor in the pod network"),
        ("mcp.example.com:443:8.8.8.8:443", True, "neither loopback"),
        ("mcp.example.com:443:10.244.0.7:8080", False, "pass --allow-pod-network"),
        ("mcp.example.com:443:ingress.example.com:8443", True, "is a name"),
        ("mcp.example.com:443:127.0.0.1", False, "expected HOST:PORT:ADDR:PORT2"),
        ("mcp.example.com:443:127.0.0.1:http", False, "expected HOST:PORT:ADDR:PORT2"),
        ("mcp.example.com:443:127.0.0.1:70000", False, r"not in 1\.\.65535"),
    ],
)
def test_connect_to_refuses_anything_but_loopback_or_the_allowed_pod_network(
    text: str, allow: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load.parse_connect_to(text, allow_pod_network=allow)


def test_connect_to_a_pod_address_needs_the_flag() -> None:
    mapped = load.parse_connect_to("mcp.example.com:443:10.244.0.7:8080", allow_pod_network=True)
    assert mapped.address == "10.244.0.7"


def test_a_mapped_url_keeps_its_name_for_the_server_and_dials_the_address() -> None:
    mapping = (load.parse_connect_to(f"{INGRESS_HOST}:443:127.0.0.1:8443"),)
    target = load.resolve_target(f"https://{INGRESS_HOST}/mcp/", mapping)
    assert target.dial_url == "https://127.0.0.1:8443/mcp"
    assert (target.host_header, target.server_name) == (INGRESS_HOST, INGRESS_HOST)
    # An explicit port stays in the Host header, as a client would send it.
    mapping = (load.parse_connect_to(f"{INGRESS_HOST}:8443:[::1]:9443"),)
    target = load.resolve_target(f"https://{INGRESS_HOST}:8443/mcp", mapping)
    assert target.dial_url == "https://[::1]:9443/mcp"
    assert target.host_header == f"{INGRESS_HOST}:8443" and target.server_name == INGRESS_HOST
    # Unmapped loopback URLs are dialled as they are, with their own Host.
    plain = load.resolve_target("http://127.0.0.1:8000/", mapping)
    assert plain == load.Target("http://127.0.0.1:8000", "http://127.0.0.1:8000")


@pytest.mark.parametrize(
    ("url", "mapping"),
    [
        (f"https://{INGRESS_HOST}/mcp", ()),
        # A mapping of another port does not apply: the name is still not looked up.
        (f"https://{INGRESS_HOST}/mcp", (f"{INGRESS_HOST}:8443:127.0.0.1:8443",)),
        (f"http://{INGRESS_HOST}/mcp", (f"{INGRESS_HOST}:443:127.0.0.1:8443",)),
    ],
)
def test_a_name_without_its_mapping_is_refused(url: str, mapping: tuple[str, ...]) -> None:
    connect_to = tuple(load.parse_connect_to(m) for m in mapping)
    with pytest.raises(load.TargetRefusedError, match=r"is not looked up.*--connect-to"):
        load.resolve_target(url, connect_to)


def test_a_config_built_in_code_is_held_to_the_same_rule() -> None:
    # A mapping made without parse_connect_to, to an address outside loopback.
    remote = load.ConnectTo(INGRESS_HOST, 443, "192.168.1.10", 443)
    with pytest.raises(load.TargetRefusedError, match="neither loopback"):
        load.LoadConfig(store_urls=(f"https://{INGRESS_HOST}",), connect_to=(remote,))
    with pytest.raises(load.TargetRefusedError, match="is a name"):
        load.LoadConfig(store_urls=("http://store-inventory:8000",))


def _command_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        load.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("a-token\n")
    return path


def test_command_line_refuses_a_mapping_outside_loopback(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _command_line_error(
        ["--mcp-url", f"https://{INGRESS_HOST}/mcp", "--token-file", str(token_file),
         "--connect-to", f"{INGRESS_HOST}:443:192.168.1.10:443"],
        capsys,
    )  # fmt: skip
    assert "neither loopback" in err, err


def test_command_line_refuses_an_unmapped_name(token_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _command_line_error(
        ["--mcp-url", f"https://{INGRESS_HOST}/mcp", "--token-file", str(token_file)], capsys
    )
    assert "is not looked up" in err and "--connect-to" in err, err


def test_command_line_needs_an_existing_readable_ca_file(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--mcp-url", f"https://{INGRESS_HOST}/mcp", "--token-file", str(token_file),
            "--connect-to", f"{INGRESS_HOST}:443:127.0.0.1:8443"]  # fmt: skip
    missing = tmp_path / "no-such-ca.crt"
    err = _command_line_error([*base, "--ca-file", str(missing)], capsys)
    assert f"--ca-file {missing}: no such file" in err, err
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    err = _command_line_error([*base, "--ca-file", str(garbage)], capsys)
    assert f"--ca-file {garbage}: not a readable PEM CA certificate" in err, err
    err = _command_line_error([*base, "--ca-file", str(tmp_path)], capsys)
    assert "no such file" in err, err


def test_command_line_ca_file_only_with_https(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca, _ = _ca(tmp_path, "ca")
    err = _command_line_error(["--store-url", "http://127.0.0.1:8000", "--ca-file", str(ca)], capsys)
    assert "--ca-file is for https URLs" in err, err


def test_command_line_host_of_a_mapped_url_is_its_own(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _command_line_error(
        ["--mcp-url", f"https://{INGRESS_HOST}/mcp", "--token-file", str(token_file),
         "--connect-to", f"{INGRESS_HOST}:443:127.0.0.1:8443", "--mcp-host", "other.example"],
        capsys,
    )  # fmt: skip
    assert "--mcp-host" in err, err


def test_command_line_needs_a_token_from_a_file_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCP_TOKEN", raising=False)
    base = ["--mcp-url", f"https://{INGRESS_HOST}/mcp", "--connect-to", f"{INGRESS_HOST}:443:127.0.0.1:8443"]
    assert "bearer token" in _command_line_error(base, capsys)
    err = _command_line_error([*base, "--token-file", str(tmp_path / "absent")], capsys)
    assert "absent" in err, err
    # No option takes the token itself, and no abbreviation of --token-file is accepted for one.
    assert "unrecognized arguments" in _command_line_error([*base, "--token", "a-token"], capsys)


def _ca(directory: Path, name: str) -> tuple[Path, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]]:
    """A self-signed CA; its certificate as PEM in ``directory`` and, for signing, the pair."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"load test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, (cert, key)


def _server_tls(
    directory: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], host: str, names: list[str]
) -> ssl.SSLContext:
    """A server context with a certificate for ``host`` signed by ``ca``; every TLS server name
    a client sends is appended to ``names``."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")

    def record(_: Any, server_name: str | None, __: Any) -> None:
        names.append(server_name or "")

    context.sni_callback = record
    return context


def _run_https(
    tmp_path: Path, certificate_host: str, trusted_ca: str, **overrides: Any
) -> tuple[Any, MemoryStore, list[str]]:
    """``run_load`` on ``https://INGRESS_HOST`` mapped to a loopback TLS server whose certificate,
    for ``certificate_host``, is signed by the CA ``issuer``; the client trusts ``trusted_ca``."""
    _, issuer = _ca(tmp_path, "issuer")
    other, _ = _ca(tmp_path, "other")
    cas = {"issuer": str(tmp_path / "issuer.crt"), "other": str(other)}
    names: list[str] = []
    server_tls = _server_tls(tmp_path, issuer, certificate_host, names)

    async def scenario() -> tuple[Any, MemoryStore]:
        async with memory_store(tls=server_tls) as store:
            config = load.LoadConfig(
                store_urls=(f"https://{INGRESS_HOST}",),
                connect_to=(load.parse_connect_to(f"{INGRESS_HOST}:443:127.0.0.1:{store.port}"),),
                ca_file=cas[trusted_ca],
                **overrides,
            )
            return await load.run_load(config), store

    report, store = asyncio.run(scenario())
    return report, store, names


def test_https_through_connect_to_names_the_host_and_verifies_its_certificate(tmp_path: Path) -> None:
    report, store, names = _run_https(
        tmp_path, INGRESS_HOST, "issuer", requests=60, concurrency=3, products=2, seed=3
    )
    summary = report.summary()
    assert summary["completed"] == 60 and not report.errors, summary
    # The name was never looked up (.invalid); the loopback server got it as SNI and Host.
    assert names and set(names) == {INGRESS_HOST}, names
    assert {h["host"] for h in store.headers} == {INGRESS_HOST}
    assert store.requests == 60 + 2 + 2
    assert summary["stock"]["consistent"] is True, summary["stock"]
    assert summary["connect_to"] == [f"{INGRESS_HOST}:443:127.0.0.1:{store.port}"]


@pytest.mark.parametrize(
    ("certificate_host", "trusted_ca"),
    [(INGRESS_HOST, "other"), ("someone-else.load.invalid", "issuer")],
    ids=["certificate of another CA", "certificate for another name"],
)
def test_https_refuses_a_certificate_it_cannot_verify(
    tmp_path: Path, certificate_host: str, trusted_ca: str
) -> None:
    with pytest.raises(load.SetupError, match="tls: certificate verify failed"):
        _run_https(tmp_path, certificate_host, trusted_ca, requests=10, products=1)


def test_mcp_sessions_send_the_token_and_the_host_name_over_verified_tls(tmp_path: Path) -> None:
    # The HTTP client each MCP session runs on, against the loopback TLS server (no MCP needed
    # to see what it sends and what it checks).
    _, issuer = _ca(tmp_path, "issuer")
    names: list[str] = []
    server_tls = _server_tls(tmp_path, issuer, INGRESS_HOST, names)

    async def scenario() -> tuple[int, MemoryStore]:
        async with memory_store(tls=server_tls) as store:
            store.stock[1] = 7
            mapping = load.parse_connect_to(f"{INGRESS_HOST}:443:127.0.0.1:{store.port}")
            target = load.resolve_target(f"https://{INGRESS_HOST}/mcp", (mapping,))
            tools = load.MCPTools(
                target, "a-token", None, 5.0, load.tls_context(str(tmp_path / "issuer.crt"))
            )
            async with tools.http_client() as http:
                response = await http.get(target.dial_url.removesuffix("/mcp") + "/products/1")
            return response.status_code, store

    status, store = asyncio.run(scenario())
    assert status == 200
    assert names == [INGRESS_HOST]
    [headers] = store.headers
    assert headers["host"] == INGRESS_HOST and headers["authorization"] == "Bearer a-token"


# -- the real MCP server over TLS on loopback, reached by its Ingress name ---------------------

MCP_SERVER_DIR = Path(__file__).resolve().parents[2] / "services" / "mcp-server"


@pytest.fixture
def mcp_server(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The MCP server's module (``services/mcp-server``), configured by its environment."""
    if str(MCP_SERVER_DIR) not in sys.path:
        sys.path.insert(0, str(MCP_SERVER_DIR))
    import importlib

    for name in ("AUTH_TOKEN_FILE", "STORE_INVENTORY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_TOKEN", "the-token")
    monkeypatch.setenv("ALLOWED_HOSTS", INGRESS_HOST)
    monkeypatch.setenv("HOST", "127.0.0.1")
    return importlib.import_module("mcp_server.server")


def _run_through_mcp_over_tls(
    tmp_path: Path, mcp_server: Any, monkeypatch: pytest.MonkeyPatch, token: str, **overrides: Any
) -> tuple[Any, MemoryStore, list[str]]:
    """``run_load`` with ``--mcp-url https://INGRESS_HOST/mcp`` and no store URL, mapped to the
    real MCP server served by uvicorn with TLS on a loopback port, in front of the in-memory
    store API: products made, loaded and read back through the MCP tools only."""
    import socket

    import uvicorn

    ca, issuer = _ca(tmp_path, "issuer")
    names: list[str] = []
    _server_tls(tmp_path, issuer, INGRESS_HOST, names)

    async def scenario() -> tuple[Any, MemoryStore]:
        async with memory_store() as store:
            monkeypatch.setenv("STORE_API_URL", f"http://127.0.0.1:{store.port}")
            config = uvicorn.Config(
                mcp_server.create_app(),
                ssl_certfile=str(tmp_path / "server.crt"),
                ssl_keyfile=str(tmp_path / "server.key"),
                log_level="warning",
                lifespan="on",
            )
            server = uvicorn.Server(config)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    assert not serving.done(), "the MCP server stopped while starting"
                    await asyncio.sleep(0.02)
                load_config = load.LoadConfig(
                    store_urls=(),
                    mcp_url=f"https://{INGRESS_HOST}/mcp",
                    mcp_token=token,
                    connect_to=(load.parse_connect_to(f"{INGRESS_HOST}:443:127.0.0.1:{port}"),),
                    ca_file=str(ca),
                    **overrides,
                )
                return await load.run_load(load_config), store
            finally:
                server.should_exit = True
                await serving
                sock.close()

    report, store = asyncio.run(scenario())
    return report, store, names


def test_mcp_tool_calls_through_a_mapped_tls_name_keep_stock_correct(
    tmp_path: Path, mcp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's certificate carries the name only; uvicorn's SSL context records no SNI,
    # so the name check is the client's: the handshake succeeds only for INGRESS_HOST.
    report, store, _ = _run_through_mcp_over_tls(
        tmp_path,
        mcp_server,
        monkeypatch,
        "the-token",
        requests=80,
        concurrency=3,
        products=1,
        initial_stock=5,
        deltas=(-4, 3),
        mix={"get": 2, "list": 1, "create": 1, "adjust": 4},
        seed=5,
    )
    summary = report.summary()
    assert not report.errors and summary["completed"] == 80, summary
    (pid,) = report.products
    # With seed 5 the 41 deltas add up to -19: some are refused in any order they land in.
    assert report.refusals, "adjustments draining 5 units must be refused at some point"
    for product, status, detail in report.refusals:
        assert status == 409 and "409" in detail and f"product {product}" in detail, detail
    assert summary["stock"]["consistent"] is True, summary["stock"]
    assert (
        store.stock[pid] == 5 + report.accepted_deltas[pid] == summary["stock"]["products"][str(pid)]["final"]
    )
    # The store API was called by the MCP server only (its pooled client), never by the generator.
    assert {h["host"] for h in store.headers} == {f"127.0.0.1:{store.port}"}


def test_a_wrong_token_through_the_mapped_name_is_a_setup_error(
    tmp_path: Path, mcp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(load.SetupError, match="401"):
        _run_through_mcp_over_tls(tmp_path, mcp_server, monkeypatch, "not-the-token", requests=5, products=1)


# -- open loop: a rate ---------------------------------------------------------------------------


def test_arrivals_are_a_seeded_poisson_schedule() -> None:
    offsets = load.arrivals(5_000, 200.0, random.Random(7))
    assert offsets == load.arrivals(5_000, 200.0, random.Random(7)), "the seed fixes the schedule"
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    # Mean 1/rate; exponential gaps, so some are far shorter and some far longer than the mean.
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 200, rel=0.05)
    assert min(gaps) < 0.1 / 200 and max(gaps) > 5 / 200


def test_a_rate_spreads_the_requests_over_the_schedule() -> None:
    report, store = run_against_memory(requests=40, concurrency=4, products=2, seed=3, rate=400.0)
    summary = report.summary()
    assert summary["completed"] == 40 and not report.errors, summary
    assert store.requests == 40 + 2 + 2  # the timed run, the shared products, their read-back
    schedule = summary["schedule"]
    assert schedule["rate_per_s"] == 400.0 and schedule["started"] == 40, schedule
    # No request starts before its place: the run lasts at least until the last one's.
    last = load.arrivals(40, 400.0, random.Random("3-arrivals"))[-1]
    assert report.wall_seconds >= last, (report.wall_seconds, last)
    closed, _ = run_against_memory(requests=40, concurrency=4, products=2, seed=3)
    ops = {op: figures["count"] for op, figures in summary["by_operation"].items()}
    assert ops == {op: figures["count"] for op, figures in closed.summary()["by_operation"].items()}, (
        "the same seed sends the same mix with or without a rate"
    )
    assert "schedule" not in closed.summary()


def test_a_rate_counts_what_the_deadline_left_unsent() -> None:
    report, _ = run_against_memory(requests=200, concurrency=8, products=1, seed=4, rate=20.0, deadline=0.5)
    summary = report.summary()
    assert summary["completed"] + report.not_sent + report.cancelled == 200, summary
    assert report.not_sent > 0 and report.errors["not sent (deadline)"] == report.not_sent
