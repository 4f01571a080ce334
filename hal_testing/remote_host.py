"""A "remote host" of the tests' own: a container in the test engine that runs sshd and its
own dockerd, reached over ssh at its address on a network the test made.

It runs Docker-in-Docker without --privileged, as the parent does (the `caps` security mode
of host_shim/core/parent_spec.py: SYS_ADMIN, NET_ADMIN, SYS_PTRACE, seccomp and AppArmor
unconfined, every device allowed to cgroups, /sys/fs/cgroup, a volume on /var/lib/docker).
Nothing of the host's file system is mounted. Its image is built in the test engine from
`DOCKERFILE` on the offline base (hal9000/base:bookworm, as the project's images are).

ssh is the real OpenSSH client, made to use the test's own key pair and known_hosts through
`ssh` on PATH: a wrapper that runs /usr/bin/ssh with the test's config file (`-F`), so that
docker-py (`use_ssh_client`) and the docker CLI (`-H ssh://…`) both go through it. OpenSSH
reads ~/.ssh from the passwd entry, not $HOME: a config file is how a test keeps off root's.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from hal_common.engines import EngineChoice
from hal_io.engine import connect_choice
from hal_testing.engine import TEST_LABEL

IMAGE = "hal9000-test/remote-host:1"
BASE = "hal9000/base:bookworm"
DOCKERFILE = f"""\
ARG BASE_IMAGE={BASE}
FROM ${{BASE_IMAGE}}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \\
 && apt-get install -y --no-install-recommends openssh-server docker.io iptables \\
    ca-certificates tini \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh \\
 && rm -f /etc/ssh/ssh_host_*
COPY start /usr/local/bin/remote-host-start
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/remote-host-start"]
"""
START = """\
#!/bin/sh
set -e
ssh-keygen -A >/dev/null
printf '%s\\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
dockerd --host unix:///var/run/docker.sock >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password
"""
CAPS = ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]
SECURITY_OPT = ["seccomp=unconfined", "apparmor=unconfined"]


def build_image(client: docker.DockerClient) -> str:
    """The remote host's image in the test engine (the layer cache keeps a rebuild short)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text, mode in (("Dockerfile", DOCKERFILE, 0o644), ("start", START, 0o755)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    try:
        client.images.get(BASE)
    except docker.errors.ImageNotFound:
        raise RuntimeError(f"{BASE} is not in the test engine (scripts/test makes it)") from None
    img, _logs = client.images.build(
        fileobj=buf, custom_context=True, tag=IMAGE, network_mode="host", rm=True
    )
    return str(img.id)


