"""The components as a Pulumi component package, for programs in any Pulumi language.

``pulumi-resource-hardened-k8s`` (installed with the library) is the package's resource
plugin: it serves :data:`COMPONENTS` with the SDK's ``component_provider_host``, which infers
the schema (resources ``hardened-k8s:index:<Component>``, their inputs from the Args
``TypedDict``\\ s, outputs from the components' annotations, descriptions from the field
docstrings) and constructs the components when a program declares them.

The Pulumi CLI finds the plugin on ``PATH`` (the virtualenv's ``bin``), so a Pulumi YAML
program declares ``type: hardened-k8s:index:HardenedService`` with nothing else to install;
``pulumi package add`` of ``components/provider`` (a ``PulumiPlugin.yaml`` running
:func:`main`) is the route for a CLI that has the Python language plugin and SDK generation.

:class:`~hardened_k8s.system.ServiceSystem` is not served: it takes a Python stack config.
"""

from __future__ import annotations

import inspect
import sys

from pulumi import ComponentResource
from pulumi.provider.experimental import component_provider_host

from . import __version__, inputs
from .image import ServiceImage
from .namespace import SecureNamespace
from .postgres import PostgreSQL
from .tokens import PACKAGE
from .workload import HardenedService

COMPONENTS: tuple[type[ComponentResource], ...] = (SecureNamespace, HardenedService, PostgreSQL, ServiceImage)
"""The components the package serves."""


def main() -> None:
    """Serve the package: print the gRPC port and answer the engine (``GetSchema``, ``Construct``)."""
    _dedent_docstrings()
    component_provider_host(list(COMPONENTS), name=PACKAGE, version=__version__)


def _dedent_docstrings() -> None:
    """Class docstrings without the source's indentation before they become descriptions:
    Markdown reads a line indented four spaces after a blank line as code."""
    for module in {component.__module__ for component in COMPONENTS} | {inputs.__name__}:
        for value in vars(sys.modules[module]).values():
            if isinstance(value, type) and value.__module__ == module and value.__doc__:
                value.__doc__ = inspect.cleandoc(value.__doc__)
