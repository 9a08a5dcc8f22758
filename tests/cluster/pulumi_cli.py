"""The real Pulumi CLI, engine and Kubernetes provider, driven like a user drives them.

The CLI built by ``scripts/toolchain.sh`` has no Python language plugin (the Go module proxy
serves none), so the program runs through the SDK's Automation API: the SDK hosts the
language runtime in this process and the CLI connects to it (``--client``). Everything else
is the ordinary path: ``pulumi stack init``, ``pulumi config set [--secret|--path]``,
``pulumi preview --policy-pack``, ``pulumi up``, ``pulumi stack export`` and
``pulumi destroy``, with a file backend and the passphrase secrets provider; plugins come
from ``PATH`` only, with update checks and plugin downloads off.
"""

from __future__ import annotations

import hashlib
import os
import runpy
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from .ingress import INGRESS_CLASS
from .local import CONTEXT, toolchain_dir

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "store-inventory"
POLICY_PACK = ROOT / "policy"
PASSPHRASE = "cluster-tier-passphrase"
"""Passphrase of the test backend's secrets provider (a throwaway stack, not a secret)."""


@dataclass(frozen=True)
class PulumiEnv:
    """Where the CLI keeps its state in this session, and the environment it runs with."""

    home: Path
    env: dict[str, str]


def pulumi_env(home: Path, *, kubeconfig: Path) -> PulumiEnv:
    """A Pulumi home under ``home``, logged in to a file backend there, for ``kubeconfig``."""
    backend = home / "backend"
    backend.mkdir(parents=True, exist_ok=True)
    venv_bin = Path(os.environ.get("VIRTUAL_ENV") or ROOT / "venv") / "bin"
    path = os.pathsep.join(
        [str(toolchain_dir() / "bin"), str(POLICY_PACK / "bin"), str(venv_bin), os.environ.get("PATH", "")]
    )
    env = {
        "PATH": path,
        "PULUMI_HOME": str(home / "home"),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "KUBECONFIG": str(kubeconfig),
    }
    return PulumiEnv(home, env)


def digest_ref(repository: str) -> str:
    """A ``repo@sha256:`` reference; KWOK runs no container, so no image is ever pulled."""
    return f"{repository}@sha256:{hashlib.sha256(repository.encode()).hexdigest()}"


def _program(workdir: Path) -> auto.PulumiFn:
    def program() -> None:
        runpy.run_path(str(workdir / "__main__.py"), run_name="__main__")

    return program


class ProjectStack:
    """A copy of the project with one stack created from its committed stack file."""

    def __init__(self, pulumi: PulumiEnv, stack: str, workdir: Path) -> None:
        self.name = stack
        self.workdir = workdir
        self.env = pulumi.env
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        for item in ("Pulumi.yaml", f"Pulumi.{stack}.yaml", "__main__.py"):
            shutil.copy2(ROOT / item, workdir / item)
        shutil.copytree(ROOT / "services", workdir / "services")
        self.committed: dict[str, Any] = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        self.stack = auto.Stack.create(stack, self._workspace(self.env))

    def _workspace(self, env: dict[str, str]) -> auto.LocalWorkspace:
        return auto.LocalWorkspace(
            work_dir=str(self.workdir),
            program=_program(self.workdir),
            pulumi_home=env["PULUMI_HOME"],
            env_vars=env,
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(str(toolchain_dir()), skip_version_check=True),
        )

    def with_kubeconfig(self, kubeconfig: Path) -> auto.Stack:
        """The same stack and backend, its Kubernetes provider started with ``kubeconfig`` (as a
        CI job whose environment holds another identity's kubeconfig runs it)."""
        return auto.Stack.select(self.name, self._workspace({**self.env, "KUBECONFIG": str(kubeconfig)}))

    def cli(self, *args: str) -> str:
        """Run ``pulumi <args> --stack <stack>`` in the project copy; its standard output."""
        result = subprocess.run(
            [str(toolchain_dir() / "bin" / "pulumi"), *args, "--stack", self.name, "--non-interactive"],
            cwd=self.workdir,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def config(self, key: str) -> Any:
        """A committed config value by short key (``services``, ``database``...)."""
        return self.committed.get(f"{PROJECT}:{key}")

    def set(self, key: str, value: str, *, secret: bool = False, path: bool = False) -> None:
        """``pulumi config set [--secret] [--path] key value``."""
        self.stack.set_config(key, auto.ConfigValue(value, secret=secret), path=path)

    def remove(self, key: str, *, path: bool = False) -> None:
        """``pulumi config rm [--path] key``."""
        self.stack.remove_config(key, path=path)

    def use_local_cluster(
        self, secrets: dict[str, str], images: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Point the stack at the local cluster, set its secrets and pin every image by digest.

        ``images`` maps a service or database name to the ``repo@digest`` it runs (built and
        pushed by the image harness, pulled by the real node); without it every image gets a
        digest no registry serves, which only KWOK nodes "run". An exposed service's Ingress
        gets the local Ingress controller's class. Returns the reference of each service and
        the database.
        """
        images = images or {}
        self.set("kubeContext", CONTEXT)
        for key, value in secrets.items():
            self.set(key, value, secret=True)
        registry = self.config("registry") or "quay.io/ecosystem-appeng"
        refs: dict[str, str] = {}
        for name, spec in (self.config("services") or {}).items():
            ref = images.get(name) or digest_ref(f"{registry}/{name}")
            if images and "expose" in spec:
                self.set(f"services.{name}.expose.ingressClassName", INGRESS_CLASS, path=True)
            if "build" in spec.get("image", {}):
                self.remove(f"services.{name}.image.build", path=True)
            self.set(f"services.{name}.image.ref", ref, path=True)
            refs[name] = ref
        database = self.config("database")
        if database:
            ref = images.get(database["name"]) or digest_ref(f"{registry}/{database['name']}")
            image = database.get("image")
            if isinstance(image, dict):
                if "build" in image:
                    self.remove("database.image.build", path=True)
                self.set("database.image.ref", ref, path=True)
            else:
                self.set("database.image", ref, path=True)
            refs[database["name"]] = ref
        return refs

    def policy_config(self) -> Path:
        """The policy pack config written from this stack's file by ``policy/pack_config.py``."""
        out = self.workdir / f"policy-config.{self.name}.json"
        env = {**os.environ, "PYTHONPATH": str(POLICY_PACK)}
        result = subprocess.run(
            [
                sys.executable,
                str(POLICY_PACK / "pack_config.py"),
                str(self.workdir / f"Pulumi.{self.name}.yaml"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        out.write_text(result.stdout)
        return out