@dataclass
class RemoteHost:
    """One remote host: its container, its address on the test's network, and the ssh set-up
    (`env`: PATH with the ssh wrapper first) that reaches it as `url`."""

    client: docker.DockerClient  # the test engine's
    container: Container
    address: str
    ssh_dir: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"ssh://root@{self.address}"

    def engine(self) -> docker.DockerClient:
        """A docker-py client of its dockerd, over ssh (as claudy makes one)."""
        return connect_choice(EngineChoice(host=self.url), self.env, "the remote host", "")

    def sh(self, script: str) -> str:
        """`sh -c SCRIPT` on the remote host (through the test engine: its own shell)."""
        code, out = self.container.exec_run(["sh", "-c", script])
        text = out.decode(errors="replace") if isinstance(out, bytes) else ""
        if code != 0:
            raise AssertionError(f"sh -c exited {code} on the remote host:\n{text}")
        return text.strip()

    def mirror(self, path: Path, uid: int = 0, gid: int = 0) -> None:
        """`path` (a directory of this machine) copied to the same path on the remote host,
        owned by uid:gid: a shared file system's stand-in for tests that bind-mount a project
        there (`[parent] projects = "mount"`); holds no secret (credentials go over exec
        stdin)."""
        self.sh(f"mkdir -p '{path}'")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(path), arcname=".")
        self.container.put_archive(str(path), buf.getvalue())
        self.sh(f"chown -R {uid}:{gid} '{path}'")

    def ssh(
        self, *argv: str, options: tuple[str, ...] = (), timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """The real ssh client to it (`ssh OPTIONS root@ADDR ARGV`), with the test's key and
        known_hosts; `options=("-O", "exit")` closes the shared master connection."""
        return subprocess.run(
            ["ssh", *options, "root@" + self.address, *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _wait(host: RemoteHost, deadline: float) -> None:
    """Until `docker version` answers over ssh (sshd up, key accepted, dockerd running)."""
    end = time.monotonic() + deadline
    last = ""
    while time.monotonic() < end:
        done = host.ssh("docker", "version", "--format", "{{.Server.Version}}", timeout=30)
        if done.returncode == 0:
            return
        last = done.stderr + done.stdout
        time.sleep(0.3)  # sshd or dockerd is starting: ask again, until the deadline
    logs = host.container.logs(tail=30).decode(errors="replace")
    dockerd = host.sh("tail -n 30 /var/log/dockerd.log || true")
    raise RuntimeError(f"the remote host does not answer over ssh: {last}\n{logs}\n{dockerd}")


def sweep(client: docker.DockerClient) -> None:
    """The networks and volumes crashed runs left (the session's sweep takes containers)."""
    for net in client.networks.list(filters={"label": TEST_LABEL}):
        if str(net.name).startswith("hal-remote-"):
            with contextlib.suppress(docker.errors.APIError):  # in use: another run's
                net.remove()
    for vol in client.volumes.list(filters={"label": TEST_LABEL}):
        if str(vol.name).startswith("hal-remote-"):
            with contextlib.suppress(docker.errors.APIError):
                vol.remove()


def write_ssh_dir(ssh_dir: Path) -> tuple[str, Path]:
    """A fresh ed25519 key pair, an empty known_hosts, the config, and the `ssh` wrapper in
    `ssh_dir/bin`: (the public key, the wrapper's directory)."""
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    key = ssh_dir / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hal-test", "-f", str(key)],
        check=True,
    )
    (ssh_dir / "known_hosts").touch()
    # connections share one master (docker-py opens one ssh per pooled connection)
    (ssh_dir / "config").write_text(
        "Host *\n"
        f"  IdentityFile {key}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {ssh_dir / 'known_hosts'}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        "  ControlMaster auto\n"
        f"  ControlPath {ssh_dir}/cm-%C\n"
        "  ControlPersist 120\n"
    )
    bin_dir = ssh_dir / "bin"
    bin_dir.mkdir(exist_ok=True)
    real = shutil.which("ssh", path="/usr/bin:/bin:/usr/local/bin")
    if real is None:
        raise RuntimeError("no ssh client (apt-get install openssh-client)")
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {real} -F {ssh_dir / "config"} "$@"\n')
    wrapper.chmod(0o755)
    return (ssh_dir / "id_ed25519.pub").read_text().strip(), bin_dir


@contextmanager
def remote_host(
    client: docker.DockerClient, ssh_dir: Path, seed: tuple[str, ...] = (BASE,)
) -> Iterator[RemoteHost]:
    """A running remote host on a network of its own, reached over ssh; its dockerd holds
    the images `seed` names (from the test engine: the offline base, as a registry would
    give it). While it runs, this process's PATH has the ssh wrapper first (docker-py's ssh
    reads os.environ). Removed afterwards, its volume and network with it."""
    pub, bin_dir = write_ssh_dir(ssh_dir)
    build_image(client)
    sweep(client)
    tag = uuid.uuid4().hex[:8]
    label = {TEST_LABEL: str(os.getpid())}
    net = client.networks.create(f"hal-remote-{tag}", driver="bridge", labels=label)
    volume = client.volumes.create(f"hal-remote-{tag}-docker", labels=label)
    container = None
    address = ""
    path_before = os.environ.get("PATH", "")
    try:
        container = client.containers.run(
            IMAGE,
            name=f"hal-remote-{tag}",
            detach=True,
            labels=label,
            hostname=f"remote-{tag}",
            network=net.name,
            environment={"AUTHORIZED_KEY": pub},
            cap_add=CAPS,
            security_opt=SECURITY_OPT,
            device_cgroup_rules=["a *:* rwm"],
            volumes={
                volume.name: {"bind": "/var/lib/docker", "mode": "rw"},
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            },
        )
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
        # known_hosts: its host key as the container has it (read through the test engine)
        deadline = time.monotonic() + 30
        key = ""
        while not key and time.monotonic() < deadline:
            code, out = container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
            key = out.decode().strip() if code == 0 and isinstance(out, bytes) else ""
            if not key:
                time.sleep(0.2)  # ssh-keygen -A runs at start
        kind, blob = key.split()[:2]
        (ssh_dir / "known_hosts").write_text(f"{address} {kind} {blob}\n")
        # docker-py runs ssh with this process's own environment: the wrapper first here too
        os.environ["PATH"] = f"{bin_dir}:{path_before}"
        host = RemoteHost(client, container, address, ssh_dir, dict(os.environ))
        _wait(host, 90)
        remote = host.engine()
        for ref in seed:
            # streamed, as claudy's load-image streams it (docker-py takes an iterator)
            remote.images.load(client.images.get(ref).save(named=True))  # type: ignore[arg-type]
        remote.close()
        yield host
    finally:
        os.environ["PATH"] = path_before
        if address:  # the ssh master connection, if one still runs
            subprocess.run(
                ["ssh", "-F", str(ssh_dir / "config"), "-O", "exit", f"root@{address}"],
                capture_output=True,
                check=False,
            )
        # a session-start sweep of another run may have removed them already
        with contextlib.suppress(docker.errors.NotFound):
            if container is not None:
                container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            net.remove()
