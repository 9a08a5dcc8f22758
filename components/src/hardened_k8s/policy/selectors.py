"""Re-exports :mod:`hardened_k8s_rules.policy.selectors`, its home since 0.2.0.

``hardened_k8s.policy.selectors`` keeps working for code that imports it: the names are the same
objects, of the ``hardened-k8s-rules`` distribution.
"""

from hardened_k8s_rules.policy.selectors import *  # noqa: F403
