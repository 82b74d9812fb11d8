"""A blue-green Rollout defined in code, for runbooks about one field of the strategy.

The chart's Rollouts are the demo system; a runbook about, say, ``autoPromotionSeconds`` needs a
Rollout whose fields it sets itself. ``BlueGreen`` is that Rollout, its fields named as upstream
names them (pkg/apis/rollouts/v1alpha1/types.go), rendered with its active and preview Services;
``Scratch`` is a namespace of its own on a target to deploy it into. Nothing here asserts: the
steps compare what the waits and reads return.
"""

from __future__ import annotations

import copy
import datetime
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError, NotFound, WaitTimeout
from harness.kube import (
    HASH_LABEL,
    NODE,
    POD,
    REPLICA_SET,
    ROLLOUT,
    Kube,
    Pod,
    ReplicaSet,
    Resource,
    Rollout,
    pod_from,
    replica_set_from,
    rollout_from,
)
from harness.rollouts import Phase, Rollouts, phase_of
from harness.target import Target
from harness.waits import wait_for

IMAGE = "ghcr.io/bluegreen-harness/service-b"
# The annotation the controller puts on a ReplicaSet it is to scale down at that time
# (scaleDownDelaySeconds after a switch, abortScaleDownDelaySeconds after an abort;
# v1alpha1.DefaultReplicaSetScaleDownDeadlineAnnotationKey).
SCALE_DOWN_DEADLINE = "scale-down-deadline"
# A node selector no simulated node carries (until a test labels one): pods stay Pending.
NO_NODE = {"bgh.dev/scheduling": "held"}

# Where each field lives: the Rollout's spec, or spec.strategy.blueGreen.
_SPEC_FIELDS = {"replicas", "revisionHistoryLimit", "progressDeadlineSeconds"}
_SPEC_BOOLEANS = {"progressDeadlineAbort"}
_BLUE_GREEN_FIELDS = {
    "autoPromotionSeconds",
    "previewReplicaCount",
    "scaleDownDelaySeconds",
    "scaleDownDelayRevisionLimit",
    "abortScaleDownDelaySeconds",
}
_BLUE_GREEN_BOOLEANS = {"autoPromotionEnabled"}
# antiAffinity: "required" or "preferred" (weight 100), upstream's two kinds of the rule the
# controller injects into the new ReplicaSet's pods against the stable ReplicaSet's.
_ANTI_AFFINITY = {
    "required": {"requiredDuringSchedulingIgnoredDuringExecution": {}},
    "preferred": {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 100}},
}
_METADATA_FIELDS = {"activeMetadata", "previewMetadata"}
# An analysis field names the outcome of the one AnalysisTemplate it runs, "passes" or "fails",
# and may say when it measures: "fails after 20s" (default ANALYSIS_DELAY).
_ANALYSIS_FIELDS = {"prePromotionAnalysis", "postPromotionAnalysis"}
OUTCOMES = ("passes", "fails")
_ANALYSIS_VALUE = re.compile(r"(passes|fails)(?: after (\d+)s)?")
FIELDS = sorted(
    _SPEC_FIELDS
    | _SPEC_BOOLEANS
    | _BLUE_GREEN_FIELDS
    | _BLUE_GREEN_BOOLEANS
    | _METADATA_FIELDS
    | _ANALYSIS_FIELDS
    | {"antiAffinity"}
)
# How long an analysis waits before its one measurement: the time during which the Rollout is
# between promotion and verdict, long enough to observe (upstream's e2e sleeps 2 s there).
ANALYSIS_DELAY = "5s"


