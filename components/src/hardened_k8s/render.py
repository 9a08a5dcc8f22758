"""Offline render: a stack's Kubernetes objects as YAML files, checked, with a summary.

``python -m hardened_k8s.render --stack dev`` runs the project's real program on the mock
engine (:mod:`hardened_k8s.mock_engine`), prints the component tree, the images the stack
would build and its outputs, checks every object against the Kubernetes OpenAPI schema of
the stack's ``kubernetesVersion`` (strict), runs every hardening policy rule with the
stack's ``policyExemptions``, and, if all of that passes, writes every Kubernetes object to
``build/<stack>/<kind>-<name>.yaml``. Exit status: 0 rendered and clean; 1 a schema error,
a mandatory policy violation or an object declared twice; 2 invalid configuration or an
unknown stack. On 1 and 2 nothing is written and an earlier ``build/<stack>/`` is removed.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from hardened_k8s_rules.policy import Exemption, Report, evaluate, format_report
from hardened_k8s_rules.profiles import DEFAULT_PROFILE, SecurityProfile

from .config import DEFAULT_KUBERNETES_VERSION, ConfigError
from .mock_engine import (
    SECRET_PLACEHOLDER,
    ProgramRun,
    Registration,
    load_stack_file,
    paused_gc,
    placeholder_digest,
    run_program,
    unwrap_secrets,
)
from .schema import SchemaError, validate_objects
from .stack_config import RENDER_ASSUMES_SECRETS, read_stack_settings, secrets_used

_HEAD_KEYS = ("apiVersion", "kind", "metadata")
# libyaml's emitter writes the same YAML as the pure-Python one, several times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class RenderedObject:
    """One Kubernetes object ready to write: its manifest and the file it goes to."""

    registration: Registration
    """The registration the object was declared by."""
    manifest: dict[str, Any]
    """The object as written, secrets redacted."""

    @property
    def filename(self) -> str:
        """File name under ``build/<stack>/``: ``<kind>-<name>.yaml``."""
        kind = str(self.manifest["kind"]).lower()
        return f"{kind}-{self.manifest['metadata']['name']}.yaml"


def manifests(run: ProgramRun) -> list[RenderedObject]:
    """Every Kubernetes object of ``run`` as a plain manifest with secrets redacted."""
    objects = []
    for reg in run.kubernetes_objects():
        body = unwrap_secrets(reg.inputs)
        ordered = {key: _sorted(body[key]) for key in _HEAD_KEYS if key in body}
        ordered.update({key: _sorted(body[key]) for key in sorted(body) if key not in _HEAD_KEYS})
        objects.append(RenderedObject(reg, ordered))
    return objects


def to_yaml(obj: RenderedObject, *, project: str, stack: str) -> str:
    """The file text of one object: a provenance header, then the manifest."""
    header = (
        f"# {project}/{stack}: rendered offline on Pulumi's mock engine ({obj.registration.type}).\n"
        "# Digests of images built by the stack are placeholders until pushed; "
        f"secrets read {SECRET_PLACEHOLDER}.\n"
    )
    body: str = yaml.dump(obj.manifest, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
    return header + body


class RenderError(Exception):
    """The program ran but its objects cannot be written as one file each."""


def duplicate_objects(objects: Sequence[RenderedObject]) -> list[str]:
    """Objects declared twice (same kind and name): one would overwrite the other when applied."""
    names = [o.filename for o in objects]
    return sorted({n.removesuffix(".yaml") for n in names if names.count(n) > 1})


def write(objects: Sequence[RenderedObject], out_dir: Path, *, project: str, stack: str) -> list[Path]:
    """Replace ``out_dir`` with one file per object; all or nothing.

    The directory and files get the ordinary permissions of the user's umask (a private
    temporary directory is used for staging only).
    """
    names = [o.filename for o in objects]
    duplicates = duplicate_objects(objects)
    if duplicates:
        raise RenderError(f"objects declared twice (kind-name): {', '.join(duplicates)}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        staging.chmod(0o777 & ~_umask())
        for obj in objects:
            (staging / obj.filename).write_text(to_yaml(obj, project=project, stack=stack))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / n for n in sorted(names)]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale(out_dir: Path) -> bool:
    """Delete ``out_dir`` (manifests of an earlier render); True if there was one."""
    if out_dir.is_dir():
        shutil.rmtree(out_dir)
        return True
    return False


def summary(run: ProgramRun) -> str:
    """A ``pulumi preview``-like tree, the images to build, and the stack outputs."""
    lines = [f"Previewing {run.project}/{run.stack} offline (mock engine, no cluster)", ""]
    children: dict[str, list[Registration]] = {}
    # The SDK registers concurrently; name order keeps the tree the same on every run.
    for reg in sorted(run.registrations, key=lambda r: (r.name, r.type)):
        children.setdefault(reg.parent, []).append(reg)
    root = f"urn:pulumi:{run.stack}::{run.project}::pulumi:pulumi:Stack::{run.project}-{run.stack}"
    rows: list[tuple[str, str, str]] = [("", "pulumi:pulumi:Stack", f"{run.project}-{run.stack}")]

    def walk(urn: str, prefix: str) -> None:
        kids = children.get(urn, [])
        for i, reg in enumerate(kids):
            last = i == len(kids) - 1
            flags = " [protect]" if reg.protect else ""
            flags += " [retainOnDelete]" if reg.retain_on_delete else ""
            rows.append((prefix + ("└─ " if last else "├─ "), reg.type, reg.name + flags))
            walk(reg.urn, prefix + ("   " if last else "│  "))

    walk(root, "")
    width = max(len(p) + len(t) for p, t, _ in rows) + 2
    lines.append(f"     {'Type':<{width}}Name")
    lines += [f" +   {(p + t):<{width}}{n}" for p, t, n in rows]
    lines += ["", f"Resources: + {len(run.registrations) + 1} to create", ""]
    lines += _images(run)
    lines += ["Outputs:", _indent(yaml.safe_dump(run.outputs, sort_keys=True).rstrip())]
    return "\n".join(lines) + "\n"


def _images(run: ProgramRun) -> list[str]:
    images = [r for r in run.registrations if r.type == "docker:index/image:Image"]
    if not images:
        return []
    tags: dict[str, list[str]] = {}
    for reg in run.registrations:
        if reg.type == "docker:index/tag:Tag":
            tags.setdefault(reg.parent, []).append(str(reg.inputs["targetImage"]))
    lines = ["Images (built and pushed by `pulumi up` only; `pulumi preview` builds nothing):"]
    for reg in images:
        build = reg.inputs.get("build", {})
        registry = reg.inputs.get("registry")
        credentials = "docker login of the build machine"
        if isinstance(registry, dict):
            server = registry.get("server", "")
            credentials = f"{server} as {registry.get('username') or '?'}, password {SECRET_PLACEHOLDER}"
        lines += [
            f"  {reg.name}",
            f"    context:       {build.get('context')}",
            f"    containerfile: {build.get('dockerfile')}",
            f"    target:        {build.get('target')}",
            f"    platform:      {build.get('platform')}",
            f"    build args:    {', '.join(f'{k}={v}' for k, v in sorted(build.get('args', {}).items()))}",
            f"    cache from:    {', '.join(build.get('cacheFrom', {}).get('images', []))}",
            f"    pushed as:     {', '.join([str(reg.inputs['imageName']), *tags.get(reg.parent, [])])}",
            f"    credentials:   {credentials}",
            f"    digest:        {_reported_digest(reg)} (placeholder until pushed)",
        ]
    return [*lines, ""]


def _reported_digest(image: Registration) -> str:
    """The digest the (mock) registry reported for a built image: its ``repoDigest``'s tail."""
    repository = str(image.inputs["imageName"]).rsplit(":", 1)[0]
    return placeholder_digest(repository)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _sorted(value: Any) -> Any:
    """Maps with sorted keys all the way down, so renders are byte-for-byte repeatable.

    Numbers cross the engine's wire format as doubles; whole ones become ints again, as
    the Kubernetes schema types them.
    """
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class CheckSettings:
    """What the checks need from a stack file: schema version, production, exemptions, profile."""

    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    """``kubernetesVersion``: the schema version objects are validated against. Default 1.31."""
    production: bool = False
    """``production``: also run the production-only rules. Default false."""
    exemptions: tuple[Exemption, ...] = ()
    """``policyExemptions`` of the stack. Default none."""
    security_profile: SecurityProfile = DEFAULT_PROFILE
    """``securityProfile``: which profile's rules run. Default ``restricted``."""


