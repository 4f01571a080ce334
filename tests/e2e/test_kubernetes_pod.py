"""End to end, the Kubernetes pod without a cluster: deploy/kubernetes/parent-caps.yaml's pod,
translated as a node would run it (`hal_testing.kube`: its volumes as directories, the
ConfigMap laid out as the kubelet lays it out, its security context and nothing more), on
the test engine. Then docs/kubernetes.md's recipes, with `docker exec` where a user types
`kubectl exec`: the worker image and Claude Code over stdin, the credential document, the
project as a git bundle into /projects, a worker on it that writes as the workers' user, and
the agent's branch back as a bundle into the local repository.

No cluster runs here (no registry, no network): the Kubernetes side is the schema validation
in tests/test_kubernetes.py; this is the pod's inside, for real."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml
from docker.models.containers import Container

from hal_common import claude_code
from hal_common.config import Config
from hal_common.layout import ParentLayout
from hal_common.naming import container_name, session_name
from hal_io.engine import run_in
from hal_testing import REPO, claude
from hal_testing.engine import TEST_LABEL
from hal_testing.kube import pod_run_kwargs

pytestmark = pytest.mark.e2e

DEPLOY = REPO / "deploy" / "kubernetes"
IMAGE = ParentLayout()
INNER = ["docker", "-H", IMAGE.inner_docker_host]
PROJECT = "/projects/app"
KEY = "sk-ant-api03-" + "k" * 40  # a key of the right shape; nothing is sent anywhere


def _docs(name: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def _git(*argv: str, cwd: Path) -> str:
    res = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, check=True)
    return res.stdout.strip()


@pytest.fixture(scope="module")
def pod(
    dclient: docker.DockerClient,
    docker_host: str,
    built_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Container]:
    [statefulset] = _docs("parent-caps.yaml")
    configmaps = {str(d["metadata"]["name"]): d for d in _docs("config.yaml")}  # type: ignore[index]
    base = tmp_path_factory.mktemp("kube")
    name = f"hal9000-kube-{uuid.uuid4().hex[:6]}-0"
    kwargs = pod_run_kwargs(statefulset, configmaps, base, name)
    assert kwargs["image"] == Config().parent.image  # the image built_images made
    kwargs["labels"] = {TEST_LABEL: "kube"}
    c = dclient.containers.run(**kwargs)
    try:
        deadline = time.monotonic() + 120
        while run_in(c, ["test", "-e", str(IMAGE.ready_file)])[0] != 0:
            c.reload()
            assert c.status == "running", c.logs(tail=60).decode(errors="replace")
            assert time.monotonic() < deadline, c.logs(tail=60).decode(errors="replace")
        yield c
    finally:
        c.remove(force=True, v=True)
        shutil.rmtree(base, ignore_errors=True)  # the claims: the inner engine's images


def exec_i(docker_host: str, pod: Container, argv: list[str], stdin: bytes) -> str:
    """`kubectl exec -i POD -- ARGV < stdin`, as `docker exec -i` (the docs' recipes)."""
    res = subprocess.run(
        ["docker", "-H", docker_host, "exec", "-i", str(pod.name), *argv],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=300,
    )
    out = (res.stdout + res.stderr).decode(errors="replace")
    assert res.returncode == 0, f"{argv} exited {res.returncode}: {out}"
    return out


def sh(pod: Container, script: str) -> str:
    code, out = run_in(pod, ["sh", "-c", script])
    assert code == 0, f"{script}: exited {code}: {out}"
    return out.strip()


def test_the_pod_runs_a_worker_on_a_project_sent_as_a_bundle_and_gives_its_branch_back(
    pod: Container, docker_host: str, dclient: docker.DockerClient, tmp_path: Path
) -> None:
    # the ConfigMap is the config the parent runs with
    settings = json.loads(sh(pod, "hal-agent config show --json"))["settings"]
    assert settings["worker.memory"]["value"] == "4g"
    assert settings["worker.memory"]["origin"] == "file", settings["worker.memory"]

    # the images and Claude Code, over stdin
    worker = Config().worker.image
    saved = b"".join(dclient.images.get(worker).save(named=True))
    assert "Loaded image" in exec_i(docker_host, pod, ["hal-agent", "load-image"], saved)
    binary = claude.cached()
    assert binary is not None, "Claude Code is not in the runner's cache (scripts/test fills it)"
    version = claude_code.DEFAULT_VERSION
    exec_i(docker_host, pod, ["hal-agent", "claude", "install", version], binary.read_bytes())

    # the credential document, as docs/kubernetes.md builds it
    doc = json.dumps({"kind": "api-key", "source": "kube-test", "secret": KEY}).encode()
    exec_i(docker_host, pod, ["hal-agent", "auth", "import"], doc)
    assert "api-key" in sh(pod, "hal-agent auth status")

    # the project: a bundle of the local repository, cloned into /projects as uid 1000
    local = tmp_path / "app"
    local.mkdir()
    _git("init", "-q", "-b", "main", cwd=local)
    (local / "README").write_text("hello\n")
    _git("add", "README", cwd=local)
    _git("-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "one", cwd=local)
    bundle = subprocess.run(
        ["git", "bundle", "create", "-", "--all"], cwd=local, capture_output=True, check=True
    ).stdout
    exec_i(
        docker_host,
        pod,
        [
            "sh",
            "-c",
            'f=$(mktemp) && cat >"$f" && git clone -q "$f" /projects/app && rm "$f" '
            "&& chown -R 1000:1000 /projects/app",
        ],
        bundle,
    )

    # a worker on it, running as the pod's HAL_HOST_UID, writing the project as that user
    # (the minimal image has no git: the commit is made by the parent's git, as a task's
    # worktree is; tests/e2e/test_tasks.py has git inside a worker)
    sh(pod, f"hal-agent spawn {PROJECT} --no-attach")
    name = container_name(session_name(PROJECT))
    deadline = time.monotonic() + 120
    while run_in(pod, [*INNER, "exec", name, "true"])[0] != 0:
        assert time.monotonic() < deadline, sh(pod, "hal-agent ls; hal-agent health")
    inner = " ".join(INNER)
    assert sh(pod, f"{inner} exec {name} id -u") == "1000"
    sh(pod, f"{inner} exec {name} sh -c 'echo from the agent > {PROJECT}/agent.txt'")
    assert sh(pod, f"stat -c %u {PROJECT}/agent.txt") == "1000"
    git = f"git -c safe.directory={PROJECT} -c user.name=agent -c user.email=a@x -C {PROJECT}"
    sh(
        pod,
        f"{git} checkout -q -b hal/work && {git} add agent.txt && {git} commit -q -m from-agent",
    )

    # the agent's branch back, as a bundle (root's git names the repository safe)
    back = subprocess.run(
        [
            "docker",
            "-H",
            docker_host,
            "exec",
            str(pod.name),
            "git",
            "-c",
            f"safe.directory={PROJECT}",
            "-C",
            PROJECT,
            "bundle",
            "create",
            "-",
            "hal/work",
        ],
        capture_output=True,
        check=True,
    ).stdout
    (tmp_path / "work.bundle").write_bytes(back)
    _git("fetch", "-q", str(tmp_path / "work.bundle"), "hal/work:hal/work", cwd=local)
    assert _git("log", "-1", "--format=%s", "hal/work", cwd=local) == "from-agent"
