"""The local cluster from the command line (``make cluster``, ``make up``, ``make down``)::

    python -m tests.cluster start [--dir DIR] [--no-real-node]  # control plane (+ real node)
    python -m tests.cluster up    [--dir DIR] --stack dev       # images, cluster, pulumi up
    python -m tests.cluster token [--dir DIR]                   # the deployed authToken
    python -m tests.cluster stop|down [--dir DIR]               # stop it all, remove DIR
    python -m tests.cluster clean                               # what a killed node left

``up`` keeps the image engine and registry running for the node (containerd pulls from the
registry); ``down`` stops them with the cluster, every process by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import host
from .local import CONTEXT, ROOT, ClusterError, LocalCluster

DEFAULT_DIR = ROOT / "build" / "cluster"
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "curl", "version": "0"},
        },
    },
    separators=(",", ":"),
)


def _start_harness() -> Any:
    """The image engine and registry, left running (their PIDs go to the cluster's state)."""
    from ..image.engine import Harness

    harness = Harness()
    harness.__enter__()
    return harness


def _stop_harness(state: dict[str, Any]) -> None:
    from ..image.engine import _unmount_under

    for pid in reversed(state.get("pids", [])):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for pid in state.get("pids", []):
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    if state.get("workdir"):
        workdir = Path(state["workdir"])
        _unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def start(directory: Path, real_node: bool) -> LocalCluster:
    if (directory / "state.json").exists():
        raise ClusterError(f"a cluster already runs from {directory}; stop it first (`make down`)")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    harness = _start_harness() if real_node else None
    cluster = LocalCluster(directory, real_node=real_node)
    try:
        # Someone watching the system run gets the HPAs acting (the cluster tier starts
        # metrics-server only around its autoscaling tests).
        cluster.start(harness, metrics_api=real_node)
    except BaseException:
        if harness is not None:
            harness.close()
        raise
    if harness is not None:
        # Left running for the node; ``down`` stops these by PID.
        state = {"pids": [p.pid for p in harness._procs], "workdir": str(harness.workdir)}
        (directory / "harness.json").write_text(json.dumps(state))
        cluster.harness = harness
    return cluster


def stop(directory: Path) -> None:
    if (directory / "state.json").exists():
        LocalCluster.from_state(directory).stop()
    if (directory / "harness.json").exists():
        _stop_harness(json.loads((directory / "harness.json").read_text()))
        (directory / "harness.json").unlink()


def up(directory: Path, stack: str) -> int:
    from ..image.engine import git_revision
    from ..image.stack_images import build_stack_images
    from .deploy import node_image_refs, tls_certificate, tls_secret
    from .pulumi_cli import POLICY_PACK, ProjectStack, pulumi_env

    started = time.monotonic()
    cluster = start(directory, real_node=True)
    print(f"cluster with its real node ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    images = build_stack_images(cluster.harness, git_revision())
    project = ProjectStack(
        pulumi_env(directory / "pulumi", kubeconfig=cluster.kubeconfig), stack, directory / "project"
    )
    values = {"databasePassword": secrets.token_urlsafe(18), "authToken": secrets.token_urlsafe(24)}
    project.use_local_cluster(values, node_image_refs(project, images))
    [service] = [s for s in (project.config("services") or {}).values() if "expose" in s]
    expose = service["expose"]
    pki = directory / "ingress-pki"
    pki.mkdir()
    crt, key, ca = tls_certificate(pki, expose["host"])
    print(f"pulumi up --stack {stack} --policy-pack policy ...", file=sys.stderr)
    project.stack.up(
        policy_packs=[str(POLICY_PACK)],
        policy_pack_configs=[str(project.policy_config())],
        on_output=lambda line: print(line, file=sys.stderr),
    )
    namespace = str(project.config("namespace"))
    cluster.apply(tls_secret(namespace, expose["tlsSecretName"], crt, key))
    assert cluster.ingress is not None
    port = cluster.ingress.https_port
    print(
        f"""
{stack} runs on the local cluster's real node ({time.monotonic() - started:.0f}s).
  export KUBECONFIG={cluster.kubeconfig}   # context {CONTEXT}
  kubectl top pods -n {namespace}   # the metrics API (metrics-server) the HPAs act on
  The MCP server through the Ingress (Traefik, TLS from the stack's own test CA):
    curl --resolve {expose["host"]}:{port}:127.0.0.1 --cacert {ca} \\
      -H "Authorization: Bearer $(python -m tests.cluster token)" \\
      -H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json' \\
      -d '{INITIALIZE}' \\
      https://{expose["host"]}:{port}/mcp
  make down   # stops everything and removes {directory}""",
        file=sys.stderr,
    )
    return 0


def token(directory: Path) -> int:
    """The deployed stack's ``authToken``, decrypted by Pulumi (never written to a file)."""
    from pulumi import automation as auto

    from .local import toolchain_dir
    from .pulumi_cli import pulumi_env

    env = pulumi_env(directory / "pulumi", kubeconfig=directory / "kubeconfig.yaml")
    workspace = auto.LocalWorkspace(
        work_dir=str(directory / "project"),
        pulumi_home=env.env["PULUMI_HOME"],
        env_vars=env.env,
        pulumi_command=auto.PulumiCommand(str(toolchain_dir()), skip_version_check=True),
    )
    [summary] = workspace.list_stacks()
    print(workspace.get_config(summary.name, "authToken").value)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["start", "up", "token", "stop", "down", "clean"])
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help="the cluster's directory (default: build/cluster)"
    )
    parser.add_argument("--stack", default="dev", help="the stack `up` deploys (default: dev)")
    parser.add_argument(
        "--no-real-node", action="store_true", help="`start`: the control plane and KWOK nodes only"
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir.resolve()
    try:
        if args.action == "start":
            started = time.monotonic()
            cluster = start(directory, real_node=not args.no_real_node)
            print(f"cluster ready in {time.monotonic() - started:.1f}s at {cluster.server}", file=sys.stderr)
            print(f"  export KUBECONFIG={cluster.kubeconfig}  # context {CONTEXT}", file=sys.stderr)
            print(cluster.kubeconfig)
            return 0
        if args.action == "up":
            return up(directory, args.stack)
        if args.action == "token":
            return token(directory)
        if args.action == "clean":
            done = host.clean()
            print("removed: " + (", ".join(done) if done else "nothing was left"), file=sys.stderr)
            return 0
    except (ClusterError, host.NodeBusyError) as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        if args.action == "up":
            stop(directory)
        return 1
    stop(directory)
    if args.action == "down":
        shutil.rmtree(directory, ignore_errors=True)
    print(f"cluster in {directory} stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
