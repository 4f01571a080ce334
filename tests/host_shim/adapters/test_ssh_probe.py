"""What a failed ssh:// connection says: ssh's own words sorted into what to fix."""

from __future__ import annotations

import pytest

from host_shim.adapters.ssh_probe import classify, ssh_argv

URL = "ssh://me@box:2222"


def test_the_probe_is_the_ssh_docker_py_runs_without_prompts() -> None:
    argv = ssh_argv(URL, "docker version")
    assert argv[0] == "ssh" and "BatchMode=yes" in argv
    assert argv[-4:] == ["2222", "--", "box", "docker version"]
    assert argv[argv.index("-l") : argv.index("-l") + 2] == ["-l", "me"]


@pytest.mark.parametrize(
    ("output", "wrong", "todo"),
    [
        ("Host key verification failed.", "ssh does not know the host's key", "known_hosts"),
        ("me@box: Permission denied (publickey).", "ssh could not log in", "ssh-add"),
        ("ssh: connect to host box port 2222: Connection refused", "nothing answers ssh", "sshd"),
        ("bash: line 1: docker: command not found", "no docker command", "docker.io"),
        ("sh: 1: docker: not found", "no docker command", "docker.io"),
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.",
            "its engine does not answer",
            "systemctl start docker",
        ),
        (
            "permission denied while trying to connect to the Docker daemon socket",
            "may not use docker",
            "docker group",
        ),
    ],
)
def test_each_failure_says_what_and_how_to_fix_it(output: str, wrong: str, todo: str) -> None:
    found = classify(URL, 255, output)
    assert found is not None
    assert wrong in found[0] and todo in found[1], found


def test_an_unknown_failure_keeps_ssh_s_last_line_and_success_says_nothing() -> None:
    found = classify(URL, 1, "something odd\nthe last line")
    assert found == ("ssh me@box failed: the last line", "try ssh me@box docker version by hand")
    assert classify(URL, 0, "20.10.24") is None
