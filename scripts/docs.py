"""The API reference and the rules reference: build them, and check what they are made of.

``build`` (``make docs``) writes the HTML reference of ``hardened_k8s`` and
``hardened_k8s_rules`` with pdoc into ``build/docs/`` and regenerates ``docs/rules.md`` from
the rule registry. ``check`` (``make lint``) reads the same pdoc documentation objects and
fails on:

* a public name (module, class, function, method, variable; pdoc's notion of public: no
  leading underscore, or listed in ``__all__``) without a docstring;
* a cross-reference (``:class:`...```, ``:func:`...```, ``:mod:`...``` and the other Sphinx
  roles pdoc links) that resolves to nothing: pdoc would print it as plain code, unlinked;
* a ``docs/rules.md`` that differs from what the registry generates (run ``make docs``).

Exit status 0 when the documentation is complete, 1 with every problem listed when not.
"""

from __future__ import annotations

import argparse
import builtins
import functools
import importlib
import pkgutil
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pdoc
import pdoc.doc
import pdoc.render_helpers

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hardened_k8s", "hardened_k8s_rules")
OUTPUT = ROOT / "build" / "docs"
RULES_REFERENCE = ROOT / "docs" / "rules.md"
ROLE_RE = re.compile(r":(?:py:)?(mod|class|func|meth|attr|data|obj|exc|const):`([^`]+)`")
"""A Sphinx cross-reference role, which pdoc turns into a link when it can resolve the target."""
ANNOTATION_WARNING = "Error parsing type annotation"
"""pdoc cannot evaluate the SDK's string annotations (``Output[T]``) and says so for each; it
then shows the annotation as written, which is what a reader should see anyway."""


def module_names() -> list[str]:
    """Every public module of both packages (no part of its name starts with ``_``).

    Walked with pkgutil rather than pdoc's ``submodules``, which keeps to a package's
    ``__all__``: ``hardened_k8s``'s lists the names it exports, not its modules.
    """
    names = []
    for package in PACKAGES:
        names.append(package)
        found = pkgutil.walk_packages(importlib.import_module(package).__path__, prefix=f"{package}.")
        names += [info.name for info in found if not any(p.startswith("_") for p in info.name.split("."))]
    return sorted(names)


@functools.cache
def load_modules() -> dict[str, pdoc.doc.Module]:
    """Every module of both packages as pdoc documents it, by full name (read once)."""
    _import_lazy_exports()
    return {name: pdoc.doc.Module(importlib.import_module(name)) for name in module_names()}


def _import_lazy_exports() -> None:
    """Import what ``hardened_k8s`` exports on first use (PEP 562), so pdoc finds each name.

    pdoc looks ``__all__`` names up in the module's ``__dict__`` and does not call the module's
    ``__getattr__``; once looked up, each name is there and documented as taken from its home.
    """
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            getattr(module, name)


def _is_public(doc: pdoc.doc.Doc[Any], module: pdoc.doc.Module) -> bool:
    """pdoc's default template's ``is_public``, undocumented members included."""
    if doc.name in {"__init__", "__doc__"}:
        return False
    if isinstance(doc, pdoc.doc.Variable) and doc.is_typevar:
        return False
    if doc.qualname.split(".")[-1] in (getattr(module.obj, "__all__", None) or []):
        return True
    return not doc.name.startswith("_")


def _members(namespace: pdoc.doc.Namespace[Any], module: pdoc.doc.Module) -> Iterator[pdoc.doc.Doc[Any]]:
    """The public members ``namespace`` defines itself (nested classes' members too)."""
    for member in namespace.own_members:
        if member.taken_from[0] != module.modulename or not _is_public(member, module):
            continue
        yield member
        if isinstance(member, pdoc.doc.Class):
            yield from _members(member, module)


def _enum_member(doc: pdoc.doc.Doc[Any]) -> bool:
    return isinstance(doc, pdoc.doc.Variable) and doc.is_enum_member


def _documented_elsewhere(member: pdoc.doc.Doc[Any], modules: dict[str, pdoc.doc.Module]) -> bool:
    """Whether ``member`` is a variable another module defines and documents, re-exported here.

    A variable's value (a tuple, a dict) does not say where it was defined, so pdoc takes it
    for the re-exporting module's own; its docstring is where it is assigned.
    """
    if not isinstance(member, pdoc.doc.Variable):
        return False
    for module in modules.values():
        if module.modulename == member.modulename:
            continue
        origin = module.members.get(member.name)
        if origin is not None and origin.obj is member.obj and origin.docstring.strip():
            return True
    return False