@dataclass(frozen=True)
class Checks:
    """Schema errors and the policy report of one render."""

    schema_errors: tuple[SchemaError, ...]
    """Every schema violation found, empty when every object is valid."""
    report: Report
    """The policy report over every object."""

    @property
    def failed(self) -> bool:
        """True on any schema error or non-exempted mandatory violation."""
        return bool(self.schema_errors) or self.report.failed

    def text(self) -> str:
        """The schema errors and the policy report, as the render prints them."""
        lines = [f"Schema ({len(self.schema_errors)} errors):"]
        lines += [f"  {error}" for error in self.schema_errors] or ["  every object is valid"]
        return "\n".join([*lines, "", format_report(self.report)])


def check_settings(project_dir: Path, stack: str) -> CheckSettings:
    """Read ``kubernetesVersion``, ``production``, ``policyExemptions`` and ``securityProfile``.

    Any project may render; these keys are optional and default to 1.31, false and none.
    They are read as the program reads them (:func:`~hardened_k8s.stack_config.read_stack_settings`),
    so ``production: "true"`` means production here as it does in the program.
    """
    settings = read_stack_settings(project_dir, stack)
    return CheckSettings(
        kubernetes_version=settings.kubernetes_version,
        production=settings.production,
        exemptions=tuple(settings.policy_exemptions),
        security_profile=settings.security_profile,
    )


