from __future__ import annotations

from host_shim.core.uninstall import Entry, Found, describe, parse_manifest, plan

VENV = "/home/u/.local/share/hal9000/venv"
LINE = 'export PATH="$HOME/.local/bin:$PATH"  # claudy (hal-9000)'
MANIFEST = f"""# made by hal-9000's install.sh
venv\t{VENV}
link\t/home/u/.local/bin/claudy
profile\t/home/u/.profile\t{LINE}
completion\t/home/u/.local/share/bash-completion/completions/claudy
group\tdocker
venv\t{VENV}
"""


def found(**kw: object) -> Found:
    entries, _ = parse_manifest(MANIFEST)
    base: dict[str, object] = {
        "parents": ("hal9000-parent",),
        "images": ("hal9000/parent:0.1.0", "hal9000/base:bookworm"),
        "volumes": ("hal9000-parent-docker", "hal9000-parent-data"),
        "config_dir": "/home/u/.config/hal9000",
        "data_dirs": ("/home/u/.cache/hal9000",),
        "manifest": entries,
        "manifest_path": f"{VENV}/hal9000-install.txt",
    }
    base.update(kw)
    return Found(**base)  # type: ignore[arg-type]


def test_the_manifest_is_read_once_per_line_and_bad_lines_are_named() -> None:
    entries, warnings = parse_manifest(MANIFEST + "link\trelative/path\nbogus line\n")
    assert [e.kind for e in entries] == ["venv", "link", "profile", "completion", "group"]
    assert entries[2] == Entry("profile", "/home/u/.profile", LINE)
    assert len(warnings) == 2 and "line 8" in warnings[0] and "line 9" in warnings[1]


def test_by_default_images_volumes_and_config_stay_and_are_said_to() -> None:
    p = plan(found(), images=False, volumes=False, config=False)
    assert p.parents == ("hal9000-parent",) and not p.images and not p.volumes
    assert p.paths == (
        "/home/u/.cache/hal9000",
        "/home/u/.local/share/bash-completion/completions/claudy",
    )
    assert p.links == (("/home/u/.local/bin/claudy", VENV),)
    assert p.profile_lines == (("/home/u/.profile", LINE),)
    assert p.venv == VENV
    kept = " ".join(p.kept)
    assert "--images" in kept and "--volumes" in kept and "--config" in kept
    assert "gpasswd -d $USER docker" in kept


def test_the_flags_add_images_volumes_and_config() -> None:
    p = plan(found(), images=True, volumes=True, config=True)
    assert p.images == ("hal9000/parent:0.1.0", "hal9000/base:bookworm")
    assert p.volumes == ("hal9000-parent-docker", "hal9000-parent-data")
    assert "/home/u/.config/hal9000" in p.paths
    lines = describe(p)
    assert lines[0].startswith("  container  hal9000-parent")
    assert lines[-1] == f"  venv       {VENV} (claudy itself, last)"  # last in the list too


def test_a_manifest_names_no_venv_but_its_own() -> None:
    p = plan(found(manifest_path="/elsewhere/hal9000-install.txt"), False, False, False)
    assert p.venv is None
    assert p.links == (("/home/u/.local/bin/claudy", "/elsewhere"),)
    assert any(VENV in k and "not in it" in k for k in p.kept)


def test_without_a_manifest_only_what_the_engine_and_dirs_hold() -> None:
    p = plan(found(manifest=(), manifest_path=None), False, False, False)
    assert p.venv is None and not p.links and not p.profile_lines
    assert p.paths == ("/home/u/.cache/hal9000",)
    assert plan(Found(), True, True, True).empty()