@dataclass(frozen=True)
class BlueGreen:
    """A blue-green Rollout of the demo's service B with manual promotion, two replicas and the
    fields given, in upstream's words (``{"autoPromotionSeconds": "5"}``)."""

    name: str
    version: str = "1.0.0"
    fields: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_table(cls, name: str, version: str, rows: list[list[str]]) -> BlueGreen:
        """From a Gherkin data table with the header ``| field | value |``."""
        if not rows or [c.strip() for c in rows[0]] != ["field", "value"]:
            raise ConfigError(
                f"Rollout {name!r}: the table needs the header | field | value |; got {rows[:1]}"
            )
        if any(len(row) != 2 for row in rows[1:]):
            raise ConfigError(f"Rollout {name!r}: every row needs a field and a value")
        return cls(name, version, {row[0].strip(): row[1].strip() for row in rows[1:]})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(FIELDS))
        if unknown:
            raise ConfigError(
                f"Rollout {self.name!r}: unknown field(s) {', '.join(unknown)}; "
                f"expected one of {', '.join(FIELDS)}"
            )
        for name, value in self.fields.items():
            _value(name, value)  # a bad value is an error now, not after the deploy

    @property
    def needs_prometheus(self) -> bool:
        """Whether the Rollout runs an analysis (its templates measure through Prometheus)."""
        return bool(_ANALYSIS_FIELDS & set(self.fields))

    def objects(self, *, prometheus_url: str | None = None) -> list[dict[str, Any]]:
        """The AnalysisTemplates, the active Service, the preview Service and the Rollout, in
        the order to apply them (a Rollout whose Services do not exist yet is InvalidSpec);
        ``prometheus_url`` is where an analysis field's template measures."""
        app = {"app": self.name}
        templates = []
        for outcome in sorted({self.fields[f] for f in _ANALYSIS_FIELDS & set(self.fields)}):
            if prometheus_url is None:
                raise ConfigError(
                    f"Rollout {self.name!r}: its analysis measures through Prometheus, and "
                    "this target has none (BGH_PROMETHEUS_URL)"
                )
            templates.append(analysis_template(*_analysis(outcome), prometheus_url))
        services = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"{self.name}-{side}"},
                "spec": {
                    "selector": app,
                    "ports": [{"name": "http", "port": 80, "targetPort": 8081}],
                },
            }
            for side in ("active", "preview")
        ]
        spec: dict[str, Any] = {
            "replicas": 2,
            "selector": {"matchLabels": app},
            "template": {
                "metadata": {"labels": app},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": f"{IMAGE}:{self.version}",
                            "ports": [{"name": "http", "containerPort": 8081}],
                        }
                    ]
                },
            },
        }
        blue_green: dict[str, Any] = {
            "activeService": f"{self.name}-active",
            "previewService": f"{self.name}-preview",
            "autoPromotionEnabled": False,
        }
        for name, text in self.fields.items():
            value = _value(name, text)
            (spec if _in_spec(name) else blue_green)[name] = value
        spec["strategy"] = {"blueGreen": blue_green}
        rollout = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": self.name},
            "spec": spec,
        }
        return [*templates, *services, rollout]


def analysis_template(outcome: str, delay: str, prometheus_url: str) -> dict[str, Any]:
    """An AnalysisTemplate whose one measurement, ``delay`` after the run starts, passes or
    fails by construction (``vector(1)`` against ``result[0] == 1`` or ``== 0``), as upstream's
    e2e uses a job that exits 0 or 1: the runbook is about what the Rollout does with the
    verdict. Named after both (``fails``, ``fails-after-20s``)."""
    name = outcome if delay == ANALYSIS_DELAY else f"{outcome}-after-{delay}"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "metrics": [
                {
                    "name": "verdict",
                    "initialDelay": delay,
                    "successCondition": f"result[0] == {1 if outcome == 'passes' else 0}",
                    "provider": {"prometheus": {"address": prometheus_url, "query": "vector(1)"}},
                }
            ]
        },
    }


