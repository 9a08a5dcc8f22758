"""Where the policy sits: what it imports, what imports it, and its registry of rules.

The policy is the ``hardened-k8s-rules`` distribution (``rules/``), imported under that name
only (0.2.0 dropped the library's re-exports of 0.1's paths). The import checks run in a fresh
interpreter each, since this test process has long loaded everything.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest

import hardened_k8s_rules
from hardened_k8s_rules.controls import RULE_IDS
from hardened_k8s_rules.policy import RULES, ObjectRule, StackRule
from hardened_k8s_rules.policy.rules import availability, network, pod_security, registry, stack, workload

from ..conftest import ROOT

PACK = ROOT / "policy"
RULES_DIR = ROOT / "rules"
NEUTRAL = {
    "hardened_k8s_rules",
    "hardened_k8s_rules.controls",
    "hardened_k8s_rules.exemptions",
    "hardened_k8s_rules.models",
    "hardened_k8s_rules.profiles",
}
"""The modules the policy may load besides its own: config-free data, in the same distribution."""


def _loaded_after(code: str, *, cwd: Path = ROOT) -> set[str]:
    """Modules a fresh interpreter loads to run ``code`` (beyond those its start-up loaded)."""
    script = (
        "import sys as _s\n_before = set(_s.modules)\n"
        + textwrap.dedent(code)
        + "\nimport json as _j\nprint(_j.dumps(sorted(set(_s.modules) - _before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _policy_modules(loaded: Iterable[str]) -> set[str]:
    """The policy's own modules, under their name in the rules distribution or the former one."""
    return {m for m in loaded if re.match(r"hardened_k8s(_rules)?\.policy(\.|$)", m)}


def _library_modules(loaded: Iterable[str]) -> set[str]:
    """Modules of the component library ``hardened_k8s`` (not of the rules distribution)."""
    return {m for m in loaded if m == "hardened_k8s" or m.startswith("hardened_k8s.")}


def _distributions(loaded: Iterable[str]) -> set[str]:
    """Distributions (normalised names) that provide the modules in ``loaded``."""
    providers = metadata.packages_distributions()
    tops = {m.partition(".")[0] for m in loaded} - set(sys.stdlib_module_names)
    return {_normal(d) for top in tops for d in providers.get(top, [])}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(*names: str) -> set[str]:
    """``names`` and every distribution they require, as installed here (extras left out)."""
    found: set[str] = set()
    todo = [_normal(n) for n in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" not in requirement:
                todo.append(_normal(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]))
    return found


def test_the_rules_distribution_requires_pydantic_alone() -> None:
    project = tomllib.loads((RULES_DIR / "pyproject.toml").read_text())["project"]
    assert project["name"] == "hardened-k8s-rules"
    assert [_normal(re.split(r"[<>=!~;\s]", r, maxsplit=1)[0]) for r in project["dependencies"]] == [
        "pydantic"
    ]
    assert _closure("hardened-k8s-rules") == {"hardened-k8s-rules"} | _closure("pydantic")


@pytest.mark.tools
def test_config_does_not_load_the_policy() -> None:
    loaded = _loaded_after("import hardened_k8s.config")
    assert _policy_modules(loaded) == set()
    assert {"hardened_k8s_rules.exemptions", "hardened_k8s_rules.controls"} <= loaded


@pytest.mark.tools
def test_validating_exemptions_and_ids_does_not_load_the_policy() -> None:
    loaded = _loaded_after(
        """
        from pydantic import ValidationError
        from hardened_k8s.config import ServiceSpec, StackSettings

        exemption = {"rule": "HARD-001", "resource": "Deployment/api", "reason": "Vendor image."}
        settings = StackSettings.model_validate({"production": True, "policyExemptions": [exemption]})
        assert settings.policy_exemptions[0].rule == "HARD-001"
        try:
            StackSettings.model_validate({"policyExemptions": [{**exemption, "rule": "HARD-999"}]})
        except ValidationError as error:
            assert "'HARD-999' is not a known rule id" in str(error), error
        else:
            raise SystemExit("HARD-999 was accepted")
        try:
            ServiceSpec.model_validate({"image": {"ref": "r@sha256:" + "1" * 64}, "runAsUser": 1000})
        except ValidationError as error:
            assert "greater than or equal to 10000" in str(error), error
        else:
            raise SystemExit("runAsUser 1000 was accepted")
        """
    )
    assert _policy_modules(loaded) == set()


