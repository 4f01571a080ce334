"""`claudy egress …` is `hal-agent egress …` in the parent, like the other forwarded commands."""

from __future__ import annotations

import warnings

from host_shim.commands.cli import FORWARDED, main


def test_claudy_egress_forwards_with_its_arguments() -> None:
    assert "egress" in FORWARDED
    ctx = main.make_context("claudy", ["egress", "NAME", "--json", "-n", "5"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # click 8.2 renames protected_args
        first = [*ctx.protected_args, *ctx.args]
    assert first == ["forward", "egress", "NAME", "--json", "-n", "5"]