def missing_docstrings(modules: dict[str, pdoc.doc.Module]) -> list[str]:
    """Public names without a docstring, as ``module.qualname: kind has no docstring``."""
    problems = []
    for name, module in modules.items():
        if not module.docstring.strip():
            problems.append(f"{name}: module has no docstring")
        for member in _members(module, module):
            if member.docstring.strip() or _documented_elsewhere(member, modules):
                continue
            # An enum's members are its values, documented by the enum's own docstring.
            if not _enum_member(member):
                problems.append(f"{member.fullname}: {member.kind} has no docstring; say what it is")
    return problems


def _importable(identifier: str) -> bool:
    """Whether ``identifier`` names something of another package or the standard library."""
    if hasattr(builtins, identifier):
        return True
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(target, attr):
                return False
            target = getattr(target, attr)
        return True
    return False


def resolves(
    identifier: str, module: pdoc.doc.Module, namespace: str, modules: dict[str, pdoc.doc.Module]
) -> bool:
    """Whether pdoc can link ``identifier`` as written in ``module`` (inside ``namespace``)."""
    identifier = identifier.lstrip("~!").removesuffix("()")
    if identifier.startswith("."):
        base = module.modulename if module.is_package else module.modulename.rpartition(".")[0]
        while identifier.startswith(".."):
            identifier = identifier[1:]
            base = base.rpartition(".")[0]
        identifier = base + identifier
    for qualname in pdoc.render_helpers.qualname_candidates(identifier, namespace):
        if module.get(qualname) is not None:
            return True
    if identifier in modules:
        return True
    try:
        sources = list(pdoc.render_helpers.possible_sources(modules, identifier))
    except ValueError:
        sources = []
    if any(modules[m].get(q) is not None for m, q in sources if m in modules):
        return True
    if identifier.split(".")[0] in PACKAGES:
        return False
    return _importable(identifier)


def broken_references(modules: dict[str, pdoc.doc.Module]) -> list[str]:
    """Cross-references in docstrings that resolve to nothing."""
    problems = []
    for module in modules.values():
        docs: list[pdoc.doc.Doc[Any]] = [module, *_members(module, module)]
        for doc in docs:
            namespace = doc.qualname if isinstance(doc, pdoc.doc.Class) else doc.qualname.rpartition(".")[0]
            for role, target in ROLE_RE.findall(doc.docstring):
                if not resolves(target, module, namespace, modules):
                    where = doc.fullname if doc is not module else module.modulename
                    problems.append(f"{where}: :{role}:`{target}` resolves to nothing; name what exists")
    return problems


def build(output: Path = OUTPUT) -> None:
    """The HTML reference into ``output``, and ``docs/rules.md`` from the registry."""
    from rules_reference import rules_markdown

    _import_lazy_exports()
    pdoc.render.configure(docformat="restructuredtext", search=True, show_source=False)
    # Every module by name: pdoc walks a package's submodules only as far as its __all__ goes.
    # A module it also reaches through its package is documented once.
    warnings.filterwarnings("ignore", message="The module specification", category=UserWarning)
    pdoc.pdoc(*module_names(), output_directory=output)
    RULES_REFERENCE.write_text(rules_markdown())
    print(f"API reference: {output.relative_to(ROOT)}/index.html; rules: {RULES_REFERENCE.relative_to(ROOT)}")


def check() -> list[str]:
    """Every problem of the documentation (empty when complete)."""
    from rules_reference import rules_markdown

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ANNOTATION_WARNING, category=UserWarning)
        modules = load_modules()
        problems = missing_docstrings(modules) + broken_references(modules)
    if not RULES_REFERENCE.exists() or RULES_REFERENCE.read_text() != rules_markdown():
        problems.append(
            f"{RULES_REFERENCE.relative_to(ROOT)} is not what the rule registry generates; run make docs"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="where build writes the HTML (default build/docs)"
    )
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.output.resolve())
        return 0
    problems = check()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("docs check passed: every public name documented, every cross-reference resolves")
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=ANNOTATION_WARNING, category=UserWarning)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
