"""Hardened container images and Kubernetes workloads as Pulumi components.

Import the submodule you need (``hardened_k8s.workload``, ``hardened_k8s.namespace`` ...);
this package root stays import-free so that loading the configuration models does not pull
in the Kubernetes SDK.
"""

__version__ = "0.2.0"
