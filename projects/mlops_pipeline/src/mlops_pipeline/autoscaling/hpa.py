"""The Horizontal Pod Autoscaler's control rule (autoscaling/v2), as its controller implements it.

Why a re-implementation: to replay a day of flight-scoring load through the exact rule a cluster
would apply, and to see what the tolerance, the stabilisation windows and the scaling policies
cost (pod-hours) and buy (less overload, fewer flaps) without a cluster.

Sources read (names and semantics follow them; no code is copied):

- kubernetes/kubernetes `pkg/controller/podautoscaler/horizontal.go` and
  `replica_calculator.go` at commit 00067268967ec95a40035bd666374a1caf48dd1a (the
  autoscaling/v2beta2-era controller with behaviours): the tolerance, missing and not-ready
  pods, `normalizeDesiredReplicasWithBehaviors`, `calculateScaleUpLimitWithScalingRules`,
  `calculateScaleDownLimitWithBehaviors`, `getReplicasChangePerPeriod`, `storeScaleEvent`,
  `recordInitialRecommendation`.
- karmada-io/karmada `pkg/controllers/federatedhpa/federatedhpa_controller.go` (commit
  c8423cb2375f5c6bba70b2dc47f41c752d9d74bc) and `replica_calculator.go` (commit
  54e900cc1f05653fd0594691d6f311977ecdcc26), which say they are lifted from Kubernetes
  release-1.27. They carry the later upstream semantics this module follows where the two
  differ: (1) stabilisation clamps the current count between the LOWEST recommendation of the
  scale-up window and the HIGHEST of the scale-down window (the older code took one or the
  other by direction); (2) a policy period's starting count is current - added + deleted, both
  directions' events counted; (3) when some metrics fail and the others suggest a scale-down,
  nothing happens; (4) pods are grouped as ready / unready (Pending, or CPU not yet ready:
  set aside, counted as 0 on a scale-up) / missing (no sample); a missing CPU pod counts as
  max(100 %, target) of its request on a scale-down.

Defaults (Kubernetes API defaulting and controller flags): tolerance 0.1, sync period 15 s,
scale-up: no stabilisation, the larger of +100 % and +4 pods per 15 s; scale-down: 300 s
stabilisation (the highest recommendation of the last 300 s), -100 % per 15 s.

Tolerance per direction (Kubernetes 1.33+, feature gate HPAConfigurableTolerance): a rule's
`tolerance` (`behavior.scaleUp.tolerance`, `behavior.scaleDown.tolerance`) replaces the
cluster-wide `--horizontal-pod-autoscaler-tolerance` (`HPASpec.tolerance`) for that direction.
As in the controller's `Tolerances.isWithin`, a ratio r changes nothing while
1 - scale_down <= r <= 1 + scale_up, so the direction a ratio points to picks its tolerance,
also where the ratio is recomputed for missing and unready pods; read from
kubernetes/kubernetes `replica_calculator.go` as of the releases that have `Tolerances`
(1.33 and later).

Simplifications, stated: metric kinds `Resource` (target `averageUtilization`, the pod samples
in % of an equal CPU request per pod) and `Pods` (target `averageValue`) only - no Object,
External or ContainerResource metrics, and no metric `selector`; the controller's legacy path
for an HPA without `behavior` (only a scale-down window, and a scale-up limit of
max(2 x current, 4) per reconcile, where the behaviour defaults allow max(2 x current,
current + 4)) is not modelled: every HPA here takes the behaviour path with the API defaults,
as any HPA that sets `behavior` does (the design's HPA sets its scale-down window).
`HPASpec.from_manifest` refuses any field it does not model rather than replay a different
HPA than the one written down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "Decision",
    "HPABehavior",
    "HPAScalingPolicy",
    "HPAScalingRules",
    "HPASpec",
    "HorizontalPodAutoscaler",
    "MetricSpec",
    "NoMetrics",
    "PodMetric",
    "Recommendation",
    "ScaleEvent",
    "Tolerances",
    "desired_replicas",
    "parse_quantity",
    "replicas_for_metric",
    "scale_down_limit",
    "scale_up_limit",
    "stabilized_recommendation",
]

POLICY_TYPES = ("Pods", "Percent")
SELECT_POLICIES = ("Max", "Min", "Disabled")
METRIC_KINDS = ("Resource", "Pods")
DEFAULT_TOLERANCE = 0.1
"""--horizontal-pod-autoscaler-tolerance: no scaling while |ratio - 1| <= this."""
DEFAULT_DOWNSCALE_STABILIZATION_S = 300
"""--horizontal-pod-autoscaler-downscale-stabilization, used when scaleDown sets no window."""


class NoMetrics(ValueError):
    """A metric gave no usable sample (no ready pod reported it): the metric is invalid."""


def _check_tolerance(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{what} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class Tolerances:
    """The tolerance band per direction: a ratio r (current / target) changes nothing while
    1 - scale_down <= r <= 1 + scale_up (the controller's `Tolerances.isWithin`)."""

    scale_down: float = DEFAULT_TOLERANCE
    scale_up: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        _check_tolerance(self.scale_down, "Tolerances.scale_down")
        _check_tolerance(self.scale_up, "Tolerances.scale_up")

    def for_ratio(self, ratio: float) -> float:
        """The tolerance of the direction `ratio` points to (above 1: up; else down)."""
        return self.scale_up if ratio > 1.0 else self.scale_down

    def within(self, ratio: float) -> bool:
        """No change for this ratio: |ratio - 1| within its direction's tolerance."""
        return abs(1.0 - ratio) <= self.for_ratio(ratio)


# --- the API types (autoscaling/v2 names) -----------------------------------------------------


@dataclass(frozen=True)
class HPAScalingPolicy:
    """One policy: at most `value` pods (type Pods) or `value` % (type Percent) per period."""

    type: str
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.type not in POLICY_TYPES:
            raise ValueError(
                f"HPAScalingPolicy.type must be one of {POLICY_TYPES}, got {self.type!r}"
            )
        if not isinstance(self.value, int) or self.value <= 0:
            raise ValueError(f"HPAScalingPolicy.value must be a positive int, got {self.value!r}")
        if not isinstance(self.period_seconds, int) or not 0 < self.period_seconds <= 1800:
            raise ValueError(
                f"HPAScalingPolicy.period_seconds must be an int in (0, 1800], "
                f"got {self.period_seconds!r}"
            )


@dataclass(frozen=True)
class HPAScalingRules:
    """Rules for one direction; a None field takes the API default for that direction, and a
    None `tolerance` the controller's cluster-wide flag (`HPASpec.tolerance`)."""

    stabilization_window_seconds: int | None = None
    select_policy: str | None = None
    policies: tuple[HPAScalingPolicy, ...] | None = None
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.tolerance is not None:
            _check_tolerance(self.tolerance, "HPAScalingRules.tolerance")
        window = self.stabilization_window_seconds
        if window is not None and (not isinstance(window, int) or not 0 <= window <= 3600):
            raise ValueError(
                f"stabilization_window_seconds must be an int in [0, 3600], got {window!r}"
            )
        if self.select_policy is not None and self.select_policy not in SELECT_POLICIES:
            raise ValueError(
                f"select_policy must be one of {SELECT_POLICIES}, got {self.select_policy!r}"
            )
        if self.policies is not None:
            object.__setattr__(self, "policies", tuple(self.policies))
            if not self.policies:
                raise ValueError("policies, when given, must not be empty (omit them instead)")


DEFAULT_SCALE_UP = HPAScalingRules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=(HPAScalingPolicy("Percent", 100, 15), HPAScalingPolicy("Pods", 4, 15)),
)
"""API default for scaleUp: no stabilisation, the larger of +100 % and +4 pods per 15 s."""
DEFAULT_SCALE_DOWN = HPAScalingRules(
    stabilization_window_seconds=None,  # the controller's downscale-stabilization flag (300 s)
    select_policy="Max",
    policies=(HPAScalingPolicy("Percent", 100, 15),),
)
"""API default for scaleDown: the controller's 300 s window, -100 % per 15 s."""


