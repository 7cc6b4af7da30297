"""promote-model: which registry version of a model an environment serves (stable, canary),
checked against the registry (gate passed, metric floors), as edits of platform.yaml
(release/spec_text.py); the registry's production pointer moves only after the spec is
written."""

from __future__ import annotations

from dataclasses import dataclass

from mlp_common import contracts

from platformgen.errors import ReleaseError, SpecError
from platformgen.release.spec_text import remove_value, set_value
from platformgen.spec.load import parse_spec
from platformgen.spec.model import PlatformSpec

# --- model versions ----------------------------------------------------------------------------
#
# What an environment serves is `components.<c>.model` (name, default version) and, per
# environment, `model.version` (the stable revision) and `canary` ({trafficPercent, version}).
# The path of a new version is candidate -> canary -> production:
#
#   promote-model digits M --env prod --canary   canary: {trafficPercent, version: M}; KServe
#                                                 gives the revision pinned to M that share, the
#                                                 previously rolled-out revision (N) the rest
#   promote-model digits M --env prod             model.version: M, no canary: KServe moves all
#                                                 traffic to the revision serving M; the registry's
#                                                 production pointer moves N -> M (compare-and-swap)
#   promote-model digits --env prod --abort-canary  no canary: a new revision serving N takes all
#
# Every step re-checks the registry (gate passed, the environment's floors) except the abort.

DEFAULT_CANARY_PERCENT = 10
"""Share a new canary gets unless `--traffic` says otherwise."""
_REGISTRY_FLAGS = ("--registry",)


@dataclass(frozen=True)
class ServedModel:
    """A model as the spec serves it: the InferenceService component and its registry."""

    model: str
    component: str
    registry: str | None
    """The registry root the component reads (`--registry=` or MLP_REGISTRY), if the spec says."""
    production_environment: str | None = None
    """`model.productionEnvironment`: where a full promotion moves the registry's pointer."""


@dataclass(frozen=True)
class Rollout:
    """What one environment serves: the stable version, and the canary if one is in flight."""

    stable: int | str
    pinned: bool
    """The environment pins `stable` (`environments.<env>.components.<c>.model.version`)."""
    canary: int | None = None
    traffic_percent: int | None = None

    def __str__(self) -> str:
        text = f"version {self.stable}"
        if self.canary is not None:
            text += f", canary version {self.canary} at {self.traffic_percent}%"
        return text


def _option(args: tuple[str, ...], flags: tuple[str, ...]) -> str | None:
    """The value of the last of `flags` in `args` (`--flag=value` or `--flag value`)."""
    found = None
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in flags and equals:
            found = value
        elif arg in flags and index + 1 < len(args):
            found = args[index + 1]
    return found


def served_model(spec: PlatformSpec, model: str, source: str) -> ServedModel:
    """The InferenceService component whose `model.name` is `model`."""
    found = []
    for name, component in sorted(spec.components.items()):
        if component.model is None or component.model.name != model:
            continue
        settings = {**component.config, **component.env}
        registry = _option(component.args, _REGISTRY_FLAGS) or settings.get(contracts.REGISTRY)
        found.append(ServedModel(model, name, registry, component.model.production_environment))
    if not found:
        raise ReleaseError(
            f"{source}: no InferenceService component serves model {model!r} "
            "(components.<name>.model.name)"
        )
    if len(found) > 1:
        names = ", ".join(f"components.{s.component}" for s in found)
        raise ReleaseError(f"{source}: model {model!r} is served by several components: {names}")
    return found[0]


def rollout(spec: PlatformSpec, served: ServedModel, environment: str) -> Rollout:
    """What `environment` serves of `served.model`, as the spec says."""
    component = spec.components[served.component]
    assert component.model is not None
    override = spec.environments[environment].components.get(served.component)
    pin = override.model if override is not None else None
    canary = override.canary if override is not None else None
    return Rollout(
        stable=pin.version if pin is not None else component.model.version,
        pinned=pin is not None,
        canary=canary.version if canary is not None else None,
        traffic_percent=canary.traffic_percent if canary is not None else None,
    )


