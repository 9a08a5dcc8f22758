"""Every command README.md and docs/ show in a ``sh`` block still exists; the README example runs.

A reader copies these commands; a renamed make target, a moved script, a module or a flag
that is gone would send them to an error. Each command is checked in this process, without
running it: make targets against the Makefile, scripts and paths against the tree,
``python -m`` modules by import lookup, pytest markers against ``pyproject.toml``, and the
``--flags`` of the project's own scripts and modules against their source.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ROOT
from ..tiers import tier_markers

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Words that run the command after them (with their own options skipped).
PREFIXES = {"time", "/usr/bin/time", "sudo", "env", "exec"}
PYTHONS = {"python", "python3", "venv/bin/python", "$(BIN)/python"}


def documented_commands(path: Path) -> Iterator[str]:
    """The commands of every ``sh`` block of ``path``: one per line, comments and line
    continuations resolved."""
    for block in SH_BLOCK.findall(path.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                yield command


def make_targets() -> set[str]:
    """The targets the Makefile defines (rules and ``.PHONY`` names)."""
    text = (ROOT / "Makefile").read_text()
    targets = {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.MULTILINE)}
    for phony in re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE):
        targets.update(phony.split())
    return targets - {".PHONY"}


def _module_source(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    # A package run with -m runs its __main__.
    main = origin.with_name("__main__.py")
    return main if origin.name == "__init__.py" and main.exists() else origin


def _flags_missing(source: Path, words: list[str]) -> list[str]:
    """The ``--flags`` of ``words`` that ``source`` (a script of this project) never names."""
    text = source.read_text()
    flags = [word.split("=", 1)[0] for word in words if word.startswith("--")]
    return [f"{flag} is not an option of {source.name}" for flag in flags if f'"{flag}"' not in text]


def _check_python(words: list[str]) -> list[str]:
    if words[:2] == ["-m", "pytest"]:
        return _check_pytest(words[2:])
    if words[:1] == ["-m"]:
        module = words[1]
        try:
            source = _module_source(module)
        except ModuleNotFoundError:
            source = None
        if source is None:
            return [f"no module {module}"]
        if not source.is_relative_to(ROOT):
            return []
        return _flags_missing(source, words[2:])
    script = ROOT / words[0]
    if not script.is_file():
        return [f"no script {words[0]}"]
    return _flags_missing(script, words[1:])


def _check_pytest(words: list[str]) -> list[str]:
    problems = []
    markers = set(tier_markers(ROOT))
    for option, value in itertools.pairwise(words):
        if option == "-m":
            used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", value)) - {"not", "and", "or"}
            problems += [f"no pytest marker {m}" for m in sorted(used - markers)]
    paths = [w for w in words if not w.startswith("-") and "/" in w]
    problems += [f"no test path {p}" for p in paths if not (ROOT / p).exists()]
    return problems


def _repository_paths(words: list[str]) -> list[str]:
    """Words naming a file or directory of the repository (``scripts/x.sh``, ``./rules``)."""
    tops = {p.name for p in ROOT.iterdir()}
    found = []
    for word in words:
        path = word.split("=", 1)[-1].removeprefix("./")
        if "<" in path or "$" in path or "*" in path or "://" in path:
            continue
        if path.partition("/")[0] in tops and "/" in path:
            found.append(path)
    return found


def check_command(command: str) -> list[str]:
    """Why ``command`` would not run as documented (empty when every part of it exists)."""
    problems: list[str] = []
    for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", command):
        try:
            words = shlex.split(part)
        except ValueError as error:
            return [f"cannot parse {part!r}: {error}"]
        while words and (re.fullmatch(r"[A-Z_]+=\S*", words[0]) or words[0] in PREFIXES):
            prefix = words.pop(0)
            if prefix == "sudo":  # sudo's own options (-u USER, -H, -n) come before the command
                while words and words[0].startswith("-"):
                    option = words.pop(0)
                    if option in {"-u", "-g"} and words:
                        words.pop(0)
        if not words:
            continue
        program, args = words[0], words[1:]
        if program == "make":
            targets = make_targets()
            goals = [a for a in args if not a.startswith("-") and "=" not in a]
            problems += [f"no make target {goal}" for goal in goals if goal not in targets]
        elif program in PYTHONS:
            problems += _check_python(args)
        elif program == "bash" and args and args[0] == "-c":
            problems += check_command(args[1])
        elif program == "bash":
            if not args or not (ROOT / args[0]).is_file():
                problems.append(f"no script {args[0] if args else '(none)'}")
        else:
            problems += [f"no path {p}" for p in _repository_paths(words) if not (ROOT / p).exists()]
    return problems


def _cases() -> list[tuple[str, str]]:
    return [(path.relative_to(ROOT).as_posix(), c) for path in DOCUMENTS for c in documented_commands(path)]


def test_the_readme_and_docs_show_commands() -> None:
    shown = _cases()
    assert any(doc == "README.md" and command.startswith("make render") for doc, command in shown)
    assert any(doc.startswith("docs/") for doc, _ in shown)


@pytest.mark.parametrize(("document", "command"), _cases())
def test_documented_command_exists(document: str, command: str) -> None:
    assert check_command(command) == [], f"{document}: {command}"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("make render no-such-target", "no make target no-such-target"),
        ("bash scripts/no-such.sh", "no script scripts/no-such.sh"),
        ("venv/bin/python -m hardened_k8s.no_such_module", "no module hardened_k8s.no_such_module"),
        ("venv/bin/python -m hardened_k8s.render --no-such-flag", "--no-such-flag is not an option"),
        ("venv/bin/python bench/no_such.py", "no script bench/no_such.py"),
        ("venv/bin/python -m pytest -m nosuchtier tests/unit", "no pytest marker nosuchtier"),
        ("CI=true venv/bin/python -m pytest tests/nowhere", "no test path tests/nowhere"),
        ("venv/bin/pip wheel --no-deps ./rules ./components/nowhere -w dist", "no path components/nowhere"),
        ("sudo -u ci bash -c 'bash scripts/gone.sh'", "no script scripts/gone.sh"),
    ],
)
def test_a_command_that_is_gone_is_reported(command: str, problem: str) -> None:
    assert any(problem in found for found in check_command(command)), check_command(command)


def test_the_readmes_python_example_deploys_what_it_says() -> None:
    """The README's example program, run as written on the mock engine: a hardened namespace
    and a hardened service in it."""
    from hardened_k8s.mock_engine import run_mocked

    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    run = run_mocked(lambda: exec(compile(blocks[0], "README.md", "exec"), {}))
    objects = {(r.type.split(":")[-1], r.inputs["metadata"]["name"]) for r in run.kubernetes_objects()}
    assert {("Namespace", "shop"), ("Deployment", "api"), ("Service", "api")} <= objects
    deployment = next(r for r in run.kubernetes_objects() if r.type.endswith(":Deployment"))
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["image"] == "quay.io/org/api@sha256:" + "a" * 64
    assert pod["containers"][0]["ports"][0]["containerPort"] == 8000
