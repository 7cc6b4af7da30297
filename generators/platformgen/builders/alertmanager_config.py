"""AlertmanagerConfig: route some of a component's own alerts to its webhook (`alertWebhook`).

The Prometheus Operator merges every AlertmanagerConfig that the Alertmanager object selects
(`alertmanagerConfigSelector`, our `monitoring.selectorLabels`, in the namespaces of its
`alertmanagerConfigNamespaceSelector`) into the Alertmanager configuration. With its default
`alertmanagerConfigMatcherStrategy: OnNamespace` it adds `namespace="<this object's namespace>"`
to the route, so the object lives in the component's namespace: the namespace label our alerts
carry. Alertmanager repeats a firing group every `repeatInterval`; the receiver decides what a
repeat means (the drift monitor's cooldown).
"""

from __future__ import annotations

from platformgen.builders.service import service_name
from platformgen.naming import Manifest, camel, metadata
from platformgen.resolve import ComponentView

GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
REPEAT_INTERVAL = "4h"


def build_alertmanager_config(view: ComponentView) -> Manifest | None:
    c = view.component
    hook = c.alert_webhook
    if hook is None:
        return None
    port = next(p.port for p in c.ports if p.name == hook.port)
    url = f"http://{service_name(view)}.{view.namespace}.svc.cluster.local:{port}{hook.path}"
    alerts = sorted(f"{camel(view.name)}{suffix}" for suffix in hook.alerts)
    # One alert: an equality matcher, whose matchType the CRD defaults to "=" (left out: a bare
    # `=` in YAML 1.1 is the `!!value` tag, which PyYAML-based tools refuse to load).
    matcher = (
        {"name": "alertname", "value": alerts[0]}
        if len(alerts) == 1
        else {"matchType": "=~", "name": "alertname", "value": "|".join(alerts)}
    )
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": metadata(
            view.spec,
            view.name,
            c.role,
            view.namespace,
            extra_labels=view.spec.monitoring.selector_labels,
        ),
        "spec": {
            "receivers": [
                {"name": view.name, "webhookConfigs": [{"sendResolved": False, "url": url}]}
            ],
            "route": {
                "groupBy": ["alertname", "namespace", "service"],
                "groupInterval": GROUP_INTERVAL,
                "groupWait": GROUP_WAIT,
                "matchers": [matcher],
                "receiver": view.name,
                "repeatInterval": REPEAT_INTERVAL,
            },
        },
    }
