"""What CI publishes and reuses: ``scripts/images.py publish`` against an in-memory registry.

The registry here answers the ``skopeo`` and ``docker`` command lines the script runs, as the
real ones would (the image tier runs the same function against a real engine and registry):
a tag serves a manifest whose SHA-256 is its digest, and ``skopeo inspect`` of a digest gives
the labels the build put on the image.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from hardened_k8s.build import BuildSpec, build_spec, sha_tag
from hardened_k8s.config import ConfigError
from hardened_k8s.provenance import CI_REF_LABEL, CI_RUN_LABEL, REVISION_LABEL

from ..conftest import script

images = script("images")
REVISION = "0123456789abcdef0123456789abcdef01234567"
REPO = "quay.io/example/store-api"
PRIMARY = f"{REPO}:sha-{REVISION}"
CI = images.CiRun("https://github.com", "example/hardened-k8s", "4242", "refs/heads/main")


@dataclass
class Registry:
    """Tags to manifests, digests to labels; the engine's last build; every command run."""

    tags: dict[str, bytes] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    built: dict[str, str] = field(default_factory=dict)
    """The labels of the image the engine holds under each tag it built."""
    built_labels: dict[str, str] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    push_instead: dict[str, str] | None = None
    """Labels of the image someone else pushes under a tag while this push runs (a race)."""

    def put(self, ref: str, labels: dict[str, str]) -> str:
        manifest = json.dumps({"ref": ref, "labels": labels}, sort_keys=True).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.tags[ref] = manifest
        self.labels[digest] = labels
        return digest

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        argv = list(argv)
        self.commands.append(argv)
        if argv[:2] == ["skopeo", "inspect"]:
            ref = argv[-1].removeprefix("docker://")
            if "--raw" in argv:
                if ref not in self.tags:
                    return self._done(1, b"", b"manifest unknown")
                return self._done(0, self.tags[ref])
            digest = ref.split("@", 1)[1]
            return self._done(0, json.dumps({"Digest": digest, "Labels": self.labels[digest]}).encode())
        if argv[:2] == ["docker", "build"]:
            pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg in ("--label", "--build-arg")]
            values = dict(pair.split("=", 1) for pair in pairs)
            labels = {k: v for k, v in values.items() if "." in k}
            labels[REVISION_LABEL] = values["REVISION"]
            self.built_labels = labels
            return self._done(0, b"built")
        if argv[:2] == ["docker", "push"]:
            labels = self.built_labels if self.push_instead is None else self.push_instead
            self.put(argv[2], labels)
            return self._done(0, b"pushed")
        raise AssertionError(f"unexpected command {argv}")

    @staticmethod
    def _done(code: int, out: bytes, err: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess([], code, out, err)

    def ran(self, verb: str) -> list[list[str]]:
        return [c for c in self.commands if c[:2] == ["docker", verb]]


def spec() -> BuildSpec:
    return build_spec(
        "store-api",
        context="services/store-api",
        registry="quay.io/example",
        version="1.2.3",
        revision=REVISION,
    )


def ci_labels(revision: str = REVISION, *, ref: str = "refs/heads/main", run: str = CI.url) -> dict[str, str]:
    return {REVISION_LABEL: revision, CI_RUN_LABEL: run, CI_REF_LABEL: ref}


def test_tags_name_the_full_commit() -> None:
    assert sha_tag(REVISION) == f"sha-{REVISION}"
    assert spec().tags == (f"sha-{REVISION}", "1.2.3")
    with pytest.raises(ValueError, match=r"not a full git commit SHA .*`git rev-parse HEAD`"):
        sha_tag(REVISION[:7])


def test_a_fresh_revision_is_built_with_ci_labels_and_pushed() -> None:
    registry = Registry()
    done = images.publish(spec(), ci=CI, run=registry)
    assert done.reused is False
    (build,) = registry.ran("build")
    assert f"{CI_RUN_LABEL}={CI.url}" in build and f"{CI_REF_LABEL}=refs/heads/main" in build
    assert "--cache-from" not in build  # nothing CI pushed from main to take layers from
    assert [c[2] for c in registry.ran("push")] == [PRIMARY, f"{REPO}:1.2.3"]
    assert done.ref == f"{REPO}@sha256:{hashlib.sha256(registry.tags[PRIMARY]).hexdigest()}"


def test_an_image_ci_pushed_for_this_revision_is_kept() -> None:
    registry = Registry()
    digest = registry.put(PRIMARY, ci_labels())
    done = images.publish(spec(), ci=CI, run=registry)
    assert (done.reused, done.ref) == (True, f"{REPO}@{digest}")
    assert registry.ran("build") == registry.ran("push") == []


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({REVISION_LABEL: REVISION}, f"{CI_RUN_LABEL} is None"),  # a developer's `pulumi up`
        ({}, f"{REVISION_LABEL} is None"),  # anything else pushed under the tag
        (ci_labels(ref="refs/pull/7/merge"), f"{CI_REF_LABEL} is 'refs/pull/7/merge'"),
        (ci_labels(run="https://github.com/fork/hardened-k8s/actions/runs/1"), "not a run under"),
        (ci_labels("f" * 40), f"{REVISION_LABEL} is '{'f' * 40}'"),
    ],
    ids=["developer push", "unlabelled", "pull request build", "other repository", "other revision"],
)
def test_a_tag_with_a_foreign_digest_is_refused(labels: dict[str, str], why: str) -> None:
    registry = Registry()
    digest = registry.put(PRIMARY, labels)
    with pytest.raises(images.ProvenanceError) as info:
        images.publish(spec(), ci=CI, run=registry)
    message = str(info.value)
    assert message.startswith(f"{PRIMARY} is {digest}, which CI did not build"), message
    assert why in message and "delete the tag" in message
    assert registry.ran("build") == registry.ran("push") == []


