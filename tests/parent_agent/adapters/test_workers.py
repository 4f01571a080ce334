"""Workers against a real engine and the real worker image (no Docker-in-Docker here)."""

from __future__ import annotations

import threading
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.egress import WORKER_NETWORK
from hal_common.errors import HalError, ImageMissing, NoSuchSession, UsageError
from hal_common.layout import ParentLayout
from hal_io.engine import run_in
from hal_testing import claude
from hal_testing.engine import Projects
from parent_agent.adapters import workers
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app.sessions import prepare_claude_home
from parent_agent.core.model import to_worker
from parent_agent.core.spec import WorkerSpec, worker_spec

pytestmark = pytest.mark.docker


@pytest.fixture
def project(projects: Projects) -> Path:
    return projects.make("proj")  # its workers are removed with `projects`


@pytest.fixture
def spec(project: Path, dclient: docker.DockerClient, built_images: dict[str, str]) -> WorkerSpec:
    return worker_spec(
        str(project),
        WorkerConfig(memory="512m", cpus=1.0, pids=256),
        1234,
        1235,
        {},
        claude=claude.mount(),
    )


@pytest.fixture
def engine(dclient: docker.DockerClient) -> InnerEngine:
    return InnerEngine(dclient)


def ensure(engine: InnerEngine, spec: WorkerSpec, layout: ParentLayout) -> Container:
    """`workers.ensure_worker`, and its container as docker-py sees it (to poke at)."""
    attrs = workers.ensure_worker(engine, spec, layout)
    return engine.client.containers.get(attrs["Id"])


def pid_of(engine: InnerEngine, c: Container) -> int | None:
    return workers.agent_pid(engine, c.name or "")


@pytest.fixture
def claude_home(parent_layout: ParentLayout, project: Path, spec: WorkerSpec) -> ParentLayout:
    """The layout, with the worker's private Claude state and the shared home prepared."""
    prepare_claude_home(parent_layout, spec.session, 1234, 1235, str(project))
    return parent_layout


def test_ensure_worker_creates_labels_mounts_limits_and_is_idempotent(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout
) -> None:
    c = ensure(engine, spec, claude_home)
    assert c.status == "running"
    again = ensure(engine, spec, claude_home)
    assert again.id == c.id
    attrs = c.attrs
    lab = attrs["Config"]["Labels"]
    assert lab[labels.SESSION] == spec.session and lab[labels.PROJECT] == spec.project
    assert lab[labels.MANAGED] == "true" and lab[labels.IMAGE] == spec.image
    mounts = {m["Destination"]: m["Source"] for m in attrs["Mounts"]}
    assert mounts[spec.project] == spec.project
    assert mounts["/home/hal/.claude"] == str(claude_home.worker_state(spec.session))
    assert attrs["Config"]["WorkingDir"] == spec.project
    assert attrs["Config"]["User"] == "1234:1235"
    assert attrs["HostConfig"]["Memory"] == 512 << 20
    assert attrs["HostConfig"]["PidsLimit"] == 256
    assert attrs["HostConfig"]["NetworkMode"] == WORKER_NETWORK
    listed = [w for w in workers.list_workers(engine) if w.name == spec.session]
    assert listed and listed[0].state == "running" and listed[0].project == spec.project


def test_files_the_agent_writes_belong_to_the_user(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout, project: Path
) -> None:
    c = ensure(engine, spec, claude_home)
    res = c.exec_run(["sh", "-c", f"touch {project}/made-inside && id -u"])
    assert res.exit_code == 0, res.output
    st = (project / "made-inside").stat()
    assert (st.st_uid, st.st_gid) == (1234, 1235)


def test_the_agent_runs_in_the_worker_and_a_stopped_worker_restarts(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout
) -> None:
    c = ensure(engine, spec, claude_home)
    assert retry_until(lambda: pid_of(engine, c) is not None, 10)
    # the agent's identity: its pid plus the worker's start (a restarted worker's fresh pid
    # namespace gives out the same pids again)
    pid = (pid_of(engine, c), c.attrs["State"]["StartedAt"])
    top = c.top()
    assert any("claude" in " ".join(p) for p in top["Processes"]), top
    c.stop(timeout=5)
    restarted = ensure(engine, spec, claude_home)
    assert restarted.id == c.id and restarted.status == "running"

    def agent() -> tuple[int | None, str]:
        restarted.reload()
        return pid_of(engine, restarted), restarted.attrs["State"]["StartedAt"]

    assert retry_until(lambda: agent()[0] is not None and agent() != pid, 10)


