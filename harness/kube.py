"""The API client: every read, watch, patch and apply, through the official ``kubernetes`` client.

The only module that imports that client (``harness.kubectl`` is the one other route to the API
server, for server-side apply of rendered manifests). Raw objects become small frozen dataclasses
at this edge (``Rollout``, ``ReplicaSet``, ``Service``, ``Pod``), so the domain modules index no
API dicts. API errors become harness errors: ``get`` of a missing object is ``NotFound`` naming
the objects of that kind that do exist; 403 ``Forbidden`` (the identity lacks a permission), 401
``Unauthorized`` (the credentials themselves are rejected), 409 ``Conflict``; a 410 during a
watch is ``Expired`` and a refused, reset or busy API server ``Unreachable``, so a wait reads
again and resumes. ``impersonate`` acts as another user, as ``kubectl --as`` does.

Every request has a connect and a read timeout (``Timeouts.api_connect``, ``api_read``; a caller
with less time left passes its own read timeout), so a server that accepts and never answers
cannot hold a wait past its deadline. Idempotent writes (merge patch, server-side apply, replace,
delete) are retried with a short backoff on 429, 500, 503, 504 and on a connection reset; nothing
else is retried here (other 4xx are answers, and a read timeout means the time is spent).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from harness.errors import (
    ConfigError,
    Expired,
    HarnessError,
    NotFound,
    Unreachable,
    WaitTimeout,
)
from harness.waits import Deadline

T = TypeVar("T")

HASH_LABEL = "rollouts-pod-template-hash"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
WORKLOAD_GENERATION_ANNOTATION = "rollout.argoproj.io/workload-generation"

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class ApiError(HarnessError):
    """The API server refused a request for a reason other than not-found."""


@dataclass(frozen=True)
class Kind:
    """Where one kind of object lives in the API."""

    name: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The object's path, or its collection's; ``namespace=None``: across all namespaces
        (a cluster-scoped kind ignores ``namespace``)."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if namespace is None or not self.namespaced:
            if name:
                return f"{base}/{self.plural}/{name}"
            return f"{base}/{self.plural}"
        path = f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{path}/{name}" if name else path


ROLLOUT = Kind("Rollout", "argoproj.io", "v1alpha1", "rollouts")
ANALYSIS_RUN = Kind("AnalysisRun", "argoproj.io", "v1alpha1", "analysisruns")
REPLICA_SET = Kind("ReplicaSet", "apps", "v1", "replicasets")
SERVICE = Kind("Service", "", "v1", "services")
POD = Kind("Pod", "", "v1", "pods")
EVENT = Kind("Event", "", "v1", "events")
VIRTUAL_SERVICE = Kind("VirtualService", "networking.istio.io", "v1", "virtualservices")
ISTIO_GATEWAY = Kind("Gateway", "networking.istio.io", "v1", "gateways")
INGRESS = Kind("Ingress", "networking.k8s.io", "v1", "ingresses")
NODE = Kind("Node", "", "v1", "nodes", namespaced=False)
LEASE = Kind("Lease", "coordination.k8s.io", "v1", "leases")
CUSTOM_RESOURCE_DEFINITION = Kind(
    "CustomResourceDefinition",
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    namespaced=False,
)


# -- frozen views of API objects -------------------------------------------------------------


@dataclass(frozen=True)
class PauseCondition:
    reason: str
    start_time: str


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class AnalysisRunRef:
    name: str
    status: str
    message: str


@dataclass(frozen=True)
class Rollout:
    """The fields of a Rollout the harness reasons about (blue-green)."""

    name: str
    namespace: str
    resource_version: str
    generation: int
    observed_generation: str
    annotations: Mapping[str, str]
    spec_replicas: int
    progress_deadline_abort: bool
    paused: bool
    restart_at: str | None
    images: Mapping[str, str]
    active_service: str
    preview_service: str
    has_post_promotion_analysis: bool
    # How long the old active ReplicaSet is kept after the switch; upstream's default is 30 s.
    scale_down_delay_seconds: int
    template_resolved_from_ref: bool
    status_phase: str
    status_message: str
    controller_pause: bool
    pause_conditions: tuple[PauseCondition, ...]
    conditions: tuple[Condition, ...]
    abort: bool
    promote_full: bool
    current_hash: str
    stable_hash: str
    active_selector: str
    preview_selector: str
    pre_promotion_analysis: AnalysisRunRef | None
    post_promotion_analysis: AnalysisRunRef | None
    restarted_at: str | None
    workload_observed_generation: str
    status_replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def revision(self) -> str:
        return self.annotations.get(REVISION_ANNOTATION, "")


@dataclass(frozen=True)
class ReplicaSet:
    name: str
    namespace: str
    resource_version: str
    pod_template_hash: str
    revision: int | None
    owner: str | None
    replicas: int
    ready_replicas: int
    available_replicas: int
    annotations: Mapping[str, str]
    template: Mapping[str, Any] = field(repr=False, compare=False)
    created: str = ""  # metadata.creationTimestamp, RFC 3339 in UTC, whole seconds


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    resource_version: str
    selector: Mapping[str, str]
    ports: tuple[tuple[str, int, str], ...]  # (name, port, targetPort)

    @property
    def pod_template_hash(self) -> str:
        return self.selector.get(HASH_LABEL, "")


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    resource_version: str
    labels: Mapping[str, str]
    phase: str
    ready: bool
    deleting: bool
    images: Mapping[str, str]
    env: Mapping[str, str]
    uid: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name -> number
    readiness_port: str = ""  # the readinessProbe's httpGet port, a number or a port name
    termination_grace_seconds: int = 30
    node: str = ""  # spec.nodeName: where the scheduler put it, "" while unscheduled


@dataclass(frozen=True)
class CustomResourceDefinition:
    name: str
    conditions: tuple[Condition, ...]

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def is_established(self) -> bool:
        """The API server serves the kind (condition Established True)."""
        established = self.condition("Established")
        return established is not None and established.status == "True"


@dataclass(frozen=True)
class AnalysisRun:
    name: str
    namespace: str
    resource_version: str
    phase: str
    message: str
    labels: Mapping[str, str]
    raw: Mapping[str, Any] = field(repr=False, compare=False)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _analysis_ref(value: Mapping[str, Any] | None) -> AnalysisRunRef | None:
    if not value:
        return None
    return AnalysisRunRef(
        str(value.get("name", "")), str(value.get("status", "")), str(value.get("message", ""))
    )


def _conditions(status: Mapping[str, Any]) -> tuple[Condition, ...]:
    return tuple(
        Condition(c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""))
        for c in status.get("conditions") or []
    )


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        found.extend(spec.get(key) or [])
    return found


def rollout_from(obj: Mapping[str, Any]) -> Rollout:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    blue_green = (spec.get("strategy") or {}).get("blueGreen") or {}
    bg_status = status.get("blueGreen") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    return Rollout(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        resource_version=meta.get("resourceVersion", ""),
        generation=int(meta.get("generation") or 0),
        observed_generation=str(status.get("observedGeneration", "")),
        annotations=dict(meta.get("annotations") or {}),
        spec_replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        progress_deadline_abort=bool(spec.get("progressDeadlineAbort", False)),
        paused=bool(spec.get("paused", False)),
        restart_at=spec.get("restartAt"),
        images={c["name"]: c.get("image", "") for c in _containers(pod_spec)},
        active_service=blue_green.get("activeService", ""),
        preview_service=blue_green.get("previewService", ""),
        has_post_promotion_analysis=blue_green.get("postPromotionAnalysis") is not None,
        scale_down_delay_seconds=int(blue_green.get("scaleDownDelaySeconds", 30)),
        template_resolved_from_ref=bool(spec.get("templateResolvedFromRef", False)),
        status_phase=status.get("phase", ""),
        status_message=status.get("message", ""),
        controller_pause=bool(status.get("controllerPause", False)),
        pause_conditions=tuple(
            PauseCondition(p.get("reason", ""), p.get("startTime", ""))
            for p in status.get("pauseConditions") or []
        ),
        conditions=_conditions(status),
        abort=bool(status.get("abort", False)),
        promote_full=bool(status.get("promoteFull", False)),
        current_hash=status.get("currentPodHash", ""),
        stable_hash=status.get("stableRS", ""),
        active_selector=bg_status.get("activeSelector", ""),
        preview_selector=bg_status.get("previewSelector", ""),
        pre_promotion_analysis=_analysis_ref(bg_status.get("prePromotionAnalysisRunStatus")),
        post_promotion_analysis=_analysis_ref(bg_status.get("postPromotionAnalysisRunStatus")),
        restarted_at=status.get("restartedAt"),
        workload_observed_generation=str(status.get("workloadObservedGeneration", "")),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        raw=obj,
    )


def replica_set_from(obj: Mapping[str, Any]) -> ReplicaSet:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    annotations = dict(meta.get("annotations") or {})
    revision = annotations.get(REVISION_ANNOTATION)
    owners = [o["name"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "Rollout"]
    return ReplicaSet(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        resource_version=meta.get("resourceVersion", ""),
        pod_template_hash=(meta.get("labels") or {}).get(HASH_LABEL, ""),
        revision=int(revision) if revision and revision.isdigit() else None,
        owner=owners[0] if owners else None,
        replicas=int(spec.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        annotations=annotations,
        template=spec.get("template") or {},
        created=str(meta.get("creationTimestamp") or ""),
    )


def service_from(obj: Mapping[str, Any]) -> Service:
    meta, spec = _meta(obj), obj.get("spec") or {}
    return Service(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        resource_version=meta.get("resourceVersion", ""),
        selector=dict(spec.get("selector") or {}),
        ports=tuple(
            (
                str(p.get("name", "")),
                int(p.get("port", 0)),
                str(p.get("targetPort", p.get("port", ""))),
            )
            for p in spec.get("ports") or []
        ),
    )


def pod_from(obj: Mapping[str, Any]) -> Pod:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    env: dict[str, str] = {}
    ports: dict[str, int] = {}
    readiness_port = ""
    for container in spec.get("containers") or []:
        http_get = (container.get("readinessProbe") or {}).get("httpGet") or {}
        if http_get.get("port") is not None and not readiness_port:
            readiness_port = str(http_get["port"])
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
        for index, port in enumerate(container.get("ports") or []):
            if "containerPort" in port:
                ports[str(port.get("name") or f"#{index}")] = int(port["containerPort"])
    return Pod(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        resource_version=meta.get("resourceVersion", ""),
        labels=dict(meta.get("labels") or {}),
        phase=status.get("phase", ""),
        ready=ready,
        deleting=meta.get("deletionTimestamp") is not None,
        images={c["name"]: c.get("image", "") for c in spec.get("containers") or []},
        env=env,
        uid=str(meta.get("uid", "")),
        annotations=dict(meta.get("annotations") or {}),
        ports=ports,
        readiness_port=readiness_port,
        termination_grace_seconds=int(spec.get("terminationGracePeriodSeconds") or 30),
        node=str(spec.get("nodeName") or ""),
    )


def analysis_run_from(obj: Mapping[str, Any]) -> AnalysisRun:
    meta, status = _meta(obj), obj.get("status") or {}
    return AnalysisRun(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        resource_version=meta.get("resourceVersion", ""),
        phase=status.get("phase", ""),
        message=status.get("message", ""),
        labels=dict(meta.get("labels") or {}),
        raw=obj,
    )


def crd_from(obj: Mapping[str, Any]) -> CustomResourceDefinition:
    return CustomResourceDefinition(
        name=_meta(obj).get("name", ""), conditions=_conditions(obj.get("status") or {})
    )


# -- the client ------------------------------------------------------------------------------


class Kube:
    """Raw reads, watches and patches against one namespace."""

    def __init__(
        self,
        *,
        kubeconfig: Path | None,
        context: str | None,
        namespace: str,
        impersonate: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        write_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.namespace = namespace
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_attempts = write_attempts
        self.sleep = sleep
        configuration = client.Configuration()
        try:
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
            )
        except (ConfigException, OSError) as exc:
            where = kubeconfig or "~/.kube/config"
            raise ConfigError(
                f"cannot load kubeconfig {where}{f' context {context!r}' if context else ''}: "
                f"{exc}; set BGH_KUBECONFIG (e.g. BGH_KUBECONFIG=.bgh/local/kubeconfig) or run "
                "`bgh up` first"
            ) from exc
        # urllib3 would otherwise retry a timed-out GET three times on its own, multiplying the
        # read timeout; retries are decided in ``_call``.
        configuration.retries = False
        self.api = client.ApiClient(configuration)
        if impersonate:
            # What `kubectl --as` sends: the API server authorizes the request as this user.
            self.api.set_default_header("Impersonate-User", impersonate)

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        stream: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """One request; ``timeout`` is its read timeout (default ``read_timeout``)."""
        attempts = self.write_attempts if _idempotent_write(method, content_type) else 1
        backoff = 0.25
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(method, path, query, body, content_type, timeout)
            except _Transient as exc:
                if attempt == attempts:
                    raise exc.error from exc.__cause__
                self.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            break
        if stream:
            return response
        return json.loads(response.data or b"null")

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        timeout: float | None,
    ) -> Any:
        try:
            method, url, headers, payload, _ = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=payload,
                _request_timeout=(self.connect_timeout, timeout or self.read_timeout),
            ).response
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            unreachable = Unreachable(
                f"cannot reach the API server at {self.server} ({method} {path}): {exc}"
            )
            if _is_reset(exc):
                raise _Transient(unreachable) from exc
            raise unreachable from exc
        if response.status >= 400:
            error = _translate(response.status, response.reason, response.data, method, path)
            if response.status in RETRIED_STATUSES:
                raise _Transient(error)
            raise error
        return response

    def get(self, kind: Kind, name: str, *, timeout: float | None = None) -> dict[str, Any]:
        """One object; ``timeout``: the read timeout, when less than ``read_timeout`` is left."""
        try:
            result: dict[str, Any] = self._call(
                "GET", kind.path(self.namespace, name), timeout=timeout
            )
        except NotFound as exc:
            others = sorted(o["metadata"]["name"] for o in self.list(kind)[0])
            listing = ", ".join(others) if others else "none"
            where = f' in namespace "{self.namespace}"' if kind.namespaced else ""
            raise NotFound(
                f'{kind.name} "{name}" not found{where}; {kind.plural} there: {listing}.'
            ) from exc
        return result

    def list(
        self, kind: Kind, *, label_selector: str | None = None, all_namespaces: bool = False
    ) -> tuple[list[dict[str, Any]], str]:
        query = {"labelSelector": label_selector} if label_selector else None
        namespace = None if all_namespaces else self.namespace
        result = self._call("GET", kind.path(namespace), query=query)
        return list(result.get("items") or []), str(result["metadata"].get("resourceVersion", ""))

    def watch(
        self,
        kind: Kind,
        *,
        resource_version: str,
        timeout_seconds: int,
        name: str | None = None,
        label_selector: str | None = None,
        all_namespaces: bool = False,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events after ``resource_version`` until the server closes the stream.

        Raises ``Expired`` on 410 Gone (the caller reads again and resumes); a dropped stream
        simply ends the iterator.
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(max(1, timeout_seconds)),
            "allowWatchBookmarks": "true",
        }
        if name:
            query["fieldSelector"] = f"metadata.name={name}"
        if label_selector:
            query["labelSelector"] = label_selector
        response = self._call(
            "GET",
            kind.path(None if all_namespaces else self.namespace),
            query=query,
            stream=True,
            # The server ends the stream after timeoutSeconds; a silent one is cut a second later.
            timeout=timeout_seconds + 1,
        )
        try:
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind_of_event = event.get("type", "")
                    obj = event.get("object") or {}
                    if kind_of_event == "ERROR":
                        if obj.get("code") == 410:
                            raise Expired(
                                f"watch of {kind.plural} from {resource_version}: "
                                f"{obj.get('message', '410 Gone')}"
                            )
                        raise ApiError(f"watch of {kind.plural} failed: {obj.get('message', obj)}")
                    yield kind_of_event, obj
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError):
            return  # a dropped stream: the caller reads again and resumes
        finally:
            response.release_conn()

    def namespace_labels(self) -> dict[str, str]:
        """The labels of the namespace this client works in."""
        try:
            result = self._call("GET", f"/api/v1/namespaces/{self.namespace}")
        except NotFound as exc:
            raise NotFound(f'namespace "{self.namespace}" not found') from exc
        return dict((result.get("metadata") or {}).get("labels") or {})

    def patch(
        self,
        kind: Kind,
        name: str,
        body: Any,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """PATCH one object of this namespace, or of ``namespace`` when given."""
        where = namespace or self.namespace
        path = kind.path(where, name) + (f"/{subresource}" if subresource else "")
        result: dict[str, Any] = self._call("PATCH", path, body=body, content_type=content_type)
        return result

    def create(self, kind: Kind, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST one object into this namespace; ``Conflict`` when one of that name exists."""
        result: dict[str, Any] = self._call("POST", kind.path(self.namespace), body=dict(body))
        return result

    def replace(self, kind: Kind, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", kind.path(self.namespace, name), body=dict(body))
        return result

    def apply(self, kind: Kind, body: Mapping[str, Any], *, field_manager: str) -> dict[str, Any]:
        """Server-side apply one object into this namespace (conflicts forced: the harness owns
        what it applies)."""
        name = str(_meta(body).get("name", ""))
        document = {**body, "metadata": {**_meta(body), "namespace": self.namespace}}
        result: dict[str, Any] = self._call(
            "PATCH",
            kind.path(self.namespace, name),
            query={"fieldManager": field_manager, "force": "true"},
            body=document,
            content_type=APPLY_PATCH,
        )
        return result

    def delete(self, kind: Kind, name: str) -> None:
        """Delete one object (foreground: its finalizers run before it is gone); absent is fine."""
        with contextlib.suppress(NotFound):
            self._call(
                "DELETE",
                kind.path(self.namespace, name),
                body={"propagationPolicy": "Foreground"},
            )

    def wait_deleted(self, kind: Kind, name: str, *, within: float) -> None:
        """Block until ``name`` is gone, on a watch; WaitTimeout with what still holds it."""
        deadline = Deadline(within)
        while True:
            try:
                obj = self.get(kind, name)
            except NotFound:
                return
            version = str(_meta(obj).get("resourceVersion", ""))
            if deadline.expired():
                finalizers = ", ".join(_meta(obj).get("finalizers") or []) or "none"
                raise WaitTimeout(
                    f'{kind.name} "{name}" in namespace "{self.namespace}"',
                    within=within,
                    last_seen=f"still there, finalizers: {finalizers}",
                    expecting="gone",
                )
            with contextlib.suppress(Expired, Unreachable):
                for event, _ in self.watch(
                    kind,
                    name=name,
                    resource_version=version,
                    timeout_seconds=max(1, math.ceil(deadline.left())),
                ):
                    if event == "DELETED":
                        return


RETRIED_STATUSES = frozenset({429, 500, 503, 504})


class _Transient(Exception):
    """A failure worth another try of an idempotent write; ``error`` is what the caller gets."""

    def __init__(self, error: HarnessError) -> None:
        super().__init__(str(error))
        self.error = error


def _idempotent_write(method: str, content_type: str) -> bool:
    """A write that leaves the same object however often it lands (a JSON patch may not)."""
    if method in ("PUT", "DELETE"):
        return True
    return method == "PATCH" and content_type in (MERGE_PATCH, APPLY_PATCH)


def _is_reset(exc: BaseException) -> bool:
    """A connection the server reset or closed before answering (not a timeout: that time is
    spent)."""
    return isinstance(exc, ConnectionResetError | urllib3.exceptions.ProtocolError)


def _translate(status: int, reason: str, body: bytes, method: str, path: str) -> HarnessError:
    try:
        reason = json.loads(body or b"{}").get("message", reason)
    except ValueError:
        reason = body.decode(errors="replace") or reason
    if status == 404:
        return NotFound(f"{method} {path}: not found")
    if status in (429, 503, 504):
        # Throttled, or an API server still starting up: transient, so waits retry it.
        return Unreachable(f"{method} {path}: API server busy ({status}): {reason}")
    if status == 410:
        return Expired(f"{method} {path}: {reason}")
    if status == 409:
        return Conflict(f"{method} {path}: conflict: {reason}")
    if status == 401:
        # Not a permission the identity lacks but credentials the server rejects: nothing it
        # would be allowed to do can be checked, so this must fail, never skip like a 403.
        return Unauthorized(
            f"{method} {path} was refused (401 Unauthorized): {reason}. The API server did not "
            "accept the kubeconfig's credentials: its token or certificate is expired or invalid; "
            "renew it (e.g. kubectl create token <service account>) and point BGH_KUBECONFIG at "
            "the new kubeconfig."
        )
    if status == 403:
        return Forbidden(
            f"{method} {path} was refused (403): {reason}. The harness's identity lacks "
            "this permission; gitops/rbac/harness-roles.yaml lists what each kind of runbook "
            "needs."
        )
    return ApiError(f"{method} {path} failed ({status}): {reason}")


class Conflict(ApiError):
    """409: the object changed since it was read."""


class Forbidden(ApiError):
    """403: the harness's identity may not do this (RBAC)."""


class Unauthorized(ApiError):
    """401: the API server rejects the credentials themselves (expired or invalid token)."""


@dataclass(frozen=True)
class Resource(Generic[T]):
    """One kind bound to its converter: what a wait reads, watches and turns into a T."""

    kube: Kube
    kind: Kind
    convert: Callable[[Mapping[str, Any]], T]

    def read(self, name: str, *, timeout: float | None = None) -> tuple[T, str]:
        raw = self.kube.get(self.kind, name, timeout=timeout)
        return self.convert(raw), str(_meta(raw).get("resourceVersion", ""))

    def events(
        self, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, T | None, str]]:
        """(event type, object or None for a bookmark, resourceVersion to resume from)."""
        for kind_of_event, raw in self.kube.watch(
            self.kind,
            name=name,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
        ):
            version = str(_meta(raw).get("resourceVersion", resource_version))
            if kind_of_event == "BOOKMARK":
                yield kind_of_event, None, version
            else:
                yield kind_of_event, self.convert(raw), version
