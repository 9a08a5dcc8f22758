"""Offline render: a stack's Kubernetes objects as YAML files, checked, with a summary.

``python -m hardened_k8s.render --stack dev`` runs the project's real program on the mock
engine (:mod:`hardened_k8s.mock_engine`), writes every Kubernetes object it would create
to ``build/<stack>/<kind>-<name>.yaml``, prints the component tree, the images the stack
would build and its outputs, then checks every object against the Kubernetes OpenAPI schema
of the stack's ``kubernetesVersion`` (strict) and runs every hardening policy rule, with the
stack's ``policyExemptions``. Exit status: 0 rendered and clean; 1 a schema error or a
mandatory policy violation (files are still written, for review); 2 the stack config is
invalid (nothing written).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from .config import DEFAULT_KUBERNETES_VERSION, ConfigError
from .mock_engine import (
    PLACEHOLDER_DIGEST,
    SECRET_PLACEHOLDER,
    ProgramRun,
    Registration,
    load_stack_file,
    run_program,
    unwrap_secrets,
)
from .policy import EXEMPTION_LIST, Exemption, Report, evaluate, format_report
from .policy.schema import SchemaError, validate_objects
from .validation import describe_error

_HEAD_KEYS = ("apiVersion", "kind", "metadata")
# libyaml's emitter writes the same YAML as the pure-Python one, several times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class RenderedObject:
    """One Kubernetes object ready to write: its manifest and the file it goes to."""

    registration: Registration
    manifest: dict[str, Any]

    @property
    def filename(self) -> str:
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
        f"# Image digests {PLACEHOLDER_DIGEST[:15]}... are placeholders; secrets read {SECRET_PLACEHOLDER}.\n"
    )
    body: str = yaml.dump(obj.manifest, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
    return header + body


def write(objects: Sequence[RenderedObject], out_dir: Path, *, project: str, stack: str) -> list[Path]:
    """Replace ``out_dir`` with one file per object; all or nothing."""
    names = [o.filename for o in objects]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two objects would be written to the same file: {', '.join(duplicates)}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for obj in objects:
            (staging / obj.filename).write_text(to_yaml(obj, project=project, stack=stack))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / n for n in sorted(names)]


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
            f"    digest:        {PLACEHOLDER_DIGEST} (placeholder until pushed)",
        ]
    return [*lines, ""]


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
    """What the checks need from a stack file: schema version, production, exemptions."""

    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    production: bool = False
    exemptions: tuple[Exemption, ...] = ()


@dataclass(frozen=True)
class Checks:
    """Schema errors and the policy report of one render."""

    schema_errors: tuple[SchemaError, ...]
    report: Report

    @property
    def failed(self) -> bool:
        """True on any schema error or non-exempted mandatory violation."""
        return bool(self.schema_errors) or self.report.failed

    def text(self) -> str:
        lines = [f"Schema ({len(self.schema_errors)} errors):"]
        lines += [f"  {error}" for error in self.schema_errors] or ["  every object is valid"]
        return "\n".join([*lines, "", format_report(self.report)])


def check_settings(project_dir: Path, stack: str) -> CheckSettings:
    """Read ``kubernetesVersion``, ``production`` and ``policyExemptions`` of a stack file.

    Any project may render; these keys are optional and default to 1.31, false and none.
    """
    project, stack_file = load_stack_file(project_dir, stack)
    config = {
        key.split(":", 1)[1]: value
        for key, value in (stack_file.get("config") or {}).items()
        if key.startswith(f"{project}:")
    }
    try:
        exemptions = EXEMPTION_LIST.validate_python(config.get("policyExemptions") or [])
    except ValidationError as exc:
        described = (describe_error(e, root=Exemption) for e in exc.errors())
        raise ConfigError([(f"policyExemptions{path}", message) for path, message in described]) from None
    return CheckSettings(
        kubernetes_version=str(config.get("kubernetesVersion", DEFAULT_KUBERNETES_VERSION)),
        production=str(config.get("production", False)).lower() == "true",
        exemptions=tuple(exemptions),
    )


def check(objects: Sequence[RenderedObject], settings: CheckSettings) -> Checks:
    """Validate against the OpenAPI schema, then run every policy rule."""
    plain = [o.manifest for o in objects]
    return Checks(
        schema_errors=tuple(validate_objects(plain, settings.kubernetes_version)),
        report=evaluate(plain, production=settings.production, exemptions=settings.exemptions),
    )


def render_stack(
    project_dir: Path, stack: str, out_root: Path, *, stdout: TextIO | None = None
) -> tuple[ProgramRun, Checks]:
    """Run, write ``out_root/<stack>/``, check, and print the summary and the report.

    Raises :class:`ConfigError` (before anything is written) on invalid configuration.
    """
    stdout = stdout or sys.stdout
    settings = check_settings(project_dir, stack)
    run = run_program(project_dir, stack)
    objects = manifests(run)
    stdout.write(summary(run))
    paths = write(objects, out_root / stack, project=run.project, stack=stack)
    stdout.write(f"\nWrote {len(paths)} Kubernetes objects to {out_root / stack}/\n\n")
    checks = check(objects, settings)
    stdout.write(checks.text() + "\n")
    return run, checks


def main(argv: Sequence[str] | None = None) -> int:
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
                print(f"error: stack {stack!r} fails the schema or a mandatory policy rule", file=sys.stderr)
                status = max(status, 1)
        except ConfigError as exc:
            print(
                f"error: stack {stack!r} has invalid configuration; nothing was written:\n{exc}",
                file=sys.stderr,
            )
            status = max(status, 2)
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
