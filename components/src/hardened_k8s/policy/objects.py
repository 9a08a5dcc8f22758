"""Re-exports :mod:`hardened_k8s_rules.policy.objects`, its home since 0.2.0.

``hardened_k8s.policy.objects`` keeps working for code that imports it: the names are the same
objects, of the ``hardened-k8s-rules`` distribution.
"""

from hardened_k8s_rules.policy.objects import *  # noqa: F403