def test_two_spawns_at_once_give_one_worker(
    dclient: docker.DockerClient, docker_host: str, spec: WorkerSpec, claude_home: ParentLayout
) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def go() -> None:
        try:
            engine = InnerEngine(docker.DockerClient(base_url=docker_host))
            barrier.wait()
            ids.append(str(workers.ensure_worker(engine, spec, claude_home)["Id"]))
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(set(ids)) == 1
    found = dclient.containers.list(all=True, filters=labels.managed_filter(session=spec.session))
    assert len(found) == 1


def test_missing_image_and_unknown_session_are_clear_errors(
    engine: InnerEngine, built_images: dict[str, str]
) -> None:
    with pytest.raises(ImageMissing, match="has no image hal9000/none:0"):
        workers.check_image(engine, "hal9000/none:0", None)
    with pytest.raises(ImageMissing, match="older"):
        workers.check_image(engine, "hal9000/worker:minimal", "sha256:" + "0" * 64)
    workers.check_image(engine, "hal9000/worker:minimal", built_images["worker"])
    with pytest.raises(NoSuchSession):
        workers.find_worker(engine, "nothing-00000000")


def test_a_stopped_worker_from_another_spec_is_made_afresh_a_running_one_kept(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout, project: Path
) -> None:
    c = ensure(engine, spec, claude_home)
    other = worker_spec(
        spec.project,
        WorkerConfig(memory="512m", cpus=1.0, pids=256),
        1236,
        1235,
        {},
        claude=claude.mount(),
    )
    assert ensure(engine, other, claude_home).id == c.id  # running: kept
    c.stop(timeout=5)
    fresh = ensure(engine, other, claude_home)
    assert fresh.id != c.id and fresh.attrs["Config"]["User"] == "1236:1235"
    fresh.stop(timeout=5)
    again = ensure(engine, other, claude_home)  # same spec: restarted as is
    assert again.id == fresh.id and again.status == "running"
    again.stop(timeout=5)
    # a stopped worker of an older build of its image (claudy loaded a new one): made afresh
    built = str(again.attrs["Image"])
    attrs = workers.ensure_worker(engine, other, claude_home, image_id="sha256:" + "1" * 64)
    assert attrs["Id"] != again.id and attrs["Image"] == built


def test_the_lister_inspects_only_what_changed(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout
) -> None:
    lister = workers.WorkerLister()
    c = ensure(engine, spec, claude_home)
    first = {w.name: w for w in lister(engine)}[spec.session]
    assert first.state == "running" and first == to_worker(c.attrs)
    key = lister.cache[str(c.id)][0]
    again = {w.name: w for w in lister(engine)}[spec.session]
    if lister.cache[str(c.id)][0] == key:  # the status text ("Up 1 second") may tick over
        assert again is first  # unchanged summary: the cached inspect, not a new one
    c.stop(timeout=5)
    stopped = {w.name: w for w in lister(engine)}[spec.session]
    assert stopped.state == "exited" and stopped is not first
    c.remove()
    assert spec.session not in {w.name for w in lister(engine)}
    assert str(c.id) not in lister.cache


