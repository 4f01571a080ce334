"""Which directories may be projects: the one path policy, its rules and their messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hal_common.errors import EXIT_USAGE, UsageError
from hal_common.layout import ParentLayout
from hal_common.projects import (
    HOME_SECRETS,
    PathPolicy,
    check_project,
    check_roots,
    expand_roots,
    expand_user,
    resolve_project,
)

HOME = "/home/u"
POLICY = PathPolicy(roots=("/home/u", "/srv/code"), home=HOME, config_dir="/srv/code/hal-cfg")


def refused(path: str, policy: PathPolicy = POLICY) -> str:
    with pytest.raises(UsageError) as e:
        check_project(path, policy)
    assert e.value.exit_code == EXIT_USAGE and e.value.hint
    return e.value.message


def test_a_directory_under_a_root_is_a_project() -> None:
    for ok in ("/home/u/src/app", "/home/u/app", "/srv/code/x/y", "/home/u/.sshx", "/home/u/ssh"):
        assert check_project(ok, POLICY) == ok


@pytest.mark.parametrize("secret", HOME_SECRETS)
def test_the_home_secrets_are_never_projects_nor_inside_one(secret: str) -> None:
    path = f"{HOME}/{secret}"
    assert "sensitive directory" in refused(path)
    assert f"~/{secret}" in refused(path)
    assert "sensitive directory" in refused(f"{path}/sub/dir")  # inside one
    parent = os.path.dirname(path)
    if parent != HOME:  # ~/.local holds ~/.local/share/keyrings
        assert "contains a sensitive directory" in refused(parent)


def test_a_parent_of_a_secret_is_refused_even_under_a_root() -> None:
    policy = PathPolicy(roots=("/home",), home=HOME)  # `/home` is a system dir; say it anyway
    assert "contains a sensitive directory" in refused(HOME, policy)
    policy = PathPolicy(roots=("/data-disk",), home="/data-disk/me")
    assert "contains a sensitive directory (/data-disk/me/.ssh" in refused("/data-disk/me", policy)


def test_the_config_directory_is_refused_wherever_it_is() -> None:
    assert "hal-9000's config directory" in refused("/srv/code/hal-cfg")
    assert "hal-9000's config directory" in refused("/srv/code/hal-cfg/sub")
    policy = PathPolicy(roots=("/srv",), home=HOME, config_dir="/srv/code/hal-cfg")
    assert "contains a sensitive directory" in refused("/srv/code", policy)


@pytest.mark.parametrize(
    "path",
    ["/", "/etc", "/etc/ssh", "/proc/1/root", "/sys/fs", "/dev/shm", "/run", "/run/user/1000",
     "/var/run/docker", "/var/lib/docker", "/usr/local/src", "/boot", "/home", "/tmp", "/var"],
)  # fmt: skip
def test_system_directories_are_refused(path: str) -> None:
    assert "system directory" in refused(path, PathPolicy(roots=("/",), home=HOME))


@pytest.mark.parametrize(
    "path", ["/run/hal9000", "/config", "/config/claude", "/data", "/data/services/x"]
)
def test_the_parents_own_directories_are_refused(path: str) -> None:
    message = refused(path, PathPolicy(roots=("/",), home=HOME))
    assert "system directory" in message or "the parent's own directories" in message


def test_roots_themselves_and_paths_outside_them_are_refused() -> None:
    assert "is a root itself" in refused("/srv/code")
    assert "not under a configured root" in refused("/srv/other")
    assert "not under a configured root" in refused("/srv/codex")  # a prefix, not a parent
    assert "no roots are configured" in refused("/home/u/app", PathPolicy((), HOME))


def test_without_the_host_home_nothing_is_a_project() -> None:
    assert "does not know the host user's home" in refused(
        "/srv/code/app", PathPolicy(("/srv",), "")
    )


def test_only_resolved_absolute_paths_are_decided_on() -> None:
    for bad in ("relative/dir", "/home/u/app/../.ssh", "/home/u/./app", "//etc", "/home/u/app/"):
        assert "not an absolute, resolved path" in refused(bad)


def test_resolve_project_resolves_links_and_dots_before_deciding(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = home  # the default root is `~`
    proj = root / "proj"
    proj.mkdir(parents=True)
    (home / ".ssh").mkdir()
    (home / ".config" / "hal9000").mkdir(parents=True)
    (root / "file").write_text("x")
    (root / "link").symlink_to(proj)
    (root / "keys").symlink_to(home / ".ssh")  # a link into ~/.ssh is ~/.ssh
    (root / "up").symlink_to(home)  # a link to ~ is ~
    (proj / "esc").symlink_to("../../home/.aws/../.gnupg")  # relative, dangling
    roots = expand_roots(("~",), str(home))
    policy = PathPolicy(roots, str(home), str(home / ".config" / "hal9000"))
    assert resolve_project(str(root / "link"), policy) == str(proj)
    assert resolve_project("~/proj", policy) == str(proj)  # `~` is the host user's home
    for bad, needle in [
        (root / "missing", "no such directory"),
        (root / "file", "not a directory"),
        (root, "is a root itself"),
        (tmp_path, "contains a sensitive directory"),  # ~ is in it
        (tmp_path / "elsewhere", "not under a configured root"),
        (Path("/etc"), "system directory"),
        (root / "keys", "~/.ssh holds"),
        (Path(f"{proj}/../.ssh"), "~/.ssh holds"),
        (Path(f"{proj}/../../home/./.config/hal9000"), "~/.config holds"),
        (root / "up", "is a root itself"),
        (proj / "esc", "~/.gnupg holds"),
        (Path("~/.ssh"), "~/.ssh holds"),
        (Path("~/proj/../.."), "contains a sensitive directory"),
        (Path("~/proj/../../elsewhere"), "not under a configured root"),
    ]:
        with pytest.raises(UsageError, match=needle.replace(".", r"\.")):
            resolve_project(str(bad), policy)


def test_a_home_under_a_wider_root_is_refused_as_holding_secrets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "src").mkdir(parents=True)
    policy = PathPolicy((str(tmp_path),), str(home))
    with pytest.raises(UsageError, match="contains a sensitive directory"):
        resolve_project(str(home), policy)
    assert resolve_project(str(home / "src"), policy) == str(home / "src")


def test_an_unresolvable_path_is_refused_not_raised(tmp_path: Path) -> None:
    policy = PathPolicy((str(tmp_path),), str(tmp_path / "home"))
    with pytest.raises(UsageError, match="cannot be resolved"):
        resolve_project("a\0b", policy)


def test_the_parents_policy_is_what_claudy_passed() -> None:
    layout = ParentLayout.from_env(
        {"HAL_ROOTS": "/home/u:/srv", "HAL_HOST_HOME": HOME, "HAL_HOST_CONFIG_DIR": "/c/hal"}
    )
    assert PathPolicy.of_parent(layout) == PathPolicy(
        ("/home/u", "/srv"), HOME, "/c/hal", "/data/repos"
    )
    assert PathPolicy.of_parent(ParentLayout()) == PathPolicy((), "", "", "/data/repos")


def test_expand_user_uses_the_given_home_only() -> None:
    assert expand_user("~", HOME) == HOME and expand_user("~/x", HOME) == f"{HOME}/x"
    assert expand_user("~other/x", HOME) == "~other/x"
    assert expand_user("~/x", "") == "~/x"


def test_roots_expand_home_and_refuse_system_and_parent_dirs() -> None:
    assert expand_roots(("~", "~/src"), "/home/u") == ("/home/u", "/home/u/src")
    with pytest.raises(UsageError, match="system directory"):
        check_roots(("/usr",))
    with pytest.raises(UsageError, match="the parent's own directories"):
        check_roots(("/data",))
    check_roots((os.path.realpath("/home/u"), "/srv/code"))
