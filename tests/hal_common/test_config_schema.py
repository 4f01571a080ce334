"""The schema and the docs that list it."""

from __future__ import annotations

import pytest

from hal_testing import REPO


@pytest.mark.parametrize("doc_path", ["docs/config.md", "README.md"])
def test_docs_table_matches_the_schema(doc_path: str) -> None:
    """docs/config.md and the README list every key with its type, default, how it applies."""
    from hal_common import __version__
    from hal_common.config_schema import NamesOrTable, PortList, schema_keys
    from hal_io.config_cli import toml_text

    types = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "true or false",
        tuple: "array of strings",
        NamesOrTable: "array of names, or table of strings",
        PortList: "array of port numbers",
    }
    applies = {
        "restart": "restart",
        "worker_limits": "live: running workers",
        "worker_template": "live: new workers",
        "host": "claudy's next run",
    }
    doc = (REPO / doc_path).read_text()
    rows = {
        cells[0].strip("`"): cells[1:4]
        for line in doc.splitlines()
        if line.startswith("| `") and "." in line.split("|")[1]
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for key in schema_keys():
        default = toml_text(key.default).replace(__version__, "<version>")
        want = [types[key.kind], f"`{default}`", applies.get(key.apply, "live")]
        assert rows.get(key.dotted) == want, key.dotted
    assert set(rows) == {k.dotted for k in schema_keys()}
