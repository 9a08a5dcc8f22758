"""Build once, promote by digest: the images of one commit, pushed once, deployed everywhere.

    python scripts/images.py publish --out images.json    # build + push each image once
    python scripts/images.py pin --stack prod --images images.json   # stack runs those digests

``publish`` takes every ``image.build`` of every stack (``Pulumi.<stack>.yaml``), which must
describe the same build wherever the same repository appears, and for each one:

* if the registry already serves ``<repository>:sha-<revision>``, keeps that image: it is
  neither rebuilt nor pushed again, so a pushed ``sha-<revision>`` tag never moves to another
  digest (a re-run of the pipeline, or a second stack, gets the image the first one pushed);
* otherwise builds it (``docker build`` with the parameters of
  :func:`hardened_k8s.stack_args.stack_build_spec`, the ones ``pulumi up`` would use) and pushes the
  ``sha-<revision>`` tag, then the version tag.

It writes ``{repository: "repository@sha256:<digest>"}``, the digest read back from the
registry. ``pin`` turns a stack's builds into those references with the real CLI
(``pulumi config rm --path <key>.build`` and ``pulumi config set --path <key>.ref <ref>``),
so ``pulumi preview``/``up`` of any stack deploys exactly the published digests and builds
nothing (``--dry-run`` prints the commands). Nothing here deletes an image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardened_k8s.build import BuildSpec
from hardened_k8s.config import ConfigError, ImageSpec, StackConfig
from hardened_k8s.mock_engine import load_stack_file, stack_names
from hardened_k8s.stack_args import stack_build_spec
from hardened_k8s.stack_config import SECRET_KEYS, source_revision
from hardened_k8s.validation import parse_stack_config

Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[bytes]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), capture_output=True, check=False, timeout=3600)


def stack_model(project_dir: Path, stack: str) -> StackConfig:
    """A stack file's config without its secrets (a build needs none)."""
    project, document = load_stack_file(project_dir, stack)
    prefix = f"{project}:"
    raw = {
        key[len(prefix) :] if key.startswith(prefix) else key: value
        for key, value in (document.get("config") or {}).items()
    }
    return parse_stack_config({k: v for k, v in raw.items() if k not in SECRET_KEYS}, root=project_dir)


def stack_builds(config: StackConfig, revision: str) -> dict[str, BuildSpec]:
    """``{config key of the image: its build}`` for every ``image.build`` of one stack.

    Built by :func:`hardened_k8s.stack_args.stack_build_spec`, as :class:`ServiceSystem` builds them.
    """
    images: list[tuple[str, str, ImageSpec, str]] = []
    if config.database is not None:
        db = config.database
        images.append(("database.image", db.name, db.image, db.version))
    images += [(f"services.{n}.image", n, s.image, s.version) for n, s in config.services.items()]
    return {
        key: stack_build_spec(config, name, image.build, version=version, revision=revision)
        for key, name, image, version in images
        if image.build is not None
    }


def project_builds(project_dir: Path, revision: str | None = None) -> dict[str, BuildSpec]:
    """One build per repository over every stack; a repository built two ways is an error."""
    builds: dict[str, BuildSpec] = {}
    where: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for stack in stack_names(project_dir):
        config = stack_model(project_dir, stack)
        rev = source_revision(project_dir, revision or config.image_revision)
        for key, spec in stack_builds(config, rev).items():
            first = builds.setdefault(spec.repository, spec)
            if first != spec:
                problems.append(
                    (
                        f"Pulumi.{stack}.yaml {key}",
                        f"builds {spec.repository} differently from {where[spec.repository]}; one "
                        "commit is built once, so give both stacks the same build (or another name)",
                    )
                )
            where.setdefault(spec.repository, f"Pulumi.{stack}.yaml {key}")
    if problems:
        raise ConfigError(problems)
    return builds


@dataclass(frozen=True)
class Published:
    repository: str
    ref: str
    """``repository@sha256:<digest>`` the registry serves for the ``sha-<revision>`` tag."""
    reused: bool
    """True when the tag was already pushed: nothing was built or pushed."""


class ToolError(RuntimeError):
    pass


