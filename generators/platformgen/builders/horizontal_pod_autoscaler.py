"""HorizontalPodAutoscaler (autoscaling/v2), where an environment asks for one."""

from __future__ import annotations

from platformgen.naming import Manifest, metadata
from platformgen.resolve import ComponentView


def build_horizontal_pod_autoscaler(view: ComponentView) -> Manifest | None:
    scaling = view.override.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(view.spec, view.name, view.component.role, view.namespace),
        "spec": {
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "averageUtilization": scaling.target_cpu_utilization,
                            "type": "Utilization",
                        },
                    },
                    "type": "Resource",
                }
            ],
            "minReplicas": scaling.min_replicas,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": view.name},
        },
    }