def plan_rollout(
    spec: PlatformSpec,
    served: ServedModel,
    environment: str,
    version: int | None,
    *,
    canary: bool = False,
    traffic_percent: int | None = None,
    abort: bool = False,
    source: str = "platform.yaml",
) -> Rollout:
    """The rollout `environment` moves to: a canary of `version`, `version` in full, or (abort)
    the stable version alone. Refuses requests that would lose track of what serves."""
    if environment not in spec.environments:
        raise ReleaseError(f"{source}: environments.{environment}: no such environment")
    where = f"{source}: environments.{environment}.components.{served.component}"
    now = rollout(spec, served, environment)
    if traffic_percent is not None and not canary:
        raise ReleaseError("promote-model: --traffic sets the canary's share; add --canary")
    if abort and canary:
        raise ReleaseError("promote-model: --canary and --abort-canary: choose one")
    if abort:
        if now.canary is None:
            raise ReleaseError(f"{where}: no canary in flight to abort (serving {now})")
        if version is not None and version != now.canary:
            raise ReleaseError(
                f"{where}: the canary in flight serves version {now.canary}, not {version}"
            )
        return Rollout(stable=now.stable, pinned=now.pinned)
    if version is None:
        raise ReleaseError("promote-model: give the version to promote (or --abort-canary)")
    if now.canary is not None and now.canary != version:
        raise ReleaseError(
            f"{where}: canary version {now.canary} is in flight: promote it "
            f"(platformgen promote-model {served.model} {now.canary} --env {environment}) or "
            f"abort it (--abort-canary) before starting version {version}"
        )
    if not canary:
        if now.canary is None and now.pinned and now.stable == version:
            raise ReleaseError(f"{where}: already serves {served.model} version {version}")
        return Rollout(stable=version, pinned=True)
    if not now.pinned:
        raise ReleaseError(
            f"{where}: a canary needs the stable version pinned (model.version), so the spec "
            f"names what the rest of the traffic gets; serving {now.stable} now: pin it first "
            f"(platformgen promote-model {served.model} <stable version> --env {environment})"
        )
    if now.stable == version:
        raise ReleaseError(f"{where}: version {version} is the stable version already")
    share = traffic_percent or now.traffic_percent or DEFAULT_CANARY_PERCENT
    if not 1 <= share <= 99:
        raise ReleaseError(f"--traffic {share}: a canary gets 1-99 percent of the traffic")
    return Rollout(stable=now.stable, pinned=True, canary=version, traffic_percent=share)


def edit_rollout(
    text: str,
    spec: PlatformSpec,
    served: ServedModel,
    environment: str,
    wanted: Rollout,
    source: str,
) -> str:
    """The spec text with `environment` serving `wanted`, every other byte kept: only
    `model.version` and `canary` of the component's environment entry change."""
    base = ("environments", environment, "components", served.component)
    now = rollout(spec, served, environment)
    edited = text
    if wanted.stable != now.stable or wanted.pinned != now.pinned:
        edited = set_value(edited, (*base, "model", "version"), str(wanted.stable), plain=True)
    if wanted.canary is None:
        if now.canary is not None:
            edited = remove_value(edited, (*base, "canary"))
    else:
        edited = set_value(
            edited, (*base, "canary", "trafficPercent"), str(wanted.traffic_percent), plain=True
        )
        edited = set_value(edited, (*base, "canary", "version"), str(wanted.canary), plain=True)
    try:
        new_spec = parse_spec(edited, source=source)
    except SpecError as err:  # pragma: no cover - a bug in the edit, not in the request
        raise AssertionError(f"the edited spec does not load: {err.problems}") from err
    got = rollout(new_spec, served, environment)
    if got != wanted:
        raise AssertionError(f"the edit gives {got}, not {wanted}")
    return edited


@dataclass(frozen=True)
class RegistryCheck:
    """The registry as `promote-model` read it: the version passed the checks."""

    root: str
    production: int | None
    """The production pointer when read: the compare-and-swap's expected value."""


def check_registry(
    spec: PlatformSpec,
    served: ServedModel,
    version: int,
    environment: str,
    registry: str | None,
    source: str,
) -> RegistryCheck:
    """Refuse `version` unless the registry holds it, its gate passed and its metrics meet the
    environment's floors (`environments.<env>.minModelMetrics`)."""
    root = registry or served.registry
    if not root:
        raise ReleaseError(
            f"{source}: components.{served.component}: no --registry= argument or MLP_REGISTRY "
            "says where the registry is; pass --registry"
        )
    try:
        from mlp_common.registry import ModelRegistry, RegistryError, promotion_problems
    except ImportError as err:
        raise ReleaseError(
            "promote-model reads the model registry with mlp_common (components/common); "
            "install the ML packages with `make venv`"
        ) from err
    floors = spec.environments[environment].min_model_metrics
    where = f"{source}: environments.{environment}"
    try:
        registry_ = ModelRegistry(root)
        entry = registry_.get(served.model, version)
        production = registry_.pointer(served.model, "production")
    except RegistryError as err:
        raise ReleaseError(f"{where}: cannot serve it: registry {root}: {err}") from err
    except Exception as err:  # the store's own errors (network, credentials): not our bug
        raise ReleaseError(
            f"{where}: cannot read the registry {root}: {type(err).__name__}: {err} "
            "(pass --registry, or give the object store's AWS_* settings)"
        ) from err
    problems = promotion_problems(entry, floors)
    if problems:
        floors_from = f" (floors: environments.{environment}.minModelMetrics)" if floors else ""
        raise ReleaseError(
            f"{where}: {served.model} version {version} may not be served: "
            + "; ".join(problems)
            + floors_from
        )
    return RegistryCheck(root=root, production=production)


def move_production_pointer(
    check: RegistryCheck, served: ServedModel, version: int, environment: str
) -> None:
    """Point the registry's `production` at `version`, by compare-and-swap against the pointer
    `check` read: refused (nothing changes) if another promotion moved it meanwhile."""
    from mlp_common.registry import ModelRegistry, RegistryError

    if check.production == version:
        return
    try:
        ModelRegistry(check.root).promote(
            served.model,
            version,
            reason=f"platformgen promote-model --env {environment}",
            expected=check.production,
        )
    except RegistryError as err:
        raise ReleaseError(f"registry {check.root}: {err}; platform.yaml was not changed") from err