@dataclass(frozen=True)
class HPABehavior:
    """`spec.behavior`: scale-up and scale-down rules; None or None fields take the defaults."""

    scale_up: HPAScalingRules | None = None
    scale_down: HPAScalingRules | None = None

    def resolved(
        self,
        downscale_stabilization_s: int = DEFAULT_DOWNSCALE_STABILIZATION_S,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> tuple[HPAScalingRules, HPAScalingRules]:
        """(scale-up rules, scale-down rules) with every field set, as the API server and the
        controller fill them (GenerateHPAScaleUpRules / ScaleDownRules, then the two flags:
        the downscale stabilisation and the tolerance)."""
        up = _fill(self.scale_up, DEFAULT_SCALE_UP, tolerance)
        down = _fill(self.scale_down, DEFAULT_SCALE_DOWN, tolerance)
        if down.stabilization_window_seconds is None:
            down = replace(down, stabilization_window_seconds=downscale_stabilization_s)
        return up, down


def _fill(
    rules: HPAScalingRules | None, default: HPAScalingRules, tolerance: float
) -> HPAScalingRules:
    rules = rules or HPAScalingRules()
    return HPAScalingRules(
        default.stabilization_window_seconds
        if rules.stabilization_window_seconds is None
        else rules.stabilization_window_seconds,
        rules.select_policy or default.select_policy,
        rules.policies or default.policies,
        tolerance if rules.tolerance is None else rules.tolerance,
    )


@dataclass(frozen=True)
class MetricSpec:
    """One entry of `spec.metrics`.

    kind "Resource": `name` is the resource ("cpu"), `target` its averageUtilization (an int, %
    of the pods' request); kind "Pods": `name` is the per-pod custom metric, `target` its
    averageValue (in the metric's unit, e.g. requests/s).
    """

    kind: str
    name: str
    target: float

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"MetricSpec.kind must be one of {METRIC_KINDS}, got {self.kind!r}")
        if not self.name:
            raise ValueError("MetricSpec.name must not be empty")
        if not self.target > 0:
            raise ValueError(f"MetricSpec {self.name}: target must be > 0, got {self.target!r}")
        if self.kind == "Resource" and int(self.target) != self.target:
            raise ValueError(f"averageUtilization is an integer %, got {self.target!r}")