def _analysis(text: str, *, field: str = "analysis") -> tuple[str, str]:
    """``fails after 20s`` as its outcome and initialDelay, ``("fails", "20s")``."""
    match = _ANALYSIS_VALUE.fullmatch(text)
    if match is None:
        raise ConfigError(
            f"{field}: {text!r} is not an outcome; expected passes or fails, optionally with "
            "when it measures, e.g. fails after 20s"
        )
    outcome, seconds = match.groups()
    return outcome, f"{seconds}s" if seconds else ANALYSIS_DELAY


def field_patch(rollout: str, field: str, text: str) -> dict[str, Any]:
    """The merge patch that sets ``field`` of a Rollout to ``text`` (upstream's words, as in a
    ``BlueGreen`` table); an unknown field or a bad value is a ``ConfigError``."""
    if field not in FIELDS:
        raise ConfigError(
            f"Rollout {rollout!r}: unknown field {field}; expected one of {', '.join(FIELDS)}"
        )
    value = _value(field, text)
    if _in_spec(field):
        return {"spec": {field: value}}
    return {"spec": {"strategy": {"blueGreen": {field: value}}}}


def _in_spec(name: str) -> bool:
    """Whether the field is the Rollout's spec's, else spec.strategy.blueGreen's."""
    return name in _SPEC_FIELDS | _SPEC_BOOLEANS


def _value(name: str, text: str) -> Any:
    if name in _SPEC_BOOLEANS | _BLUE_GREEN_BOOLEANS:
        if text not in ("true", "false"):
            raise ConfigError(f"{name}: {text!r} is not a boolean; expected true or false")
        return text == "true"
    if name in _ANALYSIS_FIELDS:
        outcome, delay = _analysis(text, field=name)
        template = analysis_template(outcome, delay, "")["metadata"]["name"]
        return {"templates": [{"templateName": template}]}
    if name == "antiAffinity":
        if text not in _ANTI_AFFINITY:
            raise ConfigError(
                f"{name}: {text!r} is not a kind of rule; expected required or preferred"
            )
        return copy.deepcopy(_ANTI_AFFINITY[text])
    if name in _METADATA_FIELDS:
        pairs = [part.strip() for part in text.split(",") if part.strip()]
        if not pairs or any(p.count("=") != 1 for p in pairs):
            raise ConfigError(f"{name}: {text!r} is not a list of labels; expected role=active")
        return {"labels": dict(p.split("=") for p in pairs)}
    if not text.isdigit():
        raise ConfigError(f"{name}: {text!r} is not a whole number of the field's unit; e.g. 5")
    return int(text)


@dataclass(frozen=True)
class Delayed:
    """Something the controller does after a delay: when the delay started (a timestamp the
    controller wrote), when the harness saw it happen, and the delay the Rollout asks for."""

    started_at: datetime.datetime
    happened_at: datetime.datetime
    delay_seconds: int

    @property
    def after(self) -> float:
        """Seconds from start to happening (the start has whole seconds, so this can be up to a
        second longer than it was, never shorter)."""
        return (self.happened_at - self.started_at).total_seconds()


def schedulable_nodes(kube: Kube) -> list[str]:
    """The nodes a new pod can be scheduled on: not cordoned, no NoSchedule or NoExecute taint."""
    items, _ = kube.list(NODE, all_namespaces=True)
    return sorted(str(node["metadata"]["name"]) for node in items if is_schedulable(node))


