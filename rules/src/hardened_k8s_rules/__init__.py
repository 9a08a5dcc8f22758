"""The hardening rules of ``hardened-k8s``, as a distribution of their own.

Everything the Pulumi CrossGuard policy pack and the offline render both run, and nothing
more: :mod:`hardened_k8s_rules.policy` (the rules as pure functions over Kubernetes objects,
the engine that runs them, the stack index) and the data the ``hardened-k8s`` stack
configuration shares with it (:mod:`~hardened_k8s_rules.controls`,
:mod:`~hardened_k8s_rules.exemptions`, :mod:`~hardened_k8s_rules.models`,
:mod:`~hardened_k8s_rules.profiles`). It needs the standard library and pydantic only, so a
policy pack installs pulumi, pulumi-policy, pydantic and this, and no Kubernetes or Docker SDK.

Importing this package loads nothing: the configuration models read the neutral modules
without loading the rules. ``hardened-k8s`` requires exactly this version; code that needs
the rules imports them from here (the former ``hardened_k8s.policy``, ``hardened_k8s.controls``
... paths were removed in 0.2.0).
"""

__version__ = "0.2.0"
"""Always the version of ``hardened-k8s``, which requires exactly this one (a test checks both)."""
