"""HorizontalPodAutoscaler and PodDisruptionBudget specs that agree with each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi_kubernetes as k8s


def hpa_spec(
    deployment_name: str, scaling: Mapping[str, Any]
) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs:
    """autoscaling/v2 on CPU and memory utilisation with a ``behavior`` block.

    ``scaling`` is an ``AutoscalingArgs`` with its defaults applied
    (:func:`~hardened_k8s.arguments.with_defaults`).

    Scale-up is quick (double, or +2 pods, per 30 s) so spikes are absorbed; scale-down
    waits ``scaleDownStabilizationSeconds`` and sheds at most 25 % a minute so a brief lull
    does not throw away capacity that is about to be needed again.
    """
    return k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
            api_version="apps/v1", kind="Deployment", name=deployment_name
        ),
        min_replicas=scaling["min_replicas"],
        max_replicas=scaling["max_replicas"],
        metrics=[
            k8s.autoscaling.v2.MetricSpecArgs(
                type="Resource",
                resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                    name=resource,
                    target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="Utilization", average_utilization=target
                    ),
                ),
            )
            for resource, target in (
                ("cpu", scaling["cpu_utilization"]),
                ("memory", scaling["memory_utilization"]),
            )
        ],
        behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
            scale_up=k8s.autoscaling.v2.HPAScalingRulesArgs(
                stabilization_window_seconds=0,
                select_policy="Max",
                policies=[
                    k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=100, period_seconds=30),
                    k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=2, period_seconds=30),
                ],
            ),
            scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                stabilization_window_seconds=scaling["scale_down_stabilization_seconds"],
                select_policy="Min",
                policies=[
                    k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=25, period_seconds=60)
                ],
            ),
        ),
    )


UNHEALTHY_POD_EVICTION_POLICY_SINCE = (1, 27)
"""First minor version whose API server applies ``unhealthyPodEvictionPolicy`` by default.

1.25 does not know the field (its schema refuses it); 1.26 has it behind an alpha feature
gate that is off by default, so the API server would drop it silently.
"""


def pdb_spec(
    selector: Mapping[str, str], kubernetes_version: str = "1.31"
) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    """At most one pod voluntarily disrupted at a time.

    ``maxUnavailable: 1`` stays consistent with any HPA floor (a ``minAvailable`` equal to
    ``minReplicas`` would block every node drain), and ``AlwaysAllow`` lets a drain evict
    pods that are already unhealthy instead of waiting on them forever; it is set from
    Kubernetes 1.27 (``kubernetes_version``, default 1.31), where the field is on by default.
    """
    major, minor = (int(part) for part in kubernetes_version.split(".")[:2])
    known = (major, minor) >= UNHEALTHY_POD_EVICTION_POLICY_SINCE
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
        max_unavailable=1,
        unhealthy_pod_eviction_policy="AlwaysAllow" if known else None,
    )
