"""Autoscaling manifests for the inference Deployment, driven by inferwatch's advice.

Two alternatives (apply one, not both: each owns the Deployment's replica count):

- :func:`scaled_object`: a KEDA ``ScaledObject`` with a Prometheus trigger on
  ``max(inferwatch_recommended_replicas{model="..."})``. With ``metricType: AverageValue``
  and threshold 1, KEDA runs exactly the advised number of replicas. An empty query
  result is an error rather than zero (``ignoreNullValues: "false"``), and the
  ``fallback`` then holds a fixed replica count, so a missing series never scales the
  service down to nothing (KEDA's null-means-zero pitfall).
- :func:`horizontal_pod_autoscaler`: a plain ``autoscaling/v2`` HPA on CPU plus the
  advice as an external metric (served by prometheus-adapter or KEDA's metrics server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The metric the manifests scale on.
ADVICE_METRIC = "inferwatch_recommended_replicas"


@dataclass(frozen=True, slots=True)
class Deployment:
    """The Kubernetes Deployment that serves a model: what the manifests scale."""

    name: str
    namespace: str = "default"
    image: str = ""
    port: int = 8000
    model: str = ""


def advice_query(model: str) -> str:
    """The PromQL the autoscalers read: the advised replicas of ``model``."""
    return f'max({ADVICE_METRIC}{{model="{_escape(model)}"}})'


def scaled_object(
    deployment: Deployment,
    *,
    prometheus_url: str,
    min_replicas: int,
    max_replicas: int,
    fallback_replicas: int | None = None,
    polling_interval_s: int = 15,
    cooldown_s: int = 300,
) -> dict[str, Any]:
    """The KEDA ``ScaledObject`` (see the module docstring).

    ``fallback_replicas``: what KEDA runs after 3 failed reads of the advice (an empty
    result included); default ``max_replicas``, since too many replicas cost money and
    too few lose requests.
    """
    minimum = max(1, min_replicas)
    fallback = fallback_replicas if fallback_replicas is not None else max_replicas
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": deployment.name,
            "namespace": deployment.namespace,
            "labels": {"app.kubernetes.io/managed-by": "inferwatch-export"},
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment.name,
            },
            "pollingInterval": polling_interval_s,
            "cooldownPeriod": cooldown_s,
            "minReplicaCount": minimum,
            "maxReplicaCount": max(minimum, max_replicas),
            "fallback": {"failureThreshold": 3, "replicas": max(minimum, fallback)},
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": advice_query(deployment.model or deployment.name),
                        "threshold": "1",
                        "ignoreNullValues": "false",
                    },
                }
            ],
        },
    }


def horizontal_pod_autoscaler(
    deployment: Deployment,
    *,
    min_replicas: int,
    max_replicas: int,
    cpu_utilization: int = 80,
) -> dict[str, Any]:
    """An ``autoscaling/v2`` HPA: CPU utilisation and the advice as an external metric
    (the HPA takes the larger of the two)."""
    minimum = max(1, min_replicas)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": deployment.name,
            "namespace": deployment.namespace,
            "labels": {"app.kubernetes.io/managed-by": "inferwatch-export"},
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment.name,
            },
            "minReplicas": minimum,
            "maxReplicas": max(minimum, max_replicas),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_utilization},
                    },
                },
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": ADVICE_METRIC,
                            "selector": {
                                "matchLabels": {"model": deployment.model or deployment.name}
                            },
                        },
                        "target": {"type": "AverageValue", "averageValue": "1"},
                    },
                },
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                },
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 30}],
                },
            },
        },
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
