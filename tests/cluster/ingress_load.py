"""``bench/load.py`` through the Ingress: its own process, the way a person runs it.

The MCP URL names the Ingress host (``https://<expose.host>/mcp``); ``--connect-to`` sends
its connections to Traefik on 127.0.0.1, so TLS server name and ``Host`` are the Ingress
host while nothing leaves loopback, and ``--ca-file`` verifies Traefik's certificate against
the test's own CA. The bearer token is handed over in a file readable by this user only,
removed when the run ends; it is never on a command line or in the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .mcp_client import Endpoint
from .pulumi_cli import ROOT

LOAD = ROOT / "bench" / "load.py"
INGRESS_PORT = 443
"""The port the Ingress host is addressed on in the URL (https's own), mapped to Traefik's."""


def command(endpoint: Endpoint, token_file: Path, options: dict[str, Any]) -> list[str]:
    """``bench/load.py`` against the MCP server through ``endpoint``, with ``options``
    (``{"requests": 1000, ...}`` as ``--requests 1000 ...``)."""
    argv = [
        sys.executable, str(LOAD),
        "--mcp-url", f"https://{endpoint.host}/mcp",
        "--connect-to", f"{endpoint.host}:{INGRESS_PORT}:127.0.0.1:{endpoint.https_port}",
        "--ca-file", str(endpoint.ca),
        "--token-file", str(token_file),
    ]  # fmt: skip
    for name, value in options.items():
        flag = f"--{name.replace('_', '-')}"
        # A value starting with "-" (``--deltas=-4..3``) is joined to its flag, as argparse needs.
        argv += [f"{flag}={value}"] if str(value).startswith("-") else [flag, str(value)]
    return argv


def run(
    endpoint: Endpoint, token: str, workdir: Path, timeout: float, **options: Any
) -> tuple[dict[str, Any], list[str]]:
    """Run the generator to its end; its JSON summary, and the command line it ran (the token
    file shown as ``TOKEN``, the CA as ``CA``)."""
    token_file = workdir / "mcp-token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    argv = command(endpoint, token_file, options)
    environment = {k: v for k, v in os.environ.items() if k != "MCP_TOKEN"}
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=environment, check=False
        )
    finally:
        token_file.unlink()
    # 1 is a run with errors or a stock that does not add up: the summary says which.
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise AssertionError(f"bench/load.py exited {result.returncode}: {result.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(result.stdout)
    summary["exit_code"] = result.returncode
    names = {sys.executable: "venv/bin/python", str(LOAD): "bench/load.py", str(token_file): "TOKEN"}
    names[str(endpoint.ca)] = "CA"
    return summary, [names.get(a, a) for a in argv]
