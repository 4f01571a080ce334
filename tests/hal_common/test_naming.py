"""Session and container names: deterministic, short, safe."""

from __future__ import annotations

import pytest

from hal_common.naming import container_name, session_name, slug


def test_session_name_is_deterministic_and_hashes_the_whole_path() -> None:
    a = session_name("/home/u/src/My Project")
    assert a == session_name("/home/u/src/My Project")
    assert a.startswith("my-project-") and len(a.rsplit("-", 1)[1]) == 8
    assert a != session_name("/home/u/other/My Project")
    assert container_name(a) == f"hal9000-w-{a}"


@pytest.mark.parametrize(
    ("text", "want"),
    [("Foo_Bar", "foo-bar"), ("...", "project"), ("ünïcode", "n-code"), ("a" * 40, "a" * 24)],
)
def test_slug(text: str, want: str) -> None:
    assert slug(text) == want
