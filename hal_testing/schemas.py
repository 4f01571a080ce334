"""The JSON Schemas of every `--json` output (docs/schemas/NAME.json), for the tests: `validate`
holds an output to its documented schema (JSON Schema draft 2020-12, with jsonschema).

Each schema names the commands that print it in `x-commands` ("hal-agent ls --json",
"claudy ls --json"); a schema refers to another by its file name (`ls.json#/$defs/worker`),
which is how the registry here knows each one, and how an editor next to the files finds it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def names() -> list[str]:
    """Every schema's name (its file name without `.json`)."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))


@cache
def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    return doc


@cache
def registry() -> Registry[Any]:
    """Every schema, known by its file name (the `$ref`s between them are relative)."""
    resources = [(f"{n}.json", Resource.from_contents(load(n))) for n in names()]
    return Registry[Any]().with_resources(resources)


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load(name), registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validate(name: str, obj: object) -> None:
    """AssertionError naming the output's first misfit (where, and what the schema says)."""
    error = best_match(validator(name).iter_errors(obj))
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "the output"
        raise AssertionError(f"{name}.json: {where}: {error.message}")


def commands(name: str) -> list[str]:
    """The command lines that print `name`'s output (its `x-commands`)."""
    return [str(c) for c in load(name)["x-commands"]]