@dataclass(frozen=True)
class HPASpec:
    """The HPA's spec, plus the two controller flags it depends on (`tolerance` is the
    cluster-wide one; a rule's own `tolerance` overrides it for that direction)."""

    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    min_replicas: int = 1
    behavior: HPABehavior = field(default_factory=HPABehavior)
    tolerance: float = DEFAULT_TOLERANCE
    downscale_stabilization_s: int = DEFAULT_DOWNSCALE_STABILIZATION_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if not self.metrics:
            raise ValueError("HPASpec needs at least one metric")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"HPASpec metric names must be unique, got {names}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(
                f"need 0 <= min_replicas <= max_replicas and max_replicas >= 1; "
                f"got min={self.min_replicas}, max={self.max_replicas}"
            )
        _check_tolerance(self.tolerance, "HPASpec.tolerance")

    @property
    def tolerances(self) -> Tolerances:
        """The band the controller applies: each direction's rule tolerance, else the flag."""
        up, down = self.behavior.resolved(self.downscale_stabilization_s, self.tolerance)
        return Tolerances(scale_down=down.tolerance, scale_up=up.tolerance)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], **flags: Any) -> HPASpec:
        """An HPASpec from an autoscaling/v2 HorizontalPodAutoscaler object (a parsed YAML).

        Lets a replay run the very manifest that is deployed. `flags` sets `tolerance` or
        `downscale_stabilization_s`. Reads `behavior.scaleUp/scaleDown.tolerance` (1.33+).
        Anything the model does not replay - a metric type other than Resource and Pods, a
        metric selector, or any field of spec, behavior, its rules or their policies it does not
        know (a newer API field, or a typo such as `scaleup`) - raises ValueError naming it,
        rather than being ignored.
        """
        if manifest.get("apiVersion") != "autoscaling/v2" or (
            manifest.get("kind") != "HorizontalPodAutoscaler"
        ):
            raise ValueError(
                "expected an autoscaling/v2 HorizontalPodAutoscaler, got "
                f"{manifest.get('apiVersion')}/{manifest.get('kind')}"
            )
        spec = _mapping(manifest.get("spec") or {}, "spec")
        _known(spec, _SPEC_FIELDS, "spec")
        if "maxReplicas" not in spec:
            raise ValueError("HorizontalPodAutoscaler spec has no maxReplicas")
        metrics = tuple(
            _metric_from_manifest(_mapping(m, f"spec.metrics[{i}]"), f"spec.metrics[{i}]")
            for i, m in enumerate(spec.get("metrics") or ())
        )
        if not metrics:  # the API default: 80 % CPU
            metrics = (MetricSpec("Resource", "cpu", 80),)
        raw = _mapping(spec.get("behavior") or {}, "spec.behavior")
        _known(raw, ("scaleUp", "scaleDown"), "spec.behavior")
        behavior = HPABehavior(
            _rules_from_manifest(raw.get("scaleUp"), "spec.behavior.scaleUp"),
            _rules_from_manifest(raw.get("scaleDown"), "spec.behavior.scaleDown"),
        )
        return cls(
            max_replicas=int(spec["maxReplicas"]),
            min_replicas=int(spec.get("minReplicas", 1)),
            metrics=metrics,
            behavior=behavior,
            **flags,
        )


