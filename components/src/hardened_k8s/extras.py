"""Optional parts of the library and the install extra each needs.

A deploy needs only the core install (pulumi, pulumi-kubernetes, pulumi-docker, pydantic).
The offline render (:mod:`hardened_k8s.render`) and its strict schema check
(:mod:`hardened_k8s.schema`) need the ``render`` extra: ``pip install
'hardened-k8s[render]'``, which adds kubernetes-validate (and its jsonschema) and names PyYAML,
which the render and the mock engine (:mod:`hardened_k8s.mock_engine`) read stack files with
(pulumi itself requires PyYAML, so the mock engine also imports without the extra).
"""

from __future__ import annotations

RENDER = "render"
"""Name of the extra of the offline render, the mock engine and the schema check."""


def missing_extra(module: str, error: ModuleNotFoundError, extra: str = RENDER) -> ModuleNotFoundError:
    """The error to raise when ``module`` cannot import a package of ``extra``: it names the
    package, the extra and the command that installs it."""
    return ModuleNotFoundError(
        f"{module} needs the '{extra}' extra of hardened-k8s ({error.name} is not installed); "
        f"install it with: pip install 'hardened-k8s[{extra}]'",
        name=error.name,
    )
