"""What a user expects of the ``peforge`` tool: --version, help on a bare call, one-line errors
with a non-zero status for bad paths, Ctrl-C as one line and status 130, progress lines, and the
read-only ``results list|show`` and the ``cache info|clean`` commands."""

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})})


def assert_one_line_error(result, start, status=2):
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(start), result.stderr


def test_version_is_the_distributions():
    import peforge.sim

    result = run("--version")
    assert result.returncode == 0
    # pyproject.toml's version, read independently of the code under test.
    declared = next(line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text()
                    .splitlines() if line.startswith("version = "))
    assert result.stdout == f"peforge {declared}\n" and declared == version("peforge")
    assert peforge.sim.__version__ == declared


def test_bare_peforge_prints_the_help_and_fails():
    result = run()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: peforge ")
    for command in ("gen", "verify", "synth", "sim", "sweep", "results", "report", "cache",
                    "demo"):
        assert f"    {command} " in result.stderr


def test_demo_out_naming_a_file_is_refused_before_any_work(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_line_error(run("demo", "--out", str(target), cwd=tmp_path),
                          f"peforge: error: out: {target} is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_topology_naming_a_folder_is_one_line(tmp_path):
    result = run("sim", "--family", "systolic", "--topology", str(tmp_path), "--cycles-only")
    assert_one_line_error(result, f"peforge: error: topology: {tmp_path} is a folder, not a "
                          "SCALE-Sim .csv file")
    assert result.stdout == ""


def test_conv_row_with_stride_zero_is_one_line_naming_the_file(tmp_path):
    topology = tmp_path / "conv.csv"
    topology.write_text("Layer, H, W, FH, FW, C, F, S,\nconv1, 8, 8, 3, 3, 4, 8, 0,\n")
    result = run("sim", "--family", "systolic", "--topology", str(topology), "--cycles-only")
    # The message itself is the topology reader's (tests/sim/perf); here: one line, no output.
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("peforge: error: ")


def test_unreadable_config_is_one_line(tmp_path):
    result = run("sim", "--config", str(tmp_path), "--workload", "llama2-7b")
    assert_one_line_error(result, f"peforge: error: config: cannot read {tmp_path}: ")


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0, 3.0])
def test_ctrl_c_at_any_moment_of_a_run_is_one_line(tmp_path, delay):
    # ``delay`` seconds after the first progress line (a cold Verilator build, an empty cache):
    # elaborating, writing, building.
    process = subprocess.Popen(
        [sys.executable, "-m", "peforge.sim.cli", "verify", "systolic", "--rows", "3", "--cols",
         "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PEFORGE_CACHE": str(tmp_path), "PEFORGE_PROGRESS": "1"})
    first = process.stderr.readline()
    assert first.startswith("peforge: verify systolic: generating, building"), first
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr.strip()) == (130, "peforge: interrupted"), stderr


def test_progress_lines_on_request(tmp_path):
    result = run("gen", "systolic", "--rows", "2", "--cols", "2", "--out", str(tmp_path),
                 env={"PEFORGE_PROGRESS": "1"})
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert lines[0] == "peforge: gen systolic: elaborating and writing Verilog ..."
    assert lines[1].startswith("peforge: gen systolic: elaborating and writing Verilog: ")
    assert lines[1].endswith(" s") and len(lines) == 2
    quiet = run("gen", "systolic", "--rows", "2", "--cols", "2", "--out", str(tmp_path))
    assert quiet.stderr == ""  # not a terminal: no progress lines


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_generated_files_get_the_users_umask(tmp_path, umask, mode):
    # 0666 less the umask, as ``touch`` would make them (not mkstemp's fixed 0600).
    result = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "gen", "systolic", "--rows",
                             "2", "--cols", "2", "--out", str(tmp_path)], capture_output=True,
                            text=True, preexec_fn=lambda: os.umask(umask))
    assert result.returncode == 0, result.stderr
    written = sorted(tmp_path.iterdir())
    assert [path.suffix for path in written] == [".json", ".v"]
    assert [path.stat().st_mode & 0o777 for path in written] == [mode, mode]


# -- results list|show -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "example.db"
    result = run("sweep", str(ROOT / "examples" / "sweep.yaml"), "--db", str(db), "--quiet",
                 "--workers", "1")
    assert result.returncode == 0, result.stderr
    return db


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def test_results_list_and_show_read_without_changing_the_database(example_db):
    before = digest(example_db)
    listing = run("results", "list", str(example_db))
    assert listing.returncode == 0, listing.stderr
    # examples/sweep.yaml: systolic rows 8, 16, 32 x cols 8, 32 plus lmul lanes 16, 64 = 8
    # points, times 2 weight SRAM sizes = 16, one workload each.
    assert listing.stdout.splitlines()[1].split() == ["example", "16", "16", "0"]
    rows = run("results", "list", str(example_db), "--sweep", "example")
    lines = rows.stdout.splitlines()
    assert rows.returncode == 0 and len(lines) == 17
    key, point = lines[1].split()[:2]
    with sqlite3.connect(example_db) as db:
        cycles = db.execute("SELECT json_extract(metrics, '$.cycles') FROM results WHERE "
                            "key = ?", (key,)).fetchone()[0]
    assert lines[1].split()[8] == str(int(cycles))
    shown = run("results", "show", str(example_db), key[:6])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"row {key} (point {point}): ")
    assert f"  cycles                       {int(cycles)} cycles" in shown.stdout.splitlines()
    assert digest(example_db) == before


