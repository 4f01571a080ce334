"""Where things are, as values built once at an entry point (never read at import time).

`ParentLayout` is the parent container's file system: sockets, the lock and run directories,
logs, the Claude home, the data volume, the config file. Its defaults are the paths in the
parent image; `ParentLayout.from_env` lets a test (or the benchmark) point `hal-agent` at a
test engine, a test tmux server and temporary directories with `HAL_*` variables. The host
side has `HostLayout`: the config directory and the engine to use.

Pure: the environment is an argument, not a global.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_NAME = "config.toml"
INNER_API_VERSION = "1.41"  # dockerd 20.10 from Debian bookworm's docker.io

# Inside a worker container (fixed by the worker image).
WORKER_HOME = "/home/hal"
WORKER_CLAUDE_HOME = f"{WORKER_HOME}/.claude"
WORKER_BIN = "/usr/local/bin/hal-worker"
WORKER_MANAGED_DIR = "/etc/claude-code"  # Claude Code's managed (policy) settings on Linux
# where the worker's hooks write their reports (its own report directory, read-write)
WORKER_REPORT_DIR = "/run/hal-report"
# the worker's parent-only files (`ParentLayout.worker_run`), read-only: `resume`, ...
WORKER_RUN_DIR = "/etc/hal/run"
RESUME_FILE = "resume"  # in WORKER_RUN_DIR: a Claude session id to resume, or empty

# Fixed mount points of the parent container (claudy makes the mounts).
PARENT_CONFIG_DIR = Path("/config/hal9000")
PARENT_CLAUDE_HOME = Path("/config/claude")
PARENT_DATA = Path("/data")
INNER_DATA_ROOT = Path("/var/lib/docker")
RUN_DIR = Path("/run/hal9000")
# where claudy binds the host's SSH agent socket ($SSH_AUTH_SOCK) into the parent, when a
# project is opted in (`[identity] ssh_agent`); outside the run directory's tmpfs
PARENT_SSH_AGENT = Path("/run/hal9000-ssh-agent.sock")
# the parent's logs, in the data volume: they outlive the container (`claudy down`)
LOG_DIR = PARENT_DATA / "logs"


def _unix(path: Path) -> str:
    return f"unix://{path}"


@dataclass(frozen=True)
class ParentLayout:
    """The parent's paths. Derived paths (ready file, locks, status) follow `run_dir`."""

    run_dir: Path = RUN_DIR
    log_dir: Path = LOG_DIR
    config_dir: Path = PARENT_CONFIG_DIR
    claude_home: Path = PARENT_CLAUDE_HOME
    data_dir: Path = PARENT_DATA
    inner_data_root: Path = INNER_DATA_ROOT
    # the inner engine and tmux; empty: under run_dir
    docker_host: str = ""
    tmux_socket: Path | None = None
    config_override: Path | None = None  # HAL9000_CONFIG
    host_uid: int = 0  # the host user claudy runs for (HAL_HOST_UID)
    host_gid: int = 0
    roots: tuple[str, ...] = field(default=())  # the host's roots, mounted at the same path
    host_home: str = ""  # the host user's home (HAL_HOST_HOME): its secrets are never projects
    host_config_dir: str = ""  # hal-9000's config directory on the host (HAL_HOST_CONFIG_DIR)
    claude_store_dir: Path | None = None  # HAL_CLAUDE_STORE (tests share one); None: data's
    # the host ports claudy published the parent on ("47100-47109"; "": none) and the host
    # address they are on: workers' `ports` are mapped into them (HAL_PORTS, HAL_PORTS_ADDRESS)
    ports: str = ""
    ports_address: str = ""
    ssh_agent_sock: Path = PARENT_SSH_AGENT  # the host's SSH agent, if claudy bound it

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ParentLayout:
        """The layout `hal-agent` runs with: the image's paths, unless `HAL_*` says otherwise
        (tests and the benchmark only; the parent container sets just the host user)."""

        def path(var: str, default: Path) -> Path:
            return Path(env[var]) if env.get(var) else default

        return cls(
            run_dir=path("HAL_RUN_DIR", RUN_DIR),
            log_dir=path("HAL_LOG_DIR", LOG_DIR),
            claude_home=path("HAL_CLAUDE_HOME", PARENT_CLAUDE_HOME),
            data_dir=path("HAL_DATA_DIR", PARENT_DATA),
            docker_host=env.get("HAL_INNER_DOCKER_HOST", ""),
            tmux_socket=Path(env["HAL_TMUX_SOCKET"]) if env.get("HAL_TMUX_SOCKET") else None,
            config_override=Path(env["HAL9000_CONFIG"]) if env.get("HAL9000_CONFIG") else None,
            host_uid=int(env.get("HAL_HOST_UID") or 0),
            host_gid=int(env.get("HAL_HOST_GID") or 0),
            roots=tuple(r for r in env.get("HAL_ROOTS", "").split(":") if r),
            host_home=env.get("HAL_HOST_HOME", ""),
            host_config_dir=env.get("HAL_HOST_CONFIG_DIR", ""),
            claude_store_dir=Path(env["HAL_CLAUDE_STORE"]) if env.get("HAL_CLAUDE_STORE") else None,
            ports=env.get("HAL_PORTS", ""),
            ports_address=env.get("HAL_PORTS_ADDRESS", ""),
            ssh_agent_sock=path("HAL_SSH_AGENT_SOCK", PARENT_SSH_AGENT),
        )

    @property
    def inner_docker_sock(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def inner_docker_host(self) -> str:
        return self.docker_host or _unix(self.inner_docker_sock)

    @property
    def tmux_sock(self) -> Path:
        return self.tmux_socket or self.run_dir / "tmux.sock"

    @property
    def ready_file(self) -> Path:
        return self.run_dir / "ready"

    @property
    def lock_dir(self) -> Path:
        return self.run_dir / "locks"

    @property
    def repos_dir(self) -> Path:
        """The repositories that travelled by git (`hal_common/gitsync.py`): one per host
        repository, `<key>/.git`, and its tasks' worktrees in `<key>/.hal9000/tasks`."""
        return self.data_dir / "repos"

    @property
    def trust_dir(self) -> Path:
        """The project files the user trusted (`hal-agent trust`): one record per repository,
        in the data volume (no worker mounts it)."""
        return self.data_dir / "trust"

    @property
    def status_file(self) -> Path:
        return self.run_dir / "status.json"

    @property
    def control_socket(self) -> Path:
        """Where the loop takes requests (`load-image`, `services --restart`): 0600, root's."""
        return self.run_dir / "control.sock"

    @property
    def dockerd_pidfile(self) -> Path:
        return self.run_dir / "dockerd.pid"

    @property
    def dockerd_exec_root(self) -> Path:
        return self.run_dir / "docker-exec"

    @property
    def dockerd_log(self) -> Path:
        return self.log_dir / "dockerd.log"

    @property
    def agent_log(self) -> Path:
        """`hal-agent run`'s log (the loop's), rotated by size (`adapters/logfiles.py`)."""
        return self.log_dir / "agent.log"

    @property
    def dashboard_log(self) -> Path:
        """The dashboard pane's log (its warnings; a line on stderr would land in the frame)."""
        return self.log_dir / "dashboard.log"

    @property
    def config_file(self) -> Path:
        return self.config_override or self.config_dir / CONFIG_NAME

    @property
    def service_data(self) -> Path:
        """Where shared services keep their data: /data/services in the data volume."""
        return self.data_dir / "services"

    def worker_state(self, session: str) -> Path:
        """A worker's private Claude state (its `$CLAUDE_CONFIG_DIR`), in the data volume so
        that it outlives the worker and the parent. Worker-writable: untrusted input."""
        return self.data_dir / "workers" / session / "claude"

    def worker_run(self, session: str) -> Path:
        """Parent-only files of one worker (its passwd and group, each mounted read-only into
        it; the directory itself read-only at `WORKER_RUN_DIR`, for `resume`), beside its
        state in the data volume: a worker that its restart policy starts before hal-agent
        runs still finds them."""
        return self.data_dir / "workers" / session / "etc"

    def worker_reports(self, session: str) -> Path:
        """Where one worker's hooks report (`hal-worker hook`), mounted read-write at
        `WORKER_REPORT_DIR` in that worker only: the worker user's, 0700, made by the parent
        before each start. Worker-writable: untrusted input (`adapters/agent_reports`)."""
        return self.data_dir / "workers" / session / "report"

    @property
    def workers_dir(self) -> Path:
        """The per-worker directories (`workers/SESSION/{claude,etc,report}`)."""
        return self.data_dir / "workers"

    @property
    def managed_dir(self) -> Path:
        """hal-9000's Claude Code managed settings, mounted read-only at /etc/claude-code
        (in the data volume, for the same reason as `worker_run`)."""
        return self.data_dir / "claude-managed"

    @property
    def claude_store(self) -> Path:
        """Claude Code's versions, `VERSION/claude`, root's and read-only (0555): written by
        `hal-agent claude install` only; each worker mounts one binary read-only."""
        return self.claude_store_dir or self.data_dir / "claude"

    @property
    def unfenced_flag(self) -> Path:
        """Present while the workers' firewall is not in place (the loop makes it before it
        tries, removes it once the boundary stands): no worker is created or started then."""
        return self.run_dir / "workers-unfenced"

    @property
    def ports_record(self) -> Path:
        """Which worker's port had which host port: kept across restarts, so a worker gets
        its URL again when that port is free."""
        return self.data_dir / "ports.json"

    @property
    def egress_log(self) -> Path:
        """One JSON line per request the egress proxy saw (allowed or denied)."""
        return self.log_dir / "egress.jsonl"

    @property
    def identity_dir(self) -> Path:
        """The parent's private identity store (root's, 0700): the host's git name and email
        (`git.json`) and the imported GitHub token (`github-token`, 0600). Never mounted:
        a worker opted in gets its own copy (`worker_run`)."""
        return self.data_dir / "identity"

    @property
    def mcp_token_file(self) -> Path:
        """The bearer token every MCP endpoint requires (parent-only)."""
        return self.service_data / "mcp.token"


@dataclass(frozen=True)
class HostLayout:
    """The host side: the config directory (XDG), the config file, the engine to use."""

    home: Path
    config_dir: Path
    config_override: Path | None = None
    docker_host: str | None = None  # DOCKER_HOST; None: docker-py's own default

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HostLayout:
        home = Path(env.get("HOME") or "~").expanduser()
        xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
        return cls(
            home=home,
            config_dir=Path(xdg) / "hal9000",
            config_override=Path(env["HAL9000_CONFIG"]) if env.get("HAL9000_CONFIG") else None,
            docker_host=env.get("DOCKER_HOST") or None,
        )

    @property
    def config_file(self) -> Path:
        return self.config_override or self.config_dir / CONFIG_NAME
