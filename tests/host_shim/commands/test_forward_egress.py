"""`claudy egress …` is `hal-agent egress …` in the parent, like the other forwarded commands."""

from __future__ import annotations

from host_shim.commands.cli import FORWARDED, main
from host_shim.commands.forwarded import WORDS, Forwarded


def test_claudy_egress_forwards_with_its_arguments() -> None:
    """The words go as typed: hal-agent parses them in the parent, and none of its modules is
    loaded here to run one."""
    assert "egress" in FORWARDED
    ctx = main.make_context("claudy", ["egress", "NAME", "--json", "-n", "5"])
    name, cmd, rest = main.resolve_command(ctx, ["egress", "NAME", "--json", "-n", "5"])
    assert name == "egress" and isinstance(cmd, Forwarded)
    sub = cmd.make_context(name, rest, parent=ctx)
    assert sub.meta[WORDS] == ["NAME", "--json", "-n", "5"]
    assert "real" not in vars(cmd)  # hal-agent's command: not imported to run one


def test_the_parent_hears_no_color_and_the_global_flags() -> None:
    from hal_io import manners
    from host_shim.core.handover import forward_argv

    argv = forward_argv("hal9000-parent", ["-q", "ls"], False, "xterm", no_color=True)
    assert argv[argv.index("hal9000-parent") :] == ["hal9000-parent", "hal-agent", "-q", "ls"]
    assert "NO_COLOR=1" in argv and "NO_COLOR=1" not in forward_argv("p", ["ls"], False, "x")
    ctx = main.make_context("claudy", ["-q", "--no-color", "ls"])
    with ctx:
        assert manners.flags() == ["-q"] and not manners.color()
    with main.make_context("claudy", ["ls"]):
        assert manners.flags() == [] and manners.color({})