def check(objects: Sequence[RenderedObject], settings: CheckSettings) -> Checks:
    """Validate against the OpenAPI schema, then run every policy rule."""
    plain = [o.manifest for o in objects]
    return Checks(
        schema_errors=tuple(validate_objects(plain, settings.kubernetes_version)),
        report=evaluate(
            plain,
            production=settings.production,
            exemptions=settings.exemptions,
            security_profile=settings.security_profile,
        ),
    )


def render_stack(
    project_dir: Path, stack: str, out_root: Path, *, stdout: TextIO | None = None
) -> tuple[ProgramRun, Checks]:
    """Run, check, print the summary and the report, and write ``out_root/<stack>/``.

    Files are written only when the stack passes the schema and every mandatory rule;
    otherwise, as on invalid configuration (:class:`~hardened_k8s.config.ConfigError`) or
    objects declared twice (:class:`RenderError`), ``out_root/<stack>/`` is removed, so nothing that looks
    deployable is left from this render or an earlier one.
    """
    with paused_gc():
        return _render_stack(project_dir, stack, out_root, stdout or sys.stdout)


def _render_stack(project_dir: Path, stack: str, out_root: Path, stdout: TextIO) -> tuple[ProgramRun, Checks]:
    if not _STACK_NAME_RE.match(stack):
        raise ConfigError(
            [("--stack", f"{stack!r} is not a stack name; use letters, digits, '-', '_' and '.'")]
        )
    out_dir = out_root / stack
    try:
        settings = check_settings(project_dir, stack)
        _, stack_file = load_stack_file(project_dir, stack)
        unset = [key for key in RENDER_ASSUMES_SECRETS if not _sets(stack_file, key)]
        run = run_program(project_dir, stack, assume_secrets=unset)
        objects = manifests(run)
        duplicates = duplicate_objects(objects)
        if duplicates:
            raise RenderError(
                f"objects declared twice (kind-name): {', '.join(duplicates)}; two parts of the "
                "program give an object the same name, rename one"
            )
    except BaseException:
        remove_stale(out_dir)
        raise
    stdout.write(summary(run))
    used = secrets_used(stack_file.get("config") or {})
    for key in (key for key in unset if key in used):
        stdout.write(
            f"\nNote: secret {key} is not set in Pulumi.{stack}.yaml; rendered as {SECRET_PLACEHOLDER}. "
            f"Before a deploy: pulumi config set --stack {stack} --secret {key} <value>\n"
        )
    checks = check(objects, settings)
    if checks.failed:
        removed = remove_stale(out_dir)
        stdout.write(f"\nWrote nothing to {out_dir}/" + (" (removed the earlier render)" if removed else ""))
        stdout.write("\n\n")
    else:
        paths = write(objects, out_dir, project=run.project, stack=stack)
        stdout.write(f"\nWrote {len(paths)} Kubernetes objects to {out_dir}/\n\n")
    stdout.write(checks.text() + "\n")
    return run, checks


_STACK_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def _sets(stack_file: dict[str, Any], key: str) -> bool:
    """Whether the stack file sets ``key`` (namespaced by any project)."""
    return any(k.split(":", 1)[-1] == key for k in (stack_file.get("config") or {}))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hardened_k8s.render``: render each ``--stack``; the exit status is the worst one."""
    parser = argparse.ArgumentParser(prog="python -m hardened_k8s.render", description=__doc__)
    parser.add_argument("--stack", action="append", required=True, help="stack to render (repeatable)")
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="Pulumi project (default .)")
    parser.add_argument("--out", type=Path, default=None, help="output root (default <project>/build)")
    args = parser.parse_args(argv)
    project_dir = args.project_dir.resolve()
    out_root = (args.out or project_dir / "build").resolve()
    status = 0
    for stack in args.stack:
        try:
            _, checks = render_stack(project_dir, stack, out_root)
            if checks.failed:
                print(
                    f"error: stack {stack!r} fails the schema or a mandatory policy rule; "
                    "nothing was written",
                    file=sys.stderr,
                )
                status = max(status, 1)
        except ConfigError as exc:
            print(
                f"error: stack {stack!r} has invalid configuration; nothing was written:\n{exc}",
                file=sys.stderr,
            )
            status = max(status, 2)
        except RenderError as exc:
            print(f"error: stack {stack!r}: {exc}; nothing was written", file=sys.stderr)
            status = max(status, 1)
        print()
    return status


if __name__ == "__main__":
    # The process ends after the render, so the cyclic collector never needs to run: not when
    # render_stack's pause ends (one collection over every object of the run, 0.35 s at 100
    # services) and not at interpreter exit (gc.freeze exempts what is left, another 0.4 s).
    # The memory goes back to the OS with the process.
    gc.disable()
    exit_status = main()
    gc.freeze()
    sys.exit(exit_status)
