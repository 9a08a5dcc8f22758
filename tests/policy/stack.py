"""A hand-written, fully hardened stack: the objects every rule must accept.

Built fresh by :func:`hardened_stack` for each test (plain dicts, mutated freely), in the
shape the offline render writes: camelCase keys exactly as the Kubernetes API.
"""

from __future__ import annotations

import hashlib
from typing import Any

NS = "store"
API_SELECTOR = {"app.kubernetes.io/name": "store-api", "app.kubernetes.io/instance": "store-api"}
DB_SELECTOR = {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "postgres"}

SHARED_LABELS = {"app.kubernetes.io/part-of": "store-inventory", "app.kubernetes.io/managed-by": "pulumi"}

Obj = dict[str, Any]


def digest(image: str) -> str:
    """A digest shaped like a registry's (a SHA-256), different for every image."""
    return "sha256:" + hashlib.sha256(f"registry:{image}".encode()).hexdigest()


def labels(selector: dict[str, str], component: str) -> dict[str, str]:
    return {
        **selector,
        "app.kubernetes.io/version": "1.0.0",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "store-inventory",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def meta(name: str, selector: dict[str, str], component: str) -> Obj:
    return {"name": name, "namespace": NS, "labels": labels(selector, component)}


def container(name: str, image: str, port: int) -> Obj:
    return {
        "name": name,
        "image": f"quay.io/ecosystem-appeng/{image}@{digest(image)}",
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "128Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
        "startupProbe": {"httpGet": {"path": "/ready", "port": "http"}, "failureThreshold": 30},
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def pod_spec(sa: str, main: Obj) -> Obj:
    return {
        "serviceAccountName": sa,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [main],
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(API_SELECTOR)},
            }
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": dict(API_SELECTOR)},
                        },
                    }
                ]
            }
        },
    }


def namespace() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NS,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.31",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def default_deny() -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": NS, "labels": SHARED_LABELS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def dns_egress() -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-dns", "namespace": NS, "labels": SHARED_LABELS},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                }
            ],
        },
    }


def api_policy() -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("store-api", API_SELECTOR, "api"),
        "spec": {
            "podSelector": {"matchLabels": dict(API_SELECTOR)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
                    ],
                    "ports": [{"port": 8000, "protocol": "TCP"}],
                }
            ],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": dict(DB_SELECTOR)}}],
                    "ports": [{"port": 5432, "protocol": "TCP"}],
                }
            ],
        },
    }


def db_policy() -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("postgres", DB_SELECTOR, "database"),
        "spec": {
            "podSelector": {"matchLabels": dict(DB_SELECTOR)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(API_SELECTOR)}}],
                    "ports": [{"port": 5432, "protocol": "TCP"}],
                }
            ],
        },
    }


def service_account(name: str, selector: dict[str, str], component: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(name, selector, component),
        "automountServiceAccountToken": False,
    }


def deployment() -> Obj:
    main = container("api", "store-api", 8000)
    main["env"] = [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DATABASE_PASSWORD_FILE", "value": "/etc/secrets/postgres/password"},
    ]
    main["volumeMounts"].append({"name": "postgres", "mountPath": "/etc/secrets/postgres", "readOnly": True})
    spec = pod_spec("store-api", main)
    spec["volumes"].append(
        {
            "name": "postgres",
            "secret": {
                "secretName": "postgres",
                "defaultMode": 0o440,
                "items": [{"key": "password", "path": "password"}],
            },
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("store-api", API_SELECTOR, "api"),
        "spec": {
            "minReadySeconds": 5,
            "selector": {"matchLabels": dict(API_SELECTOR)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(API_SELECTOR, "api")},
                "spec": spec,
            },
        },
    }


def service(name: str, selector: dict[str, str], component: str, port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, selector, component),
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def hpa() -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta("store-api", API_SELECTOR, "api"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "store-api"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                },
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }


def pdb() -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("store-api", API_SELECTOR, "api"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(API_SELECTOR)}},
    }


def statefulset() -> Obj:
    main = container("postgres", "postgres", 5432)
    main["readinessProbe"] = {"exec": {"command": ["pg_isready", "-h", "127.0.0.1"]}}
    main["livenessProbe"] = {"tcpSocket": {"port": 5432}}
    main["startupProbe"] = {"exec": {"command": ["pg_isready", "-h", "127.0.0.1"]}}
    del main["lifecycle"]
    spec = pod_spec("postgres", main)
    del spec["topologySpreadConstraints"]
    del spec["affinity"]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta("postgres", DB_SELECTOR, "database"),
        "spec": {
            "serviceName": "postgres",
            "replicas": 1,
            "selector": {"matchLabels": dict(DB_SELECTOR)},
            "template": {"metadata": {"labels": labels(DB_SELECTOR, "database")}, "spec": spec},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def secret() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("postgres", DB_SELECTOR, "database"),
        "type": "Opaque",
        "stringData": {"password": "placeholder-password-value"},
    }


def configmap() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("store-api", API_SELECTOR, "api"),
        "data": {"LOG_LEVEL": "info", "DATABASE_HOST": "postgres"},
    }


def hardened_stack() -> list[Obj]:
    """Every kind the render produces, hardened; passes every rule, production included."""
    return [
        namespace(),
        default_deny(),
        dns_egress(),
        api_policy(),
        db_policy(),
        service_account("store-api", API_SELECTOR, "api"),
        service_account("postgres", DB_SELECTOR, "database"),
        deployment(),
        service("store-api", API_SELECTOR, "api", 8000),
        hpa(),
        pdb(),
        statefulset(),
        service("postgres", DB_SELECTOR, "database", 5432),
        secret(),
        configmap(),
    ]


def find(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    """The object of ``kind`` (and ``name``) in ``objs``; fails naming what is missing."""
    for obj in objs:
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
            return obj
    raise AssertionError(f"no {kind}/{name} in the stack")


def openshift_stack() -> list[Obj]:
    """:func:`hardened_stack` as ``securityProfile: openshift-restricted-v2`` renders it: no
    fixed ids anywhere (the SCC assigns them) and DNS egress to the DNS operator's pods in
    ``openshift-dns`` on 5353."""
    objs = hardened_stack()
    for obj in objs:
        spec = obj.get("spec", {}).get("template", {}).get("spec")
        if spec is not None:
            for key in ("runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy"):
                spec["securityContext"].pop(key, None)
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                for key in ("runAsUser", "runAsGroup"):
                    container.get("securityContext", {}).pop(key, None)
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == "allow-dns":
            obj["spec"]["egress"] = [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}
                            },
                            "podSelector": {
                                "matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}
                            },
                        }
                    ],
                    "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}],
                }
            ]
    return objs
