"""What a config change means for the running system: a pure diff grouped by how it applies.

The agent loop calls `diff(old, new)` on each `ConfigChanged` and acts per group; the groups
come from `config_schema.apply_class`, which `docs/config.md` documents key by key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hal_common.config_schema import (
    RESTART,
    WORKER_LIMITS,
    WORKER_TEMPLATE,
    Config,
    schema_keys,
)
from hal_common.shared_services import ServiceSpec, running


@dataclass(frozen=True)
class ServiceChanges:
    """Service names by what happened: started, stopped, or running with other settings.

    A service runs when its table exists and `enabled` is not false.
    """

    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.enabled or self.disabled or self.changed)


@dataclass(frozen=True)
class Changes:
    """Changed dotted keys (e.g. `worker.memory`), grouped by how they reach the system.

    - worker_limits: `docker update` the running workers (cpus, memory, pids)
    - worker_template: workers created from now on (running ones keep theirs until restarted)
    - keys: rebind the parent's tmux keys
    - dashboard: the dashboard's refresh and row count
    - services: start, stop or restart `[services.*]`
    - log: the log level
    - watch: restart the config watcher with the new mode and interval
    - network: the egress proxy's new policy (`egress.policy(mode, allow)`), for running
      workers too
    - notify: the notifier's command, states and debounce (`Notifier.configure`)
    - resume: `worker.resume`; read whenever a resume file is written, nothing to redo
    - restart_needed: `[parent]` keys; they apply when the parent is recreated
    - host: claudy's own keys (`parent.engine`, `parent.projects`); nothing to apply in the parent
    """

    worker_limits: tuple[str, ...] = ()
    worker_template: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    dashboard: tuple[str, ...] = ()
    services: ServiceChanges = field(default_factory=ServiceChanges)
    log: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    network: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    host: tuple[str, ...] = ()  # claudy's own keys (`parent.engine`, `parent.projects`)
    restart_needed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.live or self.restart_needed)

    @property
    def live(self) -> bool:
        """Something the running system can apply now."""
        return bool(
            self.worker_limits
            or self.worker_template
            or self.keys
            or self.dashboard
            or self.services
            or self.log
            or self.watch
            or self.network
            or self.notify
            or self.resume
        )


# apply class → Changes field (the live groups share their name)
_GROUPS = {
    RESTART: "restart_needed",
    WORKER_LIMITS: "worker_limits",
    WORKER_TEMPLATE: "worker_template",
}


def _running(services: Iterable[ServiceSpec]) -> dict[str, ServiceSpec]:
    """The services that run, by name, the built-in ones included (a table may turn one off)."""
    return {s.name: s for s in running(services)}


def diff_services(old: Iterable[ServiceSpec], new: Iterable[ServiceSpec]) -> ServiceChanges:
    before, after = _running(old), _running(new)
    return ServiceChanges(
        enabled=tuple(sorted(after.keys() - before.keys())),
        disabled=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(sorted(n for n in after.keys() & before.keys() if after[n] != before[n])),
    )


def diff(old: Config, new: Config) -> Changes:
    """The keys whose effective value differs between `old` and `new` (warnings aside)."""
    groups: dict[str, list[str]] = {}
    for key in schema_keys():
        a = getattr(getattr(old, key.section), key.name)
        b = getattr(getattr(new, key.section), key.name)
        if a != b:
            groups.setdefault(_GROUPS.get(key.apply, key.apply), []).append(key.dotted)
    return Changes(
        **{name: tuple(keys) for name, keys in groups.items()},
        services=diff_services(old.services, new.services),
    )
