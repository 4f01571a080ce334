"""Config changes grouped by how they apply."""

from __future__ import annotations

from hal_common.config import Config, parse_config
from hal_common.shared_services import ServiceSpec


def _services(text: str) -> tuple[ServiceSpec, ...]:
    return parse_config(text).services


def test_diff_groups_changes_by_how_they_apply() -> None:
    from hal_common.config_diff import Changes, ServiceChanges, diff

    old = parse_config(
        '[worker]\nmemory = "4g"\nimage = "a"\n[services.web]\nport = 1\n'
        "[services.db]\n[services.cron]\nenabled = false\n[services.gone]\n"
    )
    new = parse_config(
        '[worker]\nmemory = "2g"\ncpus = 1\npids = 100\nimage = "b"\ncommand = ["sh"]\n'
        'restart = "always"\nenv = ["X"]\n'
        '[parent]\nname = "p2"\nroots = ["/src"]\n[keys]\nprefix = "C-a"\n'
        "[dashboard]\nrefresh = 5\n[log]\nlevel = 'debug'\n[watch]\nmode = 'poll'\n"
        "[services.web]\nport = 2\n[services.db]\nenabled = false\n[services.cron]\n"
        "[services.new]\n[services.off]\nenabled = false\n"
    )
    assert diff(old, new) == Changes(
        worker_limits=("worker.memory", "worker.cpus", "worker.pids"),
        worker_template=(
            "worker.image",
            "worker.command",
            "worker.restart",
            "worker.env",
        ),
        keys=("keys.prefix",),
        dashboard=("dashboard.refresh",),
        services=ServiceChanges(enabled=("cron", "new"), disabled=("db", "gone"), changed=("web",)),
        log=("log.level",),
        watch=("watch.mode",),
        restart_needed=("parent.name", "parent.roots"),
    )


def test_diff_of_equal_configs_is_empty_and_false() -> None:
    from hal_common.config_diff import diff

    a = parse_config("[services.x]\nenabled = false\n")
    b = parse_config("[services.x]\nenabled = false\nport = 3\n# only a disabled service moved\n")
    assert not diff(a, a) and not diff(Config(), parse_config("[nope]\n"))
    assert not diff(a, b)
    only_parent = diff(Config(), parse_config("[parent]\nmemory = '8g'\n"))
    assert only_parent and not only_parent.live and only_parent.restart_needed == ("parent.memory",)


def test_turning_a_builtin_service_off_or_on_is_a_change() -> None:
    from hal_common.config_diff import diff_services

    off = _services("[services.memory-bank]\nenabled = false\n")
    default = Config().services
    assert diff_services(default, off).disabled == ("memory-bank",)
    assert diff_services(off, default).enabled == ("memory-bank",)
    moved = _services("[services.chromadb]\nport = 9000\n")
    assert diff_services(default, moved).changed == ("chroma-mcp", "chromadb")
