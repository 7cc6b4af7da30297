"""The driver and executor Pods spark-submit makes of a rendered SparkApplication, for the tests
that judge pods (the invariants, the policy gates): the pod template, the application's image,
its ServiceAccount, and the container resources from Spark's fields (requests: coreRequest and
memory + memoryOverhead; limits: coreLimit and the same memory), over the template container's
own (its ephemeral storage). The e2e test against the real Spark Operator checks this on the real
driver pod."""

from __future__ import annotations

import copy
from typing import Any

Manifest = dict[str, Any]


def spark_pods(app: Manifest) -> list[Manifest]:
    """The driver and executor Pods spark-submit makes of `app` (module doc)."""
    spec, meta = app["spec"], app["metadata"]
    pods = []
    for role in ("driver", "executor"):
        fields = spec[role]
        template = copy.deepcopy(fields["template"])
        mebibytes = sum(int(fields[k].removesuffix("m")) for k in ("memory", "memoryOverhead"))
        limits = {"memory": f"{mebibytes}Mi"}  # spark-submit: the limit is the request
        if "coreLimit" in fields:
            limits["cpu"] = fields["coreLimit"]
        pod = template["spec"]
        pod["serviceAccountName"] = fields["serviceAccount"]
        pod["restartPolicy"] = "Never"
        for container in pod["containers"]:
            container["image"] = spec["image"]
            container["imagePullPolicy"] = spec["imagePullPolicy"]
            # Spark adds cpu and memory to the template container's resources.
            resources = container.setdefault("resources", {})
            resources["limits"] = {**resources.get("limits", {}), **limits}
            resources["requests"] = {
                **resources.get("requests", {}),
                "cpu": fields["coreRequest"],
                "memory": f"{mebibytes}Mi",
            }
        pod_meta = {
            **template["metadata"],
            "name": f"{meta['name']}-{role}",
            "namespace": meta["namespace"],
        }
        if meta.get("annotations"):
            pod_meta["annotations"] = dict(meta["annotations"])
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod})
    return pods
