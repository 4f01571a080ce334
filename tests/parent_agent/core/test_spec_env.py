"""`[worker] env` in a worker's spec: names from the parent's environment, or literal values;
the template hash follows literal values (a changed one marks running workers outdated)."""

from __future__ import annotations

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.egress import proxy_env
from hal_common.layout import ParentLayout
from parent_agent.core.spec import create_kwargs, template_hash, worker_spec


def test_literal_values_reach_the_worker_and_the_proxy_still_wins() -> None:
    cfg = WorkerConfig(env={"ANTHROPIC_BASE_URL": "http://10.0.0.1:9", "HTTPS_PROXY": "evil"})
    spec = worker_spec("/home/u/p", cfg, 1000, 1000, environ={"ANTHROPIC_BASE_URL": "host"})
    assert spec.env == {"ANTHROPIC_BASE_URL": "http://10.0.0.1:9", "HTTPS_PROXY": "evil"}
    env = create_kwargs(spec, ParentLayout())["environment"]
    assert env["ANTHROPIC_BASE_URL"] == "http://10.0.0.1:9"
    assert env["HTTPS_PROXY"] == proxy_env()["HTTPS_PROXY"]  # no other way out


def test_the_template_hash_follows_literal_values_and_keeps_the_names_form() -> None:
    names = WorkerConfig(env=("A", "B"))
    assert template_hash(names) == template_hash(WorkerConfig(env=("B", "A")))
    a = template_hash(WorkerConfig(env={"URL": "http://a"}))
    assert a != template_hash(WorkerConfig(env={"URL": "http://b"}))
    assert a == template_hash(WorkerConfig(env={"URL": "http://a"}))
    assert template_hash(WorkerConfig(env={"A": "", "B": ""})) != template_hash(names)
    assert template_hash(WorkerConfig(resume=False)) == template_hash(WorkerConfig())
    spec = worker_spec("/p", WorkerConfig(env={"URL": "http://a"}), 1, 1, environ={})
    assert spec.labels[labels.TEMPLATE] == a


def test_the_names_form_hashes_as_before() -> None:
    """Workers made before issue 12 keep their template: the array form hashes unchanged."""
    import hashlib
    import json

    from parent_agent.core.spec import LAYOUT

    cfg = WorkerConfig(env=("B", "A"))
    text = json.dumps([cfg.image, list(cfg.command), cfg.restart, ["A", "B"], LAYOUT])
    assert template_hash(cfg) == hashlib.sha256(text.encode()).hexdigest()[:12]