def test_identity_files_are_written_read_only_and_restored(
    engine: InnerEngine, project: Path, claude_home: ParentLayout, parent_layout: ParentLayout
) -> None:
    spec = worker_spec(
        str(project),
        WorkerConfig(memory="512m"),
        1234,
        1235,
        {},
        layout=parent_layout,
        claude=claude.mount(),
    )
    run = parent_layout.worker_run(spec.session)
    c = ensure(engine, spec, claude_home)
    assert (
        (run / "passwd").read_text().endswith("hal:x:1234:1235:hal-9000 agent:/home/hal:/bin/sh\n")
    )
    assert oct((run / "group").stat().st_mode & 0o777) == "0o644"
    assert run_in(c, ["id", "-un"]) == (0, "hal\n")
    # a new parent has no run directory: the files come back for every worker
    c.stop(timeout=1)
    for f in run.iterdir():
        f.unlink()
    run.rmdir()
    (run / "passwd").mkdir(parents=True)  # what the engine makes for a missing bind source
    assert workers.restore_identities(engine, parent_layout) >= 1
    assert (run / "passwd").is_file() and (run / "group").is_file()
    c.start()
    assert run_in(c, ["id", "-un"]) == (0, "hal\n")


def test_no_worker_starts_while_the_firewall_is_not_in_place(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout
) -> None:
    flag = claude_home.unfenced_flag
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()  # what the loop leaves when the boundary could not be put in place
    try:
        with pytest.raises(HalError, match="firewall is not in place"):
            workers.ensure_worker(engine, spec, claude_home)
        assert engine.inspect(spec.container, "looking") is None  # nothing was made
    finally:
        flag.unlink()
    c = ensure(engine, spec, claude_home)
    assert c.status == "running"
    c.stop(timeout=5)
    flag.touch()
    try:  # a stopped one is not started either
        with pytest.raises(HalError, match="firewall is not in place"):
            workers.ensure_worker(engine, spec, claude_home)
    finally:
        flag.unlink()


def test_a_project_swapped_for_a_link_before_the_mount_is_refused_and_its_worker_stopped(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    link = tmp_path / "link"
    link.symlink_to(secret)
    with pytest.raises(UsageError, match="no longer the directory that was checked"):
        workers.project_identity(str(link))  # a link where the checked directory was
    c = ensure(engine, spec, claude_home)
    attrs = engine.inspect(spec.container, "looking")
    assert attrs is not None
    # what the worker got is its project: passes
    workers.check_mounted(engine, attrs, spec.project, workers.project_identity(spec.project))
    # the engine mounted another directory than the one checked (a swap in between)
    other = workers.project_identity(str(secret))
    with pytest.raises(HalError, match="was replaced while its worker started"):
        workers.check_mounted(engine, attrs, spec.project, other)
    c.reload()
    assert c.status != "running"


def test_claude_is_the_store_s_binary_mounted_read_only_and_a_new_version_needs_a_restart(
    engine: InnerEngine, spec: WorkerSpec, claude_home: ParentLayout
) -> None:
    """The worker runs the store's Claude Code (no `claude` in the image), cannot write it,
    and is labelled with its version; a stopped worker of another version is made afresh."""
    c = ensure(engine, spec, claude_home)
    assert c.attrs["Config"]["Labels"][labels.CLAUDE] == spec.claude == "2.1.332"
    mount = next(m for m in c.attrs["Mounts"] if m["Destination"] == "/usr/local/bin/claude")
    assert mount["Source"] == spec.claude_path and mount["RW"] is False
    code, out = run_in(c, ["claude", "--version"])
    assert code == 0 and out.startswith("2.1.332 "), out
    for attack in (
        "echo evil > /usr/local/bin/claude",
        "cp /bin/sh /usr/local/bin/claude",
        "rm -f /usr/local/bin/claude",
        "mv /usr/local/bin/claude /tmp/x",
        "chmod 777 /usr/local/bin/claude",
        "ln -sf /tmp/evil /usr/local/bin/claude",
    ):
        res = c.exec_run(["sh", "-c", attack])
        assert res.exit_code != 0, (attack, res.output)
    assert Path(spec.claude_path).read_bytes()[:4] == b"\x7fELF"
    assert to_worker(c.attrs).claude == "2.1.332"
    c.stop(timeout=5)
    newer = WorkerSpec(**{**spec.__dict__, "claude": "2.1.334", "labels": {**spec.labels,
                       labels.CLAUDE: "2.1.334"}})  # fmt: skip
    from parent_agent.core.spec import same_spec

    assert not same_spec(c.attrs, newer) and same_spec(c.attrs, spec)