def test_a_tag_pushed_by_someone_else_during_the_push_is_refused() -> None:
    registry = Registry(push_instead={REVISION_LABEL: REVISION})
    with pytest.raises(images.ProvenanceError, match="which CI did not build"):
        images.publish(spec(), ci=CI, run=registry)


def test_cache_only_from_the_version_image_ci_pushed_from_main() -> None:
    registry = Registry()
    digest = registry.put(f"{REPO}:1.2.3", ci_labels("e" * 40))
    images.publish(spec(), ci=CI, run=registry)
    (build,) = registry.ran("build")
    assert build[build.index("--cache-from") + 1] == f"{REPO}@{digest}"  # by digest, not the tag


@pytest.mark.parametrize(
    "labels",
    [{REVISION_LABEL: "e" * 40}, ci_labels("e" * 40, ref="refs/heads/feature")],
    ids=["developer push", "other branch"],
)
def test_no_cache_from_a_version_image_ci_did_not_push_from_main(labels: dict[str, str]) -> None:
    registry = Registry()
    registry.put(f"{REPO}:1.2.3", labels)
    done = images.publish(spec(), ci=CI, run=registry)
    (build,) = registry.ran("build")
    assert "--cache-from" not in build and done.reused is False


def test_publish_outside_ci_names_the_missing_variables() -> None:
    with pytest.raises(ConfigError) as info:
        images.CiRun.from_env({"GITHUB_REPOSITORY": "example/hardened-k8s"})
    message = str(info.value)
    assert "GITHUB_SERVER_URL, GITHUB_RUN_ID, GITHUB_REF" in message and "image.ref" in message
    run = images.CiRun.from_env(
        {
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "example/hardened-k8s",
            "GITHUB_RUN_ID": "9",
            "GITHUB_REF": "refs/heads/main",
        }
    )
    assert run.url == "https://github.com/example/hardened-k8s/actions/runs/9"
