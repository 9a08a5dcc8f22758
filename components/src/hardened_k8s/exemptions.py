"""Re-exports :mod:`hardened_k8s_rules.exemptions`, its home since 0.2.0.

``hardened_k8s.exemptions`` keeps working for code that imports it: the names are the same
objects, of the ``hardened-k8s-rules`` distribution.
"""

from hardened_k8s_rules.exemptions import *  # noqa: F403
