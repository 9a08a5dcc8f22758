"""Build once, promote by digest: the images of one commit, pushed once, deployed everywhere.

    python scripts/images.py publish --out images.json    # build + push each image once
    python scripts/images.py pin --stack prod --images images.json   # stack runs those digests

``publish`` takes every ``image.build`` of every stack (``Pulumi.<stack>.yaml``), which must
describe the same build wherever the same repository appears, and for each one:

* if the registry already serves ``<repository>:sha-<full revision>``, keeps that image only when
  its labels show CI built it from ``main`` of this repository, from this revision
  (:func:`hardened_k8s.provenance.provenance_problems`): it is neither rebuilt nor pushed again,
  so a pushed ``sha-`` tag never moves. An image under that tag that CI did not build (a
  developer's ``pulumi up``, a foreign digest) is refused: exit 1, nothing pushed;
* otherwise builds it (``docker build`` with the parameters of
  :func:`hardened_k8s.stack_args.stack_build_spec`, the ones ``pulumi up`` would use, plus the CI
  labels of this run) and pushes the ``sha-`` tag, then the version tag, and checks the labels
  of what the registry then serves. Build cache comes only from the version tag's image, by
  digest, when its labels show CI pushed it from ``main``; otherwise the build starts cold.

``publish`` runs in CI only: the run comes from GitHub Actions' ``GITHUB_SERVER_URL``,
``GITHUB_REPOSITORY``, ``GITHUB_RUN_ID`` and ``GITHUB_REF``.

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
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hardened_k8s.build import BuildSpec
from hardened_k8s.config import ConfigError, ImageSpec, StackConfig
from hardened_k8s.mock_engine import load_stack_file, stack_names
from hardened_k8s.provenance import CI_REF_LABEL, CI_RUN_LABEL, MAIN_REF, ci_run_prefix, provenance_problems
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


@dataclass(frozen=True)
class CiRun:
    """The CI workflow run publishing: where it runs and which git ref it builds."""

    server: str
    """``GITHUB_SERVER_URL``, e.g. ``https://github.com``."""
    repository: str
    """``GITHUB_REPOSITORY``, ``owner/name``."""
    run_id: str
    """``GITHUB_RUN_ID``."""
    ref: str
    """``GITHUB_REF``, e.g. ``refs/heads/main``."""

    @property
    def prefix(self) -> str:
        return ci_run_prefix(self.server, self.repository)

    @property
    def url(self) -> str:
        return f"{self.prefix}{self.run_id}"

    @property
    def labels(self) -> dict[str, str]:
        """The labels every image this run builds carries."""
        return {CI_RUN_LABEL: self.url, CI_REF_LABEL: self.ref}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CiRun:
        names = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_REF")
        missing = [n for n in names if not env.get(n)]
        if missing:
            raise ConfigError(
                [
                    (
                        ", ".join(missing),
                        "unset; publish runs in GitHub Actions (deploy.yml), which sets them. A "
                        "developer deploys an image CI built (image.ref), or builds with `pulumi up`",
                    )
                ]
            )
        return cls(*(env[n] for n in names))


class ProvenanceError(ToolError):
    """An image the registry serves does not show that CI built it."""


def image_labels(ref: str, *, run: Run = _run, tls_verify: bool = True) -> dict[str, str]:
    """The labels of the image config ``ref`` (best a ``repo@sha256:`` reference) names."""
    argv = ["skopeo", "inspect", f"--tls-verify={str(tls_verify).lower()}", f"docker://{ref}"]
    out = run(argv)
    if out.returncode != 0:
        raise ToolError(f"{' '.join(argv)} failed: {out.stderr.decode(errors='replace').strip()}")
    labels = json.loads(out.stdout).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def docker_build_argv(spec: BuildSpec, labels: Mapping[str, str] | None = None) -> list[str]:
    """``docker build`` of ``spec``, tagged with every ref (what ``docker.Image`` does), with
    ``labels`` (default none) added to the image."""
    argv = ["docker", "build", "--platform", spec.platform, "--target", spec.target]
    argv += ["--file", str(Path(spec.context) / spec.containerfile)]
    for key, value in spec.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in sorted((labels or {}).items()):
        argv += ["--label", f"{key}={value}"]
    for ref in spec.cache_from:
        argv += ["--cache-from", ref]
    for ref in spec.refs:
        argv += ["--tag", ref]
    return [*argv, spec.context]


def trusted_cache(spec: BuildSpec, ci: CiRun, *, run: Run = _run, tls_verify: bool = True) -> tuple[str, ...]:
    """``repo@sha256:`` of the version tag's image when CI pushed it from ``main``; else none.

    By digest, so the layers used are those of the image whose labels were read, even if the
    tag moves meanwhile. The version tag is a moving tag anyone with push access can write.
    """
    if len(spec.tags) < 2:
        return ()
    digest = registry_digest(spec.refs[1], run=run, tls_verify=tls_verify)
    if digest is None:
        return ()
    pinned = f"{spec.repository}@{digest}"
    labels = image_labels(pinned, run=run, tls_verify=tls_verify)
    if provenance_problems(labels, revision=None, run_prefix=ci.prefix, ref=MAIN_REF):
        print(
            f"{spec.refs[1]} ({digest}) was not pushed by CI from main: building without cache",
            file=sys.stderr,
        )
        return ()
    return (pinned,)


def _check_provenance(
    ref: str, digest: str, spec: BuildSpec, ci: CiRun, *, run: Run, tls_verify: bool
) -> None:
    labels = image_labels(f"{spec.repository}@{digest}", run=run, tls_verify=tls_verify)
    problems = provenance_problems(labels, revision=spec.build_args.get("REVISION"), run_prefix=ci.prefix)
    if problems:
        raise ProvenanceError(
            f"{ref} is {digest}, which CI did not build from main at this revision: "
            f"{'; '.join(problems)}. Nothing was pushed. Find who pushed it (registry audit log), "
            "delete the tag, and re-run this workflow; only CI's registry credentials may push here"
        )


def publish(spec: BuildSpec, *, ci: CiRun, run: Run = _run, tls_verify: bool = True) -> Published:
    """Push ``spec`` once: an existing ``sha-`` tag is kept when CI built it, refused otherwise."""
    primary = spec.primary_ref
    existing = registry_digest(primary, run=run, tls_verify=tls_verify)
    if existing is not None:
        _check_provenance(primary, existing, spec, ci, run=run, tls_verify=tls_verify)
        return Published(spec.repository, f"{spec.repository}@{existing}", reused=True)
    spec = replace(spec, cache_from=trusted_cache(spec, ci, run=run, tls_verify=tls_verify))
    for argv in (docker_build_argv(spec, ci.labels), *(["docker", "push", ref] for ref in spec.refs)):
        out = run(argv)
        if out.returncode != 0:
            log = (out.stdout + out.stderr).decode(errors="replace")[-4000:]
            raise ToolError(f"{' '.join(argv[:3])} ... failed:\n{log}")
    digest = registry_digest(primary, run=run, tls_verify=tls_verify)
    if digest is None:
        raise ToolError(f"{primary} was pushed but the registry does not serve it")
    # Someone may have pushed the tag between the check above and this push.
    _check_provenance(primary, digest, spec, ci, run=run, tls_verify=tls_verify)
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
            ci = CiRun.from_env(os.environ)
            for repository, spec in sorted(project_builds(args.project_dir, args.revision).items()):
                done = publish(spec, ci=ci, tls_verify=args.tls_verify == "true")
                refs[repository] = done.ref
                what = "pushed by CI before, kept (not rebuilt)" if done.reused else "built and pushed"
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
