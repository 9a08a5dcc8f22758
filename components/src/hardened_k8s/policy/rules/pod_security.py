"""Re-exports :mod:`hardened_k8s_rules.policy.rules.pod_security`, its home since 0.2.0.

``hardened_k8s.policy.rules.pod_security`` keeps working for code that imports it: the names are the same
objects, of the ``hardened-k8s-rules`` distribution.
"""

from hardened_k8s_rules.policy.rules.pod_security import *  # noqa: F403
