"""Where an image comes from: the commit it names, the tree it was built from, who built it.

Three facts decide whether an image may be deployed or reused:

* its tag names one full commit (``sha-<40 hex>``): a 7-digit prefix can name two commits;
* the bytes were built from exactly that commit: a working tree with uncommitted changes
  under the build context is refused before anything is pushed (:func:`uncommitted_paths`);
* CI built it: the publish step labels its builds with the workflow run and the git ref
  (:data:`CI_RUN_LABEL`, :data:`CI_REF_LABEL`) and reuses, or takes build cache from, only
  an image whose labels say so (:func:`provenance_problems`).

Labels are written by whoever builds, so they record CI's intent rather than prove it: what
stops a forged label is that only CI's registry environment can push to the repositories
production pulls (``docs/threat-model.md``). This module imports neither Pulumi nor Docker.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

FULL_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
"""A full git commit id: 40 hex digits (SHA-1 repositories) or 64 (SHA-256 repositories)."""

REVISION_LABEL = "org.opencontainers.image.revision"
"""The OCI label of the commit an image was built from (the Containerfiles' ``REVISION``)."""
CI_RUN_LABEL = "dev.hardened-k8s.ci.run"
"""The URL of the CI workflow run that built the image: ``<server>/<owner>/<repo>/actions/runs/<id>``."""
CI_REF_LABEL = "dev.hardened-k8s.ci.ref"
"""The git ref CI built the image from, e.g. ``refs/heads/main``."""
MAIN_REF = "refs/heads/main"
"""The only ref whose CI builds are promoted and seed build caches."""


def uncommitted_paths(directory: str | Path) -> list[str] | None:
    """Paths under ``directory`` that differ from the checked-out commit (modified, staged, deleted
    or untracked, since a build context sends untracked files too); ``None`` when ``directory`` is
    not inside a git checkout or git is missing. Runs ``git status``: call it only where a
    process may start (an ``up``, not a preview)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def ci_run_prefix(server: str, repository: str) -> str:
    """The prefix every run URL of ``repository`` (``owner/name``) on ``server`` starts with."""
    return f"{server.rstrip('/')}/{repository}/actions/runs/"


def provenance_problems(
    labels: Mapping[str, str], *, revision: str | None, run_prefix: str, ref: str = MAIN_REF
) -> list[str]:
    """Why an image's ``labels`` do not show a CI build of ``ref`` in this repository (and of
    ``revision``, unless None); empty when they do."""
    problems = []
    if revision is not None and labels.get(REVISION_LABEL) != revision:
        problems.append(f"{REVISION_LABEL} is {labels.get(REVISION_LABEL)!r}, not {revision}")
    run = labels.get(CI_RUN_LABEL, "")
    if not run.startswith(run_prefix) or not run[len(run_prefix) :].split("/")[0].isdigit():
        problems.append(f"{CI_RUN_LABEL} is {run or None!r}, not a run under {run_prefix}")
    if labels.get(CI_REF_LABEL) != ref:
        problems.append(f"{CI_REF_LABEL} is {labels.get(CI_REF_LABEL)!r}, not {ref}")
    return problems