_SPEC_FIELDS = ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior")
_RULES_FIELDS = ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
_POLICY_FIELDS = ("type", "value", "periodSeconds")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _known(raw: Mapping[str, Any], fields: Sequence[str], where: str) -> None:
    """Refuse a field the model would otherwise ignore: the replay would not be the manifest."""
    unknown = [key for key in raw if key not in fields]
    if unknown:
        raise ValueError(
            f"{where}: unknown or unsupported field {unknown[0]!r} (this model reads "
            f"{', '.join(fields)}); remove it or extend autoscaling.hpa to replay it"
        )


def _required(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise ValueError(f"{where}: missing field {key!r}")
    return raw[key]


def _metric_from_manifest(entry: Mapping[str, Any], where: str) -> MetricSpec:
    kind = entry.get("type")
    if kind == "Resource":
        _known(entry, ("type", "resource"), where)
        source = _mapping(_required(entry, "resource", where), f"{where}.resource")
        _known(source, ("name", "target"), f"{where}.resource")
        target = _mapping(source.get("target") or {}, f"{where}.resource.target")
        if target.get("type") != "Utilization":
            raise ValueError(f"Resource metric {source.get('name')}: only Utilization targets")
        _known(target, ("type", "averageUtilization"), f"{where}.resource.target")
        utilization = _required(target, "averageUtilization", f"{where}.resource.target")
        return MetricSpec("Resource", _required(source, "name", where), int(utilization))
    if kind == "Pods":
        _known(entry, ("type", "pods"), where)
        source = _mapping(_required(entry, "pods", where), f"{where}.pods")
        _known(source, ("metric", "target"), f"{where}.pods")
        metric = _mapping(_required(source, "metric", f"{where}.pods"), f"{where}.pods.metric")
        _known(metric, ("name",), f"{where}.pods.metric")
        name = _required(metric, "name", f"{where}.pods.metric")
        target = _mapping(source.get("target") or {}, f"{where}.pods.target")
        if target.get("type") != "AverageValue":
            raise ValueError(f"Pods metric {name}: only AverageValue targets")
        _known(target, ("type", "averageValue"), f"{where}.pods.target")
        value = _required(target, "averageValue", f"{where}.pods.target")
        return MetricSpec("Pods", name, parse_quantity(value))
    raise ValueError(f"{where}: metric type {kind!r} is not modelled (only Resource and Pods)")


def _rules_from_manifest(raw: Any, where: str) -> HPAScalingRules | None:
    if raw is None:
        return None
    raw = _mapping(raw, where)
    _known(raw, _RULES_FIELDS, where)
    policies = []
    for i, entry in enumerate(raw.get("policies") or ()):
        at = f"{where}.policies[{i}]"
        entry = _mapping(entry, at)
        _known(entry, _POLICY_FIELDS, at)
        try:
            policy = HPAScalingPolicy(
                _required(entry, "type", at),
                int(_required(entry, "value", at)),
                int(_required(entry, "periodSeconds", at)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{at}: {exc}") from None
        policies.append(policy)
    tolerance = raw.get("tolerance")
    try:
        return HPAScalingRules(
            stabilization_window_seconds=raw.get("stabilizationWindowSeconds"),
            select_policy=raw.get("selectPolicy"),
            policies=tuple(policies) or None,
            tolerance=None if tolerance is None else parse_quantity(tolerance),
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


_SUFFIXES = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6),
    "G": Decimal(10**9), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
}  # fmt: skip


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ("40", "500m", "1.5k", "2Ki") as a float."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    number = text.rstrip("kMGimK")
    suffix = text[len(number) :]
    if suffix not in _SUFFIXES:
        raise ValueError(f"unsupported quantity suffix in {value!r}")
    try:
        return float(Decimal(number) * _SUFFIXES[suffix])
    except InvalidOperation:
        raise ValueError(f"not a quantity: {value!r}") from None


# --- the replica calculation ------------------------------------------------------------------


def desired_replicas(
    current: int,
    current_value: float,
    target: float,
    tolerance: float = DEFAULT_TOLERANCE,
    ready: int | None = None,
) -> int:
    """The replica count one metric asks for: ceil(pods x current_value / target).

    `current_value` is the metric averaged over the `ready` pods that reported it (default: all
    `current` pods), in the same unit as `target`. Within the tolerance - |ratio - 1| <= tolerance
    - the answer is `current` itself (no change, whatever `ready` is); otherwise the ratio scales
    the number of pods that were averaged, rounded UP (a fractional pod would leave the others
    above target). Examples from the Kubernetes docs: 200m against a target of 100m doubles the
    count, 50m halves it.
    """
    if current < 0 or (ready is not None and ready < 0):
        raise ValueError(f"desired_replicas: negative pod count (current={current}, ready={ready})")
    if not target > 0:
        raise ValueError(f"desired_replicas: target must be > 0, got {target}")
    if current_value < 0 or tolerance < 0:
        raise ValueError(
            f"desired_replicas: need current_value >= 0 and tolerance >= 0; "
            f"got {current_value}, {tolerance}"
        )
    # BEGIN SOLUTION 2.7: ratio to target; no change within tolerance, else ceil(ratio x pods)
    ratio = current_value / target
    if abs(1.0 - ratio) <= tolerance:
        return current
    pods = current if ready is None else ready
    return math.ceil(ratio * pods)
    # END SOLUTION


@dataclass(frozen=True)
class PodMetric:
    """One pod's sample of a metric, as the controller sees it.

    `value`: % of the pod's CPU request (Resource metrics) or the metric's value (Pods metrics);
    None when the metrics API returned no sample for a running pod ("missing"). `ready=False`:
    the pod is Pending, or - for CPU only - has a sample but is not yet ready or was sampled
    before it became ready; such a pod is set aside, and counted as 0 on a scale-up.
    """

    value: float | None
    ready: bool = True


def replicas_for_metric(
    spec: MetricSpec,
    current_replicas: int,
    pods: Sequence[PodMetric],
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
) -> int:
    """One metric's replica proposal with Kubernetes' treatment of missing and not-ready pods.

    Ready pods with a sample give the average (Resource: an integer % of the request, as the
    controller truncates it; Pods: milli-units). If no pod is unready-on-a-scale-up and none is
    missing, `desired_replicas` decides. Otherwise the average is recomputed conservatively -
    missing pods at max(100 %, target) (Resource) or at the target (Pods) on a scale-down and at
    0 on a scale-up, unready pods at 0 on a scale-up - and the count stays `current_replicas`
    when the new ratio is within the tolerance or points the other way. `tolerance`: one number
    for both directions, or `Tolerances` (the ratio's direction picks one). Raises NoMetrics
    when no ready pod has a sample.
    """
    tolerances = (
        tolerance if isinstance(tolerance, Tolerances) else Tolerances(tolerance, tolerance)
    )
    if current_replicas < 0:
        raise ValueError(f"replicas_for_metric: current_replicas must be >= 0: {current_replicas}")
    samples = [p.value for p in pods if p.ready and p.value is not None]
    unready = sum(1 for p in pods if not p.ready)
    missing = sum(1 for p in pods if p.ready and p.value is None)
    if not samples:
        raise NoMetrics(f"did not receive metrics for any ready pods ({spec.name})")
    if any(v < 0 for v in samples):
        raise ValueError(f"replicas_for_metric: negative sample for {spec.name}")
    average, target = _average(spec, samples), _target(spec)
    ratio = average / target
    scale_up_with_unready = unready > 0 and ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        return desired_replicas(
            current_replicas, average, target, tolerances.for_ratio(ratio), ready=len(samples)
        )

    values = list(samples)
    if missing and ratio < 1.0:
        fill = max(100.0, spec.target) if spec.kind == "Resource" else spec.target
        values += [fill] * missing
    elif missing and ratio > 1.0:
        values += [0.0] * missing
    if scale_up_with_unready:
        values += [0.0] * unready
    new_average = _average(spec, values)
    new_ratio = new_average / target
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return current_replicas  # too small a change, or the direction reversed
    proposal = desired_replicas(
        current_replicas, new_average, target, tolerances.for_ratio(new_ratio), ready=len(values)
    )
    if (new_ratio < 1.0 and proposal > current_replicas) or (
        new_ratio > 1.0 and proposal < current_replicas
    ):
        return current_replicas  # counting more pods would reverse the direction
    return proposal


def _average(spec: MetricSpec, values: Sequence[float]) -> float:
    """The controller's average: integer % (Resource) or integer milli-units (Pods)."""
    if spec.kind == "Resource":  # (sum usage x 100) // sum requests, with equal requests
        # The epsilon keeps a mean that float arithmetic puts at 69.999... on 70.
        return float(math.floor(math.fsum(values) / len(values) + 1e-9))
    milli = [math.ceil(v * 1000 - 1e-9) for v in values]  # Quantity.MilliValue rounds up
    return (sum(milli) // len(milli)) / 1000


def _target(spec: MetricSpec) -> float:
    if spec.kind == "Resource":
        return float(spec.target)
    return math.ceil(spec.target * 1000 - 1e-9) / 1000


# --- stabilisation and rate limits ------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """A proposal (before stabilisation) the controller made at `timestamp` (seconds)."""

    timestamp: float
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    """A scale the controller made at `timestamp`: `change` pods added or removed (> 0)."""

    timestamp: float
    change: int


def stabilized_recommendation(
    history: Sequence[Recommendation],
    now: float,
    desired: int,
    current: int,
    scale_up_window: float = 0.0,
    scale_down_window: float = float(DEFAULT_DOWNSCALE_STABILIZATION_S),
) -> int:
    """The replica count after stabilisation, from earlier proposals and this one (`desired`).

    A scale-up goes no higher than the LOWEST proposal of the scale-up window, a scale-down no
    lower than the HIGHEST proposal of the scale-down window; a window holds the proposals made
    strictly after `now - window` plus `desired`. So `current` is clamped into [lowest of the
    up-window, highest of the down-window]: with the default 300 s scale-down window, a brief dip
    cannot remove pods the last 5 minutes asked for.
    """
    if scale_up_window < 0 or scale_down_window < 0:
        raise ValueError("stabilized_recommendation: windows must be >= 0")
    # BEGIN SOLUTION 2.7: clamp current between the up-window's lowest and the down-window's highest
    up = down = desired
    for rec in history:
        if rec.timestamp > now - scale_up_window:
            up = min(up, rec.replicas)
        if rec.timestamp > now - scale_down_window:
            down = max(down, rec.replicas)
    return min(max(current, up), down)
    # END SOLUTION


def _changed_within(events: Sequence[ScaleEvent], now: float, period: float) -> int:
    """Pods changed by events strictly after now - period (getReplicasChangePerPeriod)."""
    return sum(e.change for e in events if e.timestamp > now - period)


def scale_up_limit(
    current: int,
    now: float,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: HPAScalingRules,
) -> int:
    """The most replicas the scale-up policies allow now.

    Each policy measures from the count at the start of its period (current - added + removed
    in the last period_seconds) and proposes +value pods or +value % (rounded up, so that a
    small deployment can grow at all); selectPolicy Max takes the largest, Min the smallest,
    Disabled forbids scaling up.
    """
    if rules.select_policy == "Disabled":
        return current
    choose = min if rules.select_policy == "Min" else max
    proposals = []
    for policy in rules.policies or ():
        start = (
            current
            - _changed_within(up_events, now, policy.period_seconds)
            + _changed_within(down_events, now, policy.period_seconds)
        )
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    return choose(proposals)


def scale_down_limit(
    current: int,
    now: float,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: HPAScalingRules,
) -> int:
    """The fewest replicas the scale-down policies allow now (Percent truncates toward zero,
    so a 10 % policy on 72 pods removes 8); Max picks the largest change, Min the smallest."""
    if rules.select_policy == "Disabled":
        return current
    choose = max if rules.select_policy == "Min" else min
    proposals = []
    for policy in rules.policies or ():
        start = (
            current
            - _changed_within(up_events, now, policy.period_seconds)
            + _changed_within(down_events, now, policy.period_seconds)
        )
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    return choose(proposals)


# --- the controller ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What one reconcile saw and did.

    `proposed`: the largest metric proposal (None: no usable metrics, nothing done);
    `stabilized`: after the windows; `desired`: what the controller set (== `current` when it
    did nothing); `reason`: the condition reason Kubernetes would report.
    """

    timestamp: float
    current: int
    proposed: int | None
    stabilized: int | None
    desired: int
    reason: str
    metric: str | None = None

    @property
    def scaled(self) -> bool:
        return self.desired != self.current


class HorizontalPodAutoscaler:
    """One HPA's controller state (recommendations, scale events) and its reconcile step.

    Call `reconcile` every sync period (15 s by default) with the current replica count (the
    scale target's spec.replicas, starting pods included) and each metric's pod samples.
    Time is in seconds on any clock that never goes back.
    """

    def __init__(self, spec: HPASpec) -> None:
        self.spec = spec
        self.up_rules, self.down_rules = spec.behavior.resolved(
            spec.downscale_stabilization_s, spec.tolerance
        )
        self.tolerances = Tolerances(self.down_rules.tolerance, self.up_rules.tolerance)
        self.recommendations: list[Recommendation] = []
        self.up_events: list[ScaleEvent] = []
        self.down_events: list[ScaleEvent] = []
        self._last_now: float | None = None
        periods = [p.period_seconds for r in (self.up_rules, self.down_rules) for p in r.policies]
        self._keep_events_s = max(periods)
        self._keep_recommendations_s = max(
            self.up_rules.stabilization_window_seconds, self.down_rules.stabilization_window_seconds
        )

    def reconcile(
        self, now: float, current: int, samples: Mapping[str, Sequence[PodMetric]]
    ) -> Decision:
        """One pass of the control loop; records what `stabilized_recommendation` and the
        policies need next time. `samples` maps each MetricSpec.name to its pods' samples."""
        if self._last_now is not None and now < self._last_now:
            raise ValueError(f"reconcile: time went back ({now} < {self._last_now})")
        if current < 0:
            raise ValueError(f"reconcile: current replicas must be >= 0, got {current}")
        self._last_now = now
        spec = self.spec
        if not self.recommendations:  # recordInitialRecommendation
            self.recommendations.append(Recommendation(now, current))
        if current == 0 and spec.min_replicas != 0:
            return Decision(now, current, None, None, 0, "ScalingDisabled")
        if current > spec.max_replicas:
            return self._apply(
                Decision(now, current, None, None, spec.max_replicas, "AboveMaxReplicas")
            )
        if current < spec.min_replicas:
            return self._apply(
                Decision(now, current, None, None, spec.min_replicas, "BelowMinReplicas")
            )

        proposed, metric, invalid = 0, None, 0
        for metric_spec in spec.metrics:
            try:
                pods = samples.get(metric_spec.name, ())
                proposal = replicas_for_metric(metric_spec, current, pods, self.tolerances)
            except NoMetrics:
                invalid += 1
                continue
            if metric is None or proposal > proposed:
                proposed, metric = proposal, metric_spec.name
        if invalid == len(spec.metrics) or (invalid and proposed < current):
            return Decision(now, current, None, None, current, "FailedGetMetrics")

        stabilized = stabilized_recommendation(
            self.recommendations,
            now,
            proposed,
            current,
            self.up_rules.stabilization_window_seconds,
            self.down_rules.stabilization_window_seconds,
        )
        self.recommendations = [
            r for r in self.recommendations if r.timestamp >= now - self._keep_recommendations_s
        ] + [Recommendation(now, proposed)]
        desired, reason = self._limit(now, current, stabilized)
        return self._apply(Decision(now, current, proposed, stabilized, desired, reason, metric))

    def _limit(self, now: float, current: int, desired: int) -> tuple[int, str]:
        """convertDesiredReplicasWithBehaviorRate: the policies' rate and min/max replicas."""
        spec = self.spec
        if desired > current:
            limit = max(
                current,
                scale_up_limit(current, now, self.up_events, self.down_events, self.up_rules),
            )
            ceiling = min(spec.max_replicas, limit)
            reason = "ScaleUpLimit" if spec.max_replicas > limit else "TooManyReplicas"
            if desired > ceiling:
                return ceiling, reason
        elif desired < current:
            limit = min(
                current,
                scale_down_limit(current, now, self.up_events, self.down_events, self.down_rules),
            )
            floor = max(spec.min_replicas, limit)
            reason = "ScaleDownLimit" if spec.min_replicas < limit else "TooFewReplicas"
            if desired < floor:
                return floor, reason
        return desired, "DesiredWithinRange"

    def _apply(self, decision: Decision) -> Decision:
        """storeScaleEvent: remember the change for the policies' periods."""
        if decision.scaled:
            now, change = decision.timestamp, decision.desired - decision.current
            keep = now - self._keep_events_s
            self.up_events = [e for e in self.up_events if e.timestamp >= keep]
            self.down_events = [e for e in self.down_events if e.timestamp >= keep]
            events = self.up_events if change > 0 else self.down_events
            events.append(ScaleEvent(now, abs(change)))
        return decision