@pytest.mark.tools
def test_policy_loads_only_its_distribution_and_pydantic() -> None:
    loaded = _loaded_after(
        """
        from hardened_k8s_rules.policy import evaluate
        assert not evaluate([], production=True).failed
        """
    )
    assert _library_modules(loaded) == set()
    rules = {m for m in loaded if m.startswith("hardened_k8s_rules")}
    assert rules - _policy_modules(rules) == NEUTRAL
    assert _distributions(loaded) <= _closure("hardened-k8s-rules")


def _pack_requirements() -> list[str]:
    lines = (PACK / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


@pytest.mark.tools
def test_pack_loads_only_what_its_requirements_name() -> None:
    """The pack's modules load the rules, pulumi-policy and pydantic, and nothing else.

    Each requirement is loaded (none is there for nothing), every distribution loaded comes
    with one of them, and the component library is neither a requirement nor loaded.
    """
    loaded = _loaded_after(
        """
        import crossguard
        assert crossguard.build_policies()
        """,
        cwd=PACK,
    )
    requirements = _pack_requirements()
    pinned = {_normal(r.split("==")[0]) for r in requirements if "==" in r}
    assert pinned == {"pulumi", "pulumi-policy", "pydantic"}
    paths = [r for r in requirements if "==" not in r]
    assert paths == ["../rules"], requirements
    assert (PACK / paths[0]).resolve() == RULES_DIR
    used = _distributions(loaded)
    assert pinned | {"hardened-k8s-rules"} <= used
    assert used <= _closure(*pinned, "hardened-k8s-rules")
    assert "hardened-k8s" not in used and _library_modules(loaded) == set()
    rules = {m for m in loaded if m.startswith("hardened_k8s_rules")}
    assert rules - _policy_modules(rules) == NEUTRAL


def _rules_modules() -> list[str]:
    """Every module of the rules distribution but its root, e.g. ``policy.rules.network``."""
    found = pkgutil.walk_packages(hardened_k8s_rules.__path__, prefix="hardened_k8s_rules.")
    return sorted(info.name.removeprefix("hardened_k8s_rules.") for info in found)


FORMER_PATHS = ["controls", "exemptions", "models", "profiles", "policy", "policy.rules.network"]
"""Import paths of 0.1 that re-exported the rules distribution until 0.2.0 dropped them."""


@pytest.mark.parametrize("name", FORMER_PATHS)
def test_the_rules_are_no_longer_reexported_under_their_former_library_name(name: str) -> None:
    """``hardened_k8s.<module>`` is gone; the module lives in ``hardened_k8s_rules`` alone."""
    assert name in _rules_modules()
    assert importlib.import_module(f"hardened_k8s_rules.{name}")
    with pytest.raises(ModuleNotFoundError, match=f"hardened_k8s.{name.split('.')[0]}"):
        importlib.import_module(f"hardened_k8s.{name}")


def test_the_library_has_no_module_of_the_rules_distribution() -> None:
    """No module of ``hardened_k8s`` shares a name with one of ``hardened_k8s_rules``."""
    import hardened_k8s

    library = {
        info.name.removeprefix("hardened_k8s.")
        for info in pkgutil.walk_packages(hardened_k8s.__path__, prefix="hardened_k8s.")
    }
    assert library, "the library's modules were not found"
    assert library & set(_rules_modules()) == set()


def test_rules_follow_the_shared_id_list() -> None:
    assert [rule.id for rule in RULES] == list(RULE_IDS)


def test_each_rule_is_declared_in_one_concern_module() -> None:
    modules = (pod_security, workload, network, availability, stack)
    ids = [rule.id for module in modules for rule in module.RULES]
    assert sorted(ids) == sorted(RULE_IDS)
    assert {rule.id for rule in pod_security.RULES} == {i for i in RULE_IDS if i.startswith("PSS-")}
    assert all(isinstance(rule, ObjectRule) for rule in (*pod_security.RULES, *workload.RULES))


def _rule(rule_id: str) -> StackRule:
    return StackRule(id=rule_id, severity="advisory", title="t", message="m", fix="f", check=lambda s: [])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (_rule("HARD-001"), "rule HARD-001 is declared twice"),
        (_rule("HARD-999"), "rule HARD-999 is not in hardened_k8s_rules.controls.RULE_IDS; add its id there"),
    ],
)
def test_registry_refuses_a_repeated_or_unlisted_id(extra: StackRule, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        registry.build_registry(RULES, [extra])


def test_registry_refuses_a_listed_id_without_a_rule() -> None:
    with pytest.raises(ValueError, match="no rule declares HARD-038; declare each in the concern module"):
        registry.build_registry([rule for rule in RULES if rule.id != "HARD-038"])