@pytest.mark.parametrize("make, message", [
    (lambda path: path.mkdir(), "a folder, not a file"),
    (lambda path: path.write_text("not sqlite at all, just text\n" * 10),
     "is not a readable SQLite database"),
    (lambda path: sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.commit(),
     "is not a peforge results database"),
])
def test_results_list_refuses_what_is_not_a_results_database(tmp_path, make, message):
    path = tmp_path / "foreign.db"
    make(path)
    before = digest(path) if path.is_file() else None
    assert_one_line_error(run("results", "list", str(path)), f"peforge: error: db: {path}")
    assert message in run("results", "list", str(path)).stderr
    if before is not None:
        assert digest(path) == before


def test_results_show_of_an_unknown_or_short_key(example_db):
    assert_one_line_error(run("results", "show", str(example_db), "zzzz"),
                          "peforge: error: key: no row or point starting 'zzzz'")
    assert_one_line_error(run("results", "show", str(example_db), "ab"),
                          "peforge: error: key: give 4 or more characters")


# -- cache info|clean ------------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "cache"
    (root / "verilator" / "top-1").mkdir(parents=True)
    (root / "verilator" / "top-1" / "Vtop").write_bytes(b"x" * 3000)
    (root / "verilator" / "top-1.lock").write_bytes(b"")
    (root / "energy").mkdir()
    (root / "energy" / "old.json").write_bytes(b"y" * 100)
    (root / "energy" / "new.json").write_bytes(b"z" * 24)
    # A kind below a kind (peforge.sim.cache's energy/netlist), one entry of 2 files.
    (root / "energy" / "netlist" / "top-2").mkdir(parents=True)
    (root / "energy" / "netlist" / "top-2" / "netlist.json").write_bytes(b"n" * 1000)
    (root / "energy" / "netlist" / "top-2" / "cells.v").write_bytes(b"c" * 48)
    (root / "energy" / "netlist" / "top-2.lock").write_bytes(b"")
    ten_days_ago = time.time() - 10 * 86400
    for old in (root / "energy" / "old.json", root / "energy" / "netlist" / "top-2"):
        os.utime(old, (ten_days_ago, ten_days_ago))
    return root


def test_cache_info_sizes_each_kind(cache):
    result = run("cache", "info", env={"PEFORGE_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["cache", str(cache)]
    # energy: 100 + 24 bytes; energy/netlist: one entry, a folder of 1000 + 48 bytes of files;
    # verilator: one entry of 3000 bytes, 2.93 KiB; all 4172 bytes, 4.074 KiB.
    assert lines[1] == ["energy", "2", "entries", "124", "B"]
    assert lines[2] == ["energy/netlist", "1", "entries", "1.023", "KiB"]
    assert lines[3] == ["verilator", "1", "entries", "2.93", "KiB"]
    assert lines[4] == ["total", "4.074", "KiB"]


def test_cache_clean_needs_yes_and_picks_by_kind_and_age(cache):
    env = {"PEFORGE_CACHE": str(cache)}
    dry = run("cache", "clean", "--older-than", "5", env=env)
    # old.json (100 B) and the netlist entry (1048 B): 1148 B = 1.121 KiB.
    assert dry.returncode == 0 and dry.stdout.startswith("would remove 2 entries (1.121 KiB)")
    assert (cache / "energy" / "old.json").exists()
    done = run("cache", "clean", "--kind", "energy", "--older-than", "5", "--yes", env=env)
    assert done.returncode == 0 and done.stdout.startswith("removed 2 entries (1.121 KiB)")
    assert sorted(p.name for p in (cache / "energy").iterdir()) == ["netlist", "new.json"]
    assert sorted(p.name for p in (cache / "energy" / "netlist").iterdir()) == ["top-2.lock"]
    assert (cache / "verilator" / "top-1" / "Vtop").exists()
    run("cache", "clean", "--yes", env=env)
    assert sorted(p.name for p in (cache / "verilator").iterdir()) == ["top-1.lock"]
    # The kinds' folders stay, with the locks of the entries that were removed.
    assert [p.name for p in (cache / "energy").iterdir()] == ["netlist"]


@pytest.mark.parametrize("args, start", [
    (["--kind", "nosuch"], "peforge: error: kind: must be one of energy, energy/netlist, "
                           "verilator, got 'nosuch'"),
    (["--older-than", "-1"], "peforge: error: argument --older-than: must be a number of days"),
    (["--older-than", "nan"], "peforge: error: argument --older-than: must be a number of days"),
])
def test_cache_clean_bad_arguments(cache, args, start):
    assert_one_line_error(run("cache", "clean", *args, env={"PEFORGE_CACHE": str(cache)}), start)
