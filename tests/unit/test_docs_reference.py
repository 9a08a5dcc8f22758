"""The rules reference and the API reference's checks (scripts/rules_reference.py, scripts/docs.py).

``docs/rules.md`` is generated from the rule registry: the committed file must be exactly
what the registry generates, one section per rule in registry order. The documentation
check of ``make lint`` is shown to catch what it is for, on modules written for the test:
an undocumented public name and a cross-reference to nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pdoc.doc
import pytest

from hardened_k8s_rules.controls import RULE_IDS
from hardened_k8s_rules.policy.rules import RULES, RULES_BY_ID

from ..conftest import ROOT


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "scripts"))


# pdoc cannot evaluate the SDK's string annotations (``Output[T]``) and warns for each.
pytestmark = pytest.mark.filterwarnings("ignore:Error parsing type annotation:UserWarning")

rules_reference = _script("rules_reference")
docs = _script("docs")

SECTION = re.compile(r"^## (?P<id>[A-Z]+-\d{3}): (?P<title>.+)\n\n(?P<body>(?:- .+\n)+)", re.MULTILINE)


def test_the_committed_rules_reference_is_what_the_registry_generates() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == rules_reference.rules_markdown(), (
        "docs/rules.md is stale: run make docs"
    )


def test_the_rules_reference_lists_every_rule_of_the_registry_in_order() -> None:
    sections = list(SECTION.finditer(rules_reference.rules_markdown()))
    assert [s["id"] for s in sections] == [rule.id for rule in RULES] == list(RULE_IDS)
    for section in sections:
        rule = RULES_BY_ID[section["id"]]
        fields = dict(line[2:].split(":** ", 1) for line in section["body"].splitlines())
        assert section["title"] == rule.title
        assert fields["**Severity"] == rule.severity
        assert fields["**Checks"] == rule.message
        assert fields["**Fix"] == rule.fix
        assert f"`rule: {rule.id}`" in fields["**Exempt"]
        assert ("production stacks only" in fields["**Applies to"]) is rule.production_only


def test_the_rules_reference_names_each_rules_profiles() -> None:
    text = rules_reference.rules_markdown()
    assert "## HARD-005" in text and "## HARD-039" in text
    hard_005 = text.split("## HARD-005", 1)[1].split("\n## ", 1)[0]
    hard_039 = text.split("## HARD-039", 1)[1].split("\n## ", 1)[0]
    assert "`restricted`" in hard_005 and "openshift" not in hard_005
    assert "`openshift-restricted-v2`" in hard_039 and "every profile" not in hard_039


@pytest.fixture
def written_module(tmp_path: Path) -> Iterator[Callable[[str], pdoc.doc.Module]]:
    made: list[str] = []

    def write(source: str) -> pdoc.doc.Module:
        name = f"docs_check_sample_{len(made)}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        made.append(name)
        return pdoc.doc.Module(module)

    yield write
    for name in made:
        sys.modules.pop(name, None)


def test_an_undocumented_public_name_is_reported(written_module: Callable[[str], pdoc.doc.Module]) -> None:
    module = written_module(
        '''
        """A module."""

        LIMIT = 3

        def helper() -> None:
            pass

        def _private() -> None:
            pass

        class Thing:
            """A thing."""

            size: int

            def grow(self) -> None:
                pass
        '''
    )
    problems = docs.missing_docstrings({module.modulename: module})
    name = module.modulename
    assert sorted(problems) == sorted(
        f"{name}.{qualname}: {kind} has no docstring; say what it is"
        for qualname, kind in [
            ("LIMIT", "variable"),
            ("helper", "function"),
            ("Thing.size", "variable"),
            ("Thing.grow", "function"),
        ]
    )


def test_a_documented_module_passes(written_module: Callable[[str], pdoc.doc.Module]) -> None:
    module = written_module(
        '''
        """A module; see :func:`helper` and :class:`hardened_k8s.config.ConfigError`."""

        LIMIT = 3
        """How many."""

        def helper() -> None:
            """Help, returning :data:`LIMIT` nothing."""
        '''
    )
    modules = {**docs.load_modules(), module.modulename: module}
    assert docs.missing_docstrings({module.modulename: module}) == []
    assert [p for p in docs.broken_references(modules) if module.modulename in p] == []


def test_a_reference_to_nothing_is_reported(written_module: Callable[[str], pdoc.doc.Module]) -> None:
    module = written_module(
        '''
        """A module; see :func:`helpr` and :class:`hardened_k8s.config.NoSuchError`."""

        def helper() -> None:
            """Like :mod:`pathlib` and :class:`pulumi.Output`, which exist, and :func:`os.nope`."""
        '''
    )
    modules = {**docs.load_modules(), module.modulename: module}
    problems = [p for p in docs.broken_references(modules) if p.startswith(module.modulename)]
    name = module.modulename
    assert sorted(problems) == sorted(
        [
            f"{name}: :func:`helpr` resolves to nothing; name what exists",
            f"{name}: :class:`hardened_k8s.config.NoSuchError` resolves to nothing; name what exists",
            f"{name}.helper: :func:`os.nope` resolves to nothing; name what exists",
        ]
    )


def test_the_libraries_documentation_is_complete() -> None:
    """What ``make lint`` runs: both packages, every public name, every reference."""
    assert docs.check() == []
