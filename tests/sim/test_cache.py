"""The on-disk cache (peforge.sim.cache): content keys, private folders, owner checks, atomic
entries."""

import hashlib
import os
import stat

import pytest

from peforge.sim import cache


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PEFORGE_CACHE", str(folder))
    return folder


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_content_key_is_the_sha256_of_the_parts_joined_by_nul():
    assert cache.content_key("a", "bc") == hashlib.sha256(b"a\0bc").hexdigest()[:16]
    assert cache.content_key("a", "bc") != cache.content_key("ab", "c")


def test_json_entry_is_computed_once_in_private_folders(root):
    path = cache.entry_path("energy/verilog", "top", "0123", ".json")
    assert path == root / "energy" / "verilog" / "top-0123.json"
    calls = []
    compute = lambda: calls.append(1) or {"x": [1, 2]}  # noqa: E731
    assert cache.cached_json(path, compute) == ({"x": [1, 2]}, False)
    assert cache.cached_json(path, compute) == ({"x": [1, 2]}, True)
    assert len(calls) == 1
    for folder in (root, root / "energy", root / "energy" / "verilog"):
        assert mode(folder) == 0o700, folder


def test_an_open_cache_folder_of_ours_is_made_private_but_not_the_root(root):
    (root / "synth").mkdir(parents=True)
    root.chmod(0o755)
    (root / "synth").chmod(0o777)
    cache.cached_json(cache.entry_path("synth", "t", "k", ".json"), lambda: {})
    assert (mode(root), mode(root / "synth")) == (0o755, 0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_entry_another_user_owns_is_refused(root):
    path = cache.entry_path("verilator", "top", "k")
    cache.cached_folder(path, "top", lambda folder: (folder / "top").write_text("ok"))
    os.chown(path, 65534, -1)
    with pytest.raises(cache.CacheError, match=rf"^cache: {path} belongs to uid 65534, not to "
                                               rf"you \(uid 0\); remove it or point "
                                               rf"PEFORGE_CACHE at a folder of your own$"):
        cache.cached_folder(path, "top", lambda folder: None)
    json_entry = cache.entry_path("synth", "t", "k", ".json")
    cache.cached_json(json_entry, lambda: {})
    os.chown(json_entry, 65534, -1)
    with pytest.raises(cache.CacheError, match=rf"^cache: {json_entry} belongs to uid 65534"):
        cache.cached_json(json_entry, lambda: {})


def test_a_cache_root_another_user_owns_is_refused(root, monkeypatch):
    root.mkdir()
    owner = root.stat().st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    with pytest.raises(cache.CacheError, match=rf"^cache: {root} belongs to uid {owner}, not to "
                                               rf"you \(uid {owner + 1}\)"):
        cache.cached_json(cache.entry_path("synth", "t", "k", ".json"), lambda: {})


def test_a_folder_entry_counts_only_when_complete(root):
    path = cache.entry_path("energy/netlist", "top", "k")

    def fail(work):
        (work / "netlist.v").write_text("half")
        raise RuntimeError("yosys failed")

    with pytest.raises(RuntimeError, match="yosys failed"):
        cache.cached_folder(path, "netlist.json", fail)
    assert not path.exists()
    # A crash inside an in-place fill leaves an incomplete folder: the next call fills it anew.
    path.mkdir()
    (path / "stale").write_text("x")
    folder, hit = cache.cached_folder(path, "netlist.json",
                                      lambda work: (work / "netlist.json").write_text("{}"),
                                      in_place=True)
    assert (folder, hit) == (path, False) and sorted(p.name for p in path.iterdir()) == \
        ["netlist.json"]
    assert cache.cached_folder(path, "netlist.json", fail) == (path, True)
    with pytest.raises(cache.CacheError,
                       match=r"^cache: filling .*/work-top-k2-\w+ left no netlist.json$"):
        cache.cached_folder(cache.entry_path("energy/netlist", "top", "k2"), "netlist.json",
                            lambda work: None)


def test_the_folders_above_a_missing_root_are_created_as_on_a_fresh_machine(tmp_path,
                                                                            monkeypatch):
    # a fresh machine has no ~/.cache: the default root's parent must be made too
    root = tmp_path / "home" / ".cache" / "peforge"
    monkeypatch.setenv("PEFORGE_CACHE", str(root))
    path = cache.entry_path("synth", "t", "k", ".json")
    assert cache.cached_json(path, lambda: {"a": 1}) == ({"a": 1}, False)
    assert mode(root) == 0o700 and path.is_file()
