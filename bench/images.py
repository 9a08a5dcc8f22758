"""Benchmark the service images: size, layer caching and digest round trip.

For each service under ``services/`` this builds the image clean (no cache) with the shared
build spec, then reports:

* final image size / builder stage size (target <= 0.40): how much of the toolchain stays out;
* rebuild time after editing only application source / clean build time (target <= 0.20):
  whether the Containerfile's layer order keeps the dependency layers cached;
* the digest the push reported against the digest the registry serves for every tag.

It uses the real-build test tier's harness (``tests/image/engine.py``): a private dockerd
(or ``$DOCKER_HOST``), a local registry on 127.0.0.1:5000 and a debootstrap Debian base.
Needs root and Debian's docker.io, docker-registry and debootstrap (``scripts/ci-image-deps.sh``).

    python bench/images.py [--output bench/IMAGES.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZE_TARGET = 0.40
REBUILD_TARGET = 0.20


def load_engine() -> ModuleType:
    """``tests/image/engine.py``, loaded by path (``tests`` is not an installed package)."""
    spec = importlib.util.spec_from_file_location("image_engine", ROOT / "tests" / "image" / "engine.py")
    if spec is None or spec.loader is None:
        raise SystemExit("tests/image/engine.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Row:
    service: str
    image: str
    clean_s: float
    rebuild_s: float
    final_mb: float
    builder_mb: float
    pushed: dict[str, str]
    served: dict[str, str]

    @property
    def size_ratio(self) -> float:
        return self.final_mb / self.builder_mb

    @property
    def rebuild_ratio(self) -> float:
        return self.rebuild_s / self.clean_s

    @property
    def digests_match(self) -> bool:
        return bool(self.pushed) and self.pushed == self.served


def touch_source(context: Path, package: str) -> Path:
    """Change application source only: append a comment to the package's ``__init__.py``."""
    init = context / package / "__init__.py"
    init.write_text(init.read_text() + f"# benchmark edit {time.time_ns()}\n")
    return init


def measure(engine: ModuleType, h: Any, service: Any, revision: str) -> Row:
    spec = engine.service_spec(service, revision=revision)
    clean = h.build(spec, nocache=True)
    builder = h.build(replace(spec, target="builder", tags=("stage-builder",)))
    pushed = h.push(spec)
    served = {ref: engine.registry_digest(ref) for ref in spec.refs}
    with tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
        context = Path(tmp) / service.directory
        shutil.copytree(service.context, context)
        package = service.directory.replace("-", "_")
        touch_source(context, package)
        rebuild = h.build(engine.with_context(spec, context))
    if rebuild.image_id == clean.image_id:
        raise SystemExit(f"{service}: the source edit did not change the image")
    return Row(
        service=service.directory,
        image=spec.repository,
        clean_s=clean.seconds,
        rebuild_s=rebuild.seconds,
        final_mb=h.image_size(clean.image_id) / 1e6,
        builder_mb=h.image_size(builder.image_id) / 1e6,
        pushed=pushed,
        served=served,
    )


def mark(value: float, target: float) -> str:
    return f"{value:.2f} {'ok' if value <= target else 'above target'}"


def table(rows: list[Row]) -> str:
    out = [
        "| service | final MB | builder MB | final/builder (<= 0.40) | clean build s "
        "| rebuild after source edit s | rebuild/clean (<= 0.20) | push digest = registry digest |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        digest = next(iter(r.pushed.values()), "")
        out.append(
            f"| {r.service} | {r.final_mb:.0f} | {r.builder_mb:.0f} | {mark(r.size_ratio, SIZE_TARGET)} "
            f"| {r.clean_s:.1f} | {r.rebuild_s:.1f} | {mark(r.rebuild_ratio, REBUILD_TARGET)} "
            f"| {'yes' if r.digests_match else 'NO'}, {len(r.pushed)} tags, `{digest[:19]}…` |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args()

    engine = load_engine()
    missing = engine.missing_tools()
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    revision = engine.git_revision()
    started = time.monotonic()
    with engine.Harness() as harness:
        setup_s = time.monotonic() - started
        rows = [measure(engine, harness, service, revision) for service in engine.SERVICES]
    total_s = time.monotonic() - started

    report = "\n".join(
        [
            table(rows),
            "",
            f"Engine, registry and base image ready in {setup_s:.0f} s; whole run {total_s:.0f} s "
            f"({platform.machine()}, {os.cpu_count()} cores). "
            "Clean build = `nocache`, base image present, dependencies downloaded from PyPI. "
            "Rebuild = the same build after appending a comment to the package's `__init__.py`.",
        ]
    )
    print(report)
    if args.output:
        args.output.write_text(report + "\n")
    ok = all(r.digests_match for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
