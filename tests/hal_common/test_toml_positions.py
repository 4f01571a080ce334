"""Key positions in TOML text: not fooled by strings, arrays and comments."""

from __future__ import annotations

from hal_common.toml_positions import KeyPos, key_positions


def test_positions_are_not_fooled_by_strings_arrays_and_comments() -> None:
    text = (
        "# [fake] header in a comment\n"  # 1
        'title = """\n'  # 2
        "[worker]\n"  # 3: inside a multi-line string
        'cpus = 3 """  # x\n'  # 4
        "arr = [ \"a]\", 'b', # ]\n"  # 5
        "  { x = 1 } ]\n"  # 6
        "[worker]  # the real one\n"  # 7
        '  cpus = "two"\n'  # 8
        '"quoted.key" = 1\n'  # 9
        "a.b = { d = 1 }\n"  # 10
        "[services.web]\n"  # 11
        'v = "esc \\" cpus = 1"\n'  # 12
        "w = 2\n"  # 13
    )
    pos = key_positions(text)
    assert pos["worker",] == KeyPos(7, 1, 7, 1)
    assert pos["worker", "cpus"] == KeyPos(8, 3, 8, 10)
    assert pos["worker", "quoted.key"].line == 9
    assert pos["worker", "a", "b", "d"] == KeyPos(10, 9, 10, 13)
    assert pos["services",].line == 11 and pos["services", "web"].line == 11
    assert pos["services", "web", "w"].line == 13
    assert ("services", "web", "cpus") not in pos