def is_schedulable(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    taints = spec.get("taints") or []
    return not spec.get("unschedulable") and not any(
        t.get("effect") in ("NoSchedule", "NoExecute") for t in taints
    )


class Scratch:
    """A namespace of its own on ``target`` for Rollouts a runbook defines; ``close`` deletes it
    without waiting."""

    def __init__(self, target: Target, *, prefix: str = "bg") -> None:
        self.target = target
        self.namespace = f"{prefix}-{uuid.uuid4().hex[:8]}"
        target.kubectl().ensure_namespace(self.namespace)
        kube = target.kube(self.namespace)
        self.rollouts = Rollouts(kube, timeout=target.settings.deadlines.rollout)
        self._cordoned: list[str] = []

    def deploy(self, rollout: BlueGreen) -> Rollouts:
        """Apply the Rollout and its Services, wait until it is Healthy; the Rollouts it is in."""
        objects = rollout.objects(prometheus_url=self.target.analysis_prometheus_url)
        self.target.kubectl().apply(objects, namespace=self.namespace)
        self.rollouts.wait_for_phase(rollout.name, Phase.HEALTHY)
        return self.rollouts

    def set_field(self, name: str, field: str, text: str) -> Rollout:
        """Set one field of Rollout ``name``, deployed here, in upstream's words as in
        ``BlueGreen`` (an analysis field's AnalysisTemplate is applied first); the Rollout as
        patched. The image and every other field stay as they are."""
        patch = field_patch(name, field, text)
        if field in _ANALYSIS_FIELDS:
            prometheus_url = self.target.analysis_prometheus_url
            if prometheus_url is None:
                raise ConfigError(
                    f"Rollout {name!r}: its analysis measures through Prometheus, and this "
                    "target has none (BGH_PROMETHEUS_URL)"
                )
            template = analysis_template(*_analysis(text, field=field), prometheus_url)
            self.target.kubectl().apply([template], namespace=self.namespace)
        return rollout_from(self.target.kube(self.namespace).patch(ROLLOUT, name, patch))

    def cordon_nodes(self) -> list[str]:
        """Cordon every schedulable node (``kubectl cordon``): new pods stay Pending, running ones
        run on. The nodes cordoned; ``uncordon_nodes`` and ``close`` give them back."""
        kube = self.target.kube()
        nodes = schedulable_nodes(kube)
        if not nodes:
            raise NotFound(f"no schedulable node to cordon on the {self.target.name} cluster")
        for node in nodes:
            kube.patch(NODE, node, {"spec": {"unschedulable": True}})
            self._cordoned.append(node)
        return nodes

    def uncordon_nodes(self) -> list[str]:
        """Uncordon the nodes ``cordon_nodes`` cordoned; the scheduler places what was Pending."""
        kube = self.target.kube()
        done = []
        while self._cordoned:
            node = self._cordoned.pop()
            kube.patch(NODE, node, {"spec": {"unschedulable": None}})
            done.append(node)
        return done

    def close(self) -> None:
        self.uncordon_nodes()  # a cordon never outlives its scenario, failed or not
        self.target.kubectl().run("delete", "namespace", self.namespace, "--wait=false")


def release(
    rollouts: Rollouts,
    name: str,
    version: str,
    *,
    schedulable: bool = True,
    greeting: str | None = None,
) -> None:
    """Set the image tag to ``version`` (as ``kubectl argo rollouts set image`` does).
    ``greeting`` also sets the service's GREETING, a new pod template for a version released
    before; ``schedulable=False`` gives the pods a node selector that no node matches, so the
    new ReplicaSet's pods stay Pending, never ready."""
    if schedulable and greeting is None:
        rollouts.set_image_version(name, version)
        return
    container: dict[str, Any] = {
        "name": "app",
        "image": f"{IMAGE}:{version}",
        "ports": [{"name": "http", "containerPort": 8081}],
    }
    if greeting is not None:
        container["env"] = [{"name": "GREETING", "value": greeting}]
    pod_spec: dict[str, Any] = {"containers": [container]}
    if not schedulable:
        pod_spec["nodeSelector"] = NO_NODE
    # A JSON merge patch on a custom resource replaces the containers list: the one container
    # this Rollout has, whole.
    rollouts.kube.patch(ROLLOUT, name, {"spec": {"template": {"spec": pod_spec}}})


def wait_for_auto_promotion(rollouts: Rollouts, name: str) -> Delayed:
    """Block until a Rollout Paused with ``autoPromotionSeconds`` switches its active Service by
    itself to its current ReplicaSet; when it paused and when it switched."""
    paused = rollouts.wait_for_phase(name, Phase.PAUSED)
    seconds = int(_blue_green(paused).get("autoPromotionSeconds", 0))
    if seconds <= 0:
        raise ConfigError(f'Rollout "{name}" has no autoPromotionSeconds; it never promotes itself')
    start = next(
        (p.start_time for p in paused.pause_conditions if p.reason == "BlueGreenPause"), ""
    )
    if not start:
        raise ConfigError(f'Rollout "{name}" is Paused without a BlueGreenPause condition')
    rollouts.wait_for(
        name,
        lambda r: r.active_selector == r.current_hash != "",
        expecting=f"active on its current ReplicaSet {paused.current_hash}",
        within=seconds + rollouts.timeout,
    )
    return Delayed(_timestamp(start), rollouts.now(), seconds)


def wait_for_abort_scale_down(rollouts: Rollouts, name: str, revision: int) -> Delayed:
    """Block until ``revision``'s ReplicaSet, aborted, is scaled down; when the abort happened
    (``status.abortedAt``), when the harness saw the scale-down, and abortScaleDownDelaySeconds
    (upstream's default, 30, when unset)."""
    aborted = wait_for_abort(rollouts, name)
    aborted_at = str((aborted.raw.get("status") or {}).get("abortedAt") or "")
    if not aborted_at:
        raise NotFound(f'Rollout "{name}" is aborted but has no status.abortedAt')
    delay = int(_blue_green(aborted).get("abortScaleDownDelaySeconds", 30))
    rollouts.wait_for_scaled_down(name, revision, within=delay + rollouts.timeout)
    return Delayed(_timestamp(aborted_at), rollouts.now(), delay)


def _blue_green(rollout: Rollout) -> Mapping[str, Any]:
    strategy = (rollout.raw.get("spec") or {}).get("strategy") or {}
    found: Mapping[str, Any] = strategy.get("blueGreen") or {}
    return found


def _timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod_labels(rollouts: Rollouts, name: str, revision: int) -> list[dict[str, str]]:
    """The labels of each pod of ``revision`` (without the pod-template hash), not terminating."""
    pods = rollouts.pods_by_revision(name).get(revision, [])
    return [{k: v for k, v in p.labels.items() if k != HASH_LABEL} for p in pods]


def ready_counts(rollouts: Rollouts, name: str, revisions: Iterable[int]) -> dict[int, int]:
    """How many ready, not terminating pods each of ``revisions`` has now."""
    pods = rollouts.pods_by_revision(name)
    return {revision: sum(p.ready for p in pods.get(revision, [])) for revision in revisions}


def wait_for_abort(rollouts: Rollouts, name: str, *, within: float | None = None) -> Rollout:
    """Block until the Rollout is Degraded because it was aborted (``status.abort`` and reason
    RolloutAborted), by a user or by the controller (``progressDeadlineAbort``)."""
    return rollouts.wait_for(
        name,
        lambda r: r.abort and phase_of(r)[1].startswith("RolloutAborted"),
        expecting="Degraded (RolloutAborted)",
        within=within,
    ).value


def wait_for_scale_down_deadline(rollouts: Rollouts, name: str, revision: int) -> datetime.datetime:
    """Block until ``revision``'s ReplicaSet carries the controller's scale-down-deadline
    annotation (it writes it a reconcile after the abort or the switch that calls for it);
    when the controller is to scale it down."""
    found = {rs.revision: rs for rs in rollouts.replica_sets(name)}
    if revision not in found:
        known = ", ".join(str(r) for r in found) or "none"
        raise NotFound(f'Rollout "{name}" has no revision {revision}; revisions: {known}')
    target = found[revision]
    marked = wait_for(
        Resource(rollouts.kube, REPLICA_SET, replica_set_from),
        target.name,
        lambda rs: bool(rs.annotations.get(SCALE_DOWN_DEADLINE)),
        what=f"ReplicaSet {rollouts.namespace}/{target.name} (revision {revision}): "
        f"a {SCALE_DOWN_DEADLINE} annotation",
        describe=lambda rs: (
            f"{SCALE_DOWN_DEADLINE}={rs.annotations.get(SCALE_DOWN_DEADLINE, '-')}"
            f" replicas={rs.replicas}"
        ),
        within=rollouts.timeout,
    ).value
    return _timestamp(marked.annotations[SCALE_DOWN_DEADLINE])


def wait_for_pause_on_preview(rollouts: Rollouts, name: str) -> Rollout:
    """Block until the Rollout is Paused with its current ReplicaSet on preview only; fail at
    once if the active Service switches to that ReplicaSet instead, a release promoted without
    a promote."""

    def switched(rollout: Rollout) -> str | None:
        if rollout.current_hash and rollout.active_selector == rollout.current_hash:
            return f"active switched to the current ReplicaSet {rollout.current_hash} unpromoted"
        return None

    return rollouts.wait_for(
        name,
        lambda r: phase_of(r)[0] is Phase.PAUSED and r.active_selector != r.current_hash,
        expecting="Paused with its current ReplicaSet on preview only",
        fail_if=switched,
    ).value


# How long "never scaled down" is watched: well past a short abortScaleDownDelaySeconds (the
# runbook shows 2 s scaling down) and past scaleDownDelaySeconds' default of 30 s would be slow.
NEVER_WINDOW = 10.0


def keeps_pods(
    rollouts: Rollouts, name: str, revision: int, *, seconds: float = NEVER_WINDOW
) -> bool:
    """Whether ``revision``'s ReplicaSet still has replicas after watching it for ``seconds``:
    a wait for the scale-down that is expected to run out."""
    try:
        rollouts.wait_for_scaled_down(name, revision, within=seconds)
    except WaitTimeout:
        return True
    return False


def wait_for_pod_labels(
    rollouts: Rollouts, name: str, revision: int, labels: Mapping[str, str]
) -> list[Pod]:
    """Block until every pod of ``revision`` carries ``labels`` (the controller relabels the
    pods of a ReplicaSet in place when active/previewMetadata apply to it); NotFound when the
    revision has no pods."""
    pods = rollouts.pods_by_revision(name).get(revision, [])
    if not pods:
        raise NotFound(f'Rollout "{name}": revision {revision} has no pods to label')
    source = Resource(rollouts.kube, POD, pod_from)
    wanted = dict(labels)
    return [
        wait_for(
            source,
            pod.name,
            lambda p: all(p.labels.get(k) == v for k, v in wanted.items()),
            what=f"Pod {rollouts.namespace}/{pod.name} (revision {revision}): labels {wanted}",
            describe=lambda p: ",".join(f"{k}={v}" for k, v in sorted(p.labels.items())),
            within=rollouts.timeout,
        ).value
        for pod in pods
    ]


def shared_nodes(rollouts: Rollouts, name: str, first: int, second: int) -> set[str]:
    """The nodes that run pods (not terminating) of both revisions; NotFound when either has
    no scheduled pod, since no shared node then would be no evidence."""
    pods = rollouts.pods_by_revision(name)
    nodes = {r: {p.node for p in pods.get(r, []) if p.node} for r in (first, second)}
    empty = [str(r) for r, found in nodes.items() if not found]
    if empty:
        raise NotFound(
            f'Rollout "{name}": revision {" and ".join(empty)} has no scheduled pod to compare'
        )
    return nodes[first] & nodes[second]


def anti_affinity_to(rollouts: Rollouts, name: str, revision: int) -> list[str]:
    """The pod-template hashes that ``revision``'s pods are kept off, per node
    (``kubernetes.io/hostname``), by a required anti-affinity term on the label
    ``rollouts-pod-template-hash``: what the controller injects against the stable ReplicaSet
    (utils/replicaset ``CreateInjectedAntiAffinityRule``)."""
    by_revision = {rs.revision: rs for rs in rollouts.replica_sets(name)}
    if revision not in by_revision:
        raise NotFound(f'Rollout "{name}" has no ReplicaSet with revision {revision}')
    spec = by_revision[revision].template.get("spec") or {}
    anti = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
    return [
        value
        for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if term.get("topologyKey") == "kubernetes.io/hostname"
        for expression in (term.get("labelSelector") or {}).get("matchExpressions") or []
        if expression.get("key") == HASH_LABEL and expression.get("operator") == "In"
        for value in expression.get("values") or []
    ]


def parse_labels(text: str) -> dict[str, str]:
    """``role=active, tier=web`` as labels; a ConfigError shows the form expected."""
    value = _value("activeMetadata", text)
    return dict(value["labels"])


def crash_pod(target: Target, rollouts: Rollouts, name: str, revision: int) -> Pod:
    """Crash one ready pod of ``revision`` (SIGKILL its container's process, where ``target``
    can reach it); the pod crashed."""
    pods = [p for p in rollouts.pods_by_revision(name).get(revision, []) if p.ready]
    if not pods:
        raise NotFound(f'Rollout "{name}": revision {revision} has no ready pod to crash')
    target.crash_pod(rollouts.namespace, pods[0].name)
    return pods[0]


def wait_for_availability(
    rollouts: Rollouts, name: str, revision: int, *, full: bool
) -> ReplicaSet:
    """Block until ``revision``'s ReplicaSet reports all its replicas available (``full``) or
    fewer (what the ReplicaSet and Rollouts controllers see of a crashed pod: the new ReplicaSet
    no longer saturated)."""
    by_revision = {rs.revision: rs for rs in rollouts.replica_sets(name)}
    if revision not in by_revision:
        raise NotFound(f'Rollout "{name}" has no ReplicaSet with revision {revision}')
    target = by_revision[revision]
    return wait_for(
        Resource(rollouts.kube, REPLICA_SET, replica_set_from),
        target.name,
        lambda rs: (rs.available_replicas == rs.replicas) == full and rs.replicas > 0,
        what=(
            f"ReplicaSet {rollouts.namespace}/{target.name} (revision {revision}): "
            + ("every replica available" if full else "a replica unavailable")
        ),
        describe=lambda rs: f"replicas={rs.replicas} available={rs.available_replicas}",
        within=rollouts.timeout,
    ).value


def scale_up_preview_checkpoint(rollout: Rollout) -> bool:
    """``status.blueGreen.scaleUpPreviewCheckPoint``: with previewReplicaCount, set once the
    preview passed its pre-promotion analysis and pause and is scaled to full size before the
    switch; reset when the pod template changes or the Rollout fully promotes."""
    status = (rollout.raw.get("status") or {}).get("blueGreen") or {}
    return bool(status.get("scaleUpPreviewCheckPoint"))


def wait_for_scale_up_preview_checkpoint(rollouts: Rollouts, name: str) -> Rollout:
    """Block until the Rollout has passed its scaleUpPreviewCheckPoint."""
    return rollouts.wait_for(
        name, scale_up_preview_checkpoint, expecting="scaleUpPreviewCheckPoint true"
    ).value


def wait_for_current_revision(rollouts: Rollouts, name: str, revision: int) -> Rollout:
    """Block until the controller has recorded ``revision`` as the Rollout's current one
    (``status.currentPodHash`` is its ReplicaSet's hash): the status it wrote in the reconcile
    that saw the new pod template."""

    def current(rollout: Rollout) -> bool:
        hashes = {rs.revision: rs.pod_template_hash for rs in rollouts.replica_sets(name)}
        return rollout.current_hash != "" and rollout.current_hash == hashes.get(revision)

    return rollouts.wait_for(
        name, current, expecting=f"status.currentPodHash of revision {revision}"
    ).value
