"""Prometheus in the kind cluster: the objects ``bgh up --target kind`` applies, pure data.

It scrapes the demo pods as the local target's Prometheus does (``harness.targets.scrape``: the
same interval, the same target labels ``namespace``, ``pod``, ``app``,
``rollouts_pod_template_hash``, ``root_version``), so the analysis server's queries and the
AnalysisTemplates read the same series on both targets. Pods are found with Kubernetes service
discovery (``role: pod``) and kept only when annotated ``prometheus.io/scrape: "true"``, as the
demo chart annotates them; the port and path come from ``prometheus.io/port`` and
``prometheus.io/path``.

Every runbook deploys into a namespace of its own, made while the suite runs, so discovery
watches pods in every namespace: its ClusterRole may get, list and watch pods and nothing else
(``role: pod`` reads no other kind). Inside the cluster the Rollouts controller and the analysis
server reach it at ``IN_CLUSTER_URL``; the host reaches it through ``kubectl proxy`` on loopback
(``KindTarget.prometheus_url``), as it reaches gateway A, so no NodePort is opened.
"""

from __future__ import annotations

from typing import Any

import yaml

from harness.targets import scrape

NAMESPACE = "monitoring"
NAME = "prometheus"
PORT = 9090
PORT_NAME = "web"
IN_CLUSTER_URL = f"http://{NAME}.{NAMESPACE}.svc:{PORT}"
# The upstream image's user (nobody), numeric so that runAsNonRoot can be checked.
USER = 65534
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "bluegreen-harness"}

# __meta_kubernetes_pod_label_<label> (Prometheus sanitises the label name) -> target label.
POD_LABELS = {
    "app": "app",
    "rollouts_pod_template_hash": "rollouts_pod_template_hash",
    "root_version": "root_version",
}


def config() -> dict[str, Any]:
    """prometheus.yml: every pod annotated for scraping, at the local target's interval."""
    relabel: list[dict[str, Any]] = [
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "regex": "true",
            "action": "keep",
        },
        # One target per declared container port: all but the metrics port collapse into the
        # same address below, and Prometheus keeps one of identical targets.
        {
            "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
            "regex": r"([^:]+)(?::\d+)?;(\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
            "regex": "(.+)",
            "target_label": "__metrics_path__",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        *(
            {"source_labels": [f"__meta_kubernetes_pod_label_{meta}"], "target_label": label}
            for meta, label in POD_LABELS.items()
        ),
    ]
    return {
        "global": scrape.global_config(),
        "scrape_configs": [
            {
                "job_name": "bgh",
                "kubernetes_sd_configs": [{"role": "pod"}],
                "relabel_configs": relabel,
            }
        ],
    }


def manifests(image: str, *, pull_policy: str) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, ClusterRole and its binding, ConfigMap, Deployment, Service."""
    metadata = {"name": NAME, "namespace": NAMESPACE, "labels": LABELS}
    selector = {"app.kubernetes.io/name": NAME}
    container = {
        "name": NAME,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["/bin/prometheus"],
        "args": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=:{PORT}",
        ],
        "ports": [{"name": PORT_NAME, "containerPort": PORT}],
        "readinessProbe": {
            "httpGet": {"path": "/-/ready", "port": PORT_NAME},
            "periodSeconds": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/-/healthy", "port": PORT_NAME},
            "periodSeconds": 10,
        },
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
            {"name": "data", "mountPath": "/prometheus"},
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": LABELS},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"bgh-{NAME}", "labels": LABELS},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"bgh-{NAME}", "labels": LABELS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"bgh-{NAME}",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {"prometheus.yml": yaml.safe_dump(config(), sort_keys=False)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "serviceAccountName": NAME,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": USER,
                            "runAsGroup": USER,
                            "fsGroup": USER,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [
                            {"name": "config", "configMap": {"name": NAME}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "selector": selector,
                "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME}],
            },
        },
    ]


def manifest_text(image: str, *, pull_policy: str) -> str:
    """``manifests`` as one multi-document YAML, for ``kubectl apply -f``."""
    return yaml.safe_dump_all(manifests(image, pull_policy=pull_policy), sort_keys=False)