def registry_digest(ref: str, *, run: Run = _run, tls_verify: bool = True) -> str | None:
    """Digest of the manifest the registry serves for ``ref``, or None if the tag does not exist.

    ``skopeo inspect --raw`` returns the manifest bytes exactly as served; their SHA-256 is the
    digest a pull by digest resolves.
    """
    argv = ["skopeo", "inspect", "--raw", f"--tls-verify={str(tls_verify).lower()}", f"docker://{ref}"]
    out = run(argv)
    if out.returncode != 0:
        err = out.stderr.decode(errors="replace")
        if "manifest unknown" in err or "not found" in err.lower() or "name unknown" in err:
            return None
        raise ToolError(f"{' '.join(argv)} failed: {err.strip()}")
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest()


def docker_build_argv(spec: BuildSpec) -> list[str]:
    """``docker build`` of ``spec``, tagged with every ref (what ``docker.Image`` does)."""
    argv = ["docker", "build", "--platform", spec.platform, "--target", spec.target]
    argv += ["--file", str(Path(spec.context) / spec.containerfile)]
    for key, value in spec.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for ref in spec.cache_from:
        argv += ["--cache-from", ref]
    for ref in spec.refs:
        argv += ["--tag", ref]
    return [*argv, spec.context]


def publish(spec: BuildSpec, *, run: Run = _run, tls_verify: bool = True) -> Published:
    """Push ``spec`` once: an existing ``sha-<revision>`` tag is kept, never rebuilt or moved."""
    primary = spec.primary_ref
    existing = registry_digest(primary, run=run, tls_verify=tls_verify)
    if existing is not None:
        return Published(spec.repository, f"{spec.repository}@{existing}", reused=True)
    for argv in (docker_build_argv(spec), *(["docker", "push", ref] for ref in spec.refs)):
        out = run(argv)
        if out.returncode != 0:
            log = (out.stdout + out.stderr).decode(errors="replace")[-4000:]
            raise ToolError(f"{' '.join(argv[:3])} ... failed:\n{log}")
    digest = registry_digest(primary, run=run, tls_verify=tls_verify)
    if digest is None:
        raise ToolError(f"{primary} was pushed but the registry does not serve it")
    return Published(spec.repository, f"{spec.repository}@{digest}", reused=False)


def pin_commands(stack: str, config: StackConfig, images: dict[str, str], revision: str) -> list[list[str]]:
    """The ``pulumi config`` commands that make ``stack`` deploy ``images`` instead of building."""
    commands: list[list[str]] = []
    for key, spec in stack_builds(config, revision).items():
        if spec.repository not in images:
            raise ConfigError([(key, f"{spec.repository} was not published; run `publish` first")])
        commands.append(["pulumi", "config", "rm", "--stack", stack, "--path", f"{key}.build"])
        commands.append(
            ["pulumi", "config", "set", "--stack", stack, "--path", f"{key}.ref", images[spec.repository]]
        )
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="Pulumi project (default .)")
    parser.add_argument("--revision", help="git commit to tag (default: imageRevision, else HEAD)")
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="build and push each image once; write the digests")
    pub.add_argument("--out", type=Path, required=True, help="JSON file {repository: ref}")
    pub.add_argument("--tls-verify", choices=("true", "false"), default="true", help="registry TLS")
    pin = sub.add_parser("pin", help="make a stack deploy the published digests")
    pin.add_argument("--stack", required=True)
    pin.add_argument("--images", type=Path, required=True, help="the JSON file publish wrote")
    pin.add_argument("--dry-run", action="store_true", help="print the pulumi commands only")
    args = parser.parse_args(argv)
    try:
        if args.command == "publish":
            refs: dict[str, Any] = {}
            for repository, spec in sorted(project_builds(args.project_dir, args.revision).items()):
                done = publish(spec, tls_verify=args.tls_verify == "true")
                refs[repository] = done.ref
                what = "already pushed, kept (not rebuilt)" if done.reused else "built and pushed"
                print(f"{spec.primary_ref}: {what}: {done.ref}", file=sys.stderr)
            args.out.write_text(json.dumps(refs, indent=2, sort_keys=True) + "\n")
            return 0
        config = stack_model(args.project_dir, args.stack)
        revision = source_revision(args.project_dir, args.revision or config.image_revision)
        images = json.loads(args.images.read_text())
        for command in pin_commands(args.stack, config, images, revision):
            print(" ".join(command))
            if not args.dry_run:
                subprocess.run(command, check=True, cwd=args.project_dir)
        return 0
    except ConfigError as exc:
        print(f"error:\n{exc}", file=sys.stderr)
        return 2
    except (ToolError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
