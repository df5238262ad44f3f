"""Bounded work and bad input: sweep files sized before they are expanded, foreign and damaged
databases refused (read-only commands change nothing), safe names, non-finite metrics, keys on
a topology's content and rows of an older model."""

import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from peforge.sim.explore import points as points_module
from peforge.sim.explore.report import sweep_rows, write_sweep_report
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.search import plan_sweep, run_sweep
from peforge.sim.explore.spec import SweepError, load_sweep, safe_name

from tests.sim.explore.test_sweep import write_sweep

PEFORGE = [sys.executable, "-m", "peforge.sim.cli"]
HEAD = "workloads: {workload: layers.csv}\n"


def _bomb(levels: int) -> str:
    """A billion-laughs document: each level a list of ten aliases of the level before."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("body, message", [
    (HEAD + "families:\n  systolic:\n    pe.rows: {from: 1, to: 1000000000, step: 1}\n",
     "s.yaml:4: pe.rows: the range holds 1000000000 values, more than 100000"),
    (HEAD + "families:\n  systolic:\n    pe.rows: {from: 1, to: .inf, times: 2}\n",
     "s.yaml:4: pe.rows: the range holds infinitely many values, more than 100000"),
    (HEAD + "axes:\n  clock_mhz: {from: .nan, to: 5, step: 1}\nfamilies: [lut]\n",
     "s.yaml:3: clock_mhz.from: must be a finite number, got nan"),
    # 10**9 values once expanded, a few hundred bytes of text: counted, never built.
    (_bomb(9) + HEAD + "families: [lut]\n",
     "s.yaml:5: l4: holds 111111 values once its aliases are expanded, more than 100000"),
    ("workloads: &w {workload: layers.csv, again: *w}\nfamilies: [lut]\n",
     "s.yaml:1: workloads.again: an alias contains itself"),
    ("workloads: !!python/object/apply:os.system [echo hi]\nfamilies: [lut]\n",
     "s.yaml:1: workloads: the tag !!python/object/apply:os.system is not allowed: plain values, "
     "lists and mappings only"),
    ("", "s.yaml:1: sweep: the file is empty (or only comments): a sweep needs workloads and "
     "families"),
    ("# a comment\n\n# another\n", "s.yaml:1: sweep: the file is empty (or only comments)"),
    ("name: ..\n" + HEAD + "families: [lut]\n", "s.yaml:1: name: must be letters, digits, _ . - "
     "(not starting with . or -), at most 100 of them, got '..'"),
    ("workloads: {workload: layers.csv, seq: {from: 1, to: 5000, step: 1}}\nfamilies: [lut]\n",
     "s.yaml:1: workloads: 5000 combinations of workload, phase and seq, more than 1000"),
    (HEAD + "families: [lut]\nconstraints: [cycles <= nan]\n",
     "s.yaml:3: constraints: bound must be a finite number, got 'nan'"),
    (HEAD + "families: [[lut]]\n", "s.yaml:2: families: must be family names, got ['lut']"),
])
def test_sweep_files_are_sized_and_checked_before_they_are_built(tmp_path, body, message):
    path = write_sweep(tmp_path, body)
    with pytest.raises(SweepError) as error:
        load_sweep(path)
    assert str(error.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(error.value)


def test_a_bomb_inside_an_axis_names_the_axis(tmp_path):
    # The anchors are items of the axis itself: the count names the item that first holds too
    # many (level 4: 1 + 10 x 11,111 values).
    items = "".join(f"      - {line.split(': ', 1)[1]}\n" for line in _bomb(7).splitlines())
    path = write_sweep(tmp_path, HEAD + "families:\n  systolic:\n    pe.rows:\n" + items)
    with pytest.raises(SweepError, match=r"s\.yaml:9: families\.systolic\.pe\.rows\[4\]: holds "
                       r"111111 values once its aliases are expanded, more than 100000$"):
        load_sweep(path)


def test_undecodable_file_and_folder(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"workloads: \xff\xfe\n")
    with pytest.raises(SweepError, match=r"bin\.yaml:1: sweep: not UTF-8 text \(byte 11\)$"):
        load_sweep(tmp_path / "bin.yaml")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(SweepError, match=r"^sweep: cannot read .*dir\.yaml: Is a directory$"):
        load_sweep(tmp_path / "dir.yaml")


@pytest.mark.parametrize("text, name", [("..", "sweep"), (".hidden", "hidden"),
                                        ("a/../b c", "a_.._b_c"), ("-rf", "rf"),
                                        ("ok-1.2_x", "ok-1.2_x"), ("", "sweep")])
def test_safe_names(text, name):
    assert safe_name(text) == name


def test_a_file_stem_becomes_a_safe_sweep_name(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, HEAD + "families: [lut]\n", name="...yaml"))
    assert sweep.name == "sweep"


def test_max_points_and_dry_run(tmp_path):
    path = write_sweep(tmp_path, HEAD + "families:\n  systolic:\n    pe.rows: {from: 1, to: 256, "
                       "step: 1}\n    pe.cols: {from: 1, to: 256, step: 1}\n")
    sweep = load_sweep(path)
    assert sweep.size == 65536
    with pytest.raises(ValueError, match=r"^max-points: the grid has 65536 points, more than "
                       r"--max-points 1000 \(raise it to run them\)$"):
        plan_sweep(sweep, max_points=1000)
    db = tmp_path / "d.db"
    done = subprocess.run(PEFORGE + ["sweep", str(path), "--db", str(db), "--dry-run",
                                     "--workers", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "sweep s: grid search at level model: 65536 points x 1 workloads = " \
                       "65536 rows"
    assert lines[1].startswith("estimated time: ") and " s on 2 workers (the model timed on " \
        in lines[1] and lines[1].endswith(f"nothing was run, {db} is unchanged")
    assert not db.exists()
    refused = subprocess.run(PEFORGE + ["sweep", str(path), "--db", str(db), "--max-points",
                                        "100"], capture_output=True, text=True)
    assert refused.returncode == 2 and not db.exists()
    assert refused.stderr == ("peforge: error: max-points: the grid has 65536 points, more than "
                              "--max-points 100 (raise it to run them)\n")


# --- Databases ---------------------------------------------------------------------------------

SMALL = HEAD + "families:\n  systolic:\n    pe.rows: [4, 8]\n"


def _foreign(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
    return path


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A small sweep stored once: ``(folder, sweep file, database)``."""
    tmp_path = tmp_path_factory.mktemp("stored")
    path = write_sweep(tmp_path, SMALL)
    run_sweep(load_sweep(path), tmp_path / "good.db", workers=1, quiet=True)
    return tmp_path, path, tmp_path / "good.db"


def _bad_databases(tmp_path, good):
    """``{name: (path, message start)}`` of databases every command must refuse."""
    (tmp_path / "folder.db").mkdir()
    (tmp_path / "plain").write_text("a file")
    (tmp_path / "text.db").write_text("not SQLite at all " * 50)
    data = good.read_bytes()
    (tmp_path / "cut.db").write_bytes(data[:len(data) // 2])
    return {
        "folder": (tmp_path / "folder.db", f"db: {tmp_path}/folder.db is a folder, not a results "
                   "database"),
        "under a file": (tmp_path / "plain" / "r.db", f"db: {tmp_path}/plain/r.db is under "
                         f"{tmp_path}/plain, which is a file"),
        "not sqlite": (tmp_path / "text.db", f"db: {tmp_path}/text.db is not a readable results "
                       "database (sqlite: file is not a database)"),
        "truncated": (tmp_path / "cut.db", f"db: {tmp_path}/cut.db is not a readable results "
                      "database (sqlite: database disk image is malformed)"),
        "foreign": (_foreign(tmp_path / "foreign.db"), f"db: {tmp_path}/foreign.db is not a "
                    "peforge results database (schema version 0, tables notes;"),
    }


def test_every_command_refuses_a_bad_database_in_one_line_and_changes_nothing(stored,
                                                                               tmp_path):
    _source, path, good = stored
    for name, (db, message) in _bad_databases(tmp_path, good).items():
        before = db.read_bytes() if db.is_file() else None
        for command in (["sweep", str(path), "--db", str(db), "--workers", "1", "--quiet"],
                        ["results", "export", str(db), "--csv", str(tmp_path / "o.csv")],
                        ["report", str(db), "--out", str(tmp_path / "rep")]):
            if command[0] != "sweep" and not db.is_file():
                continue  # a folder or a missing file is no database to report
            done = subprocess.run(PEFORGE + command, capture_output=True, text=True)
            assert done.returncode == 2, (name, command)
            assert done.stderr.startswith(f"peforge: error: {message}"), (name, done.stderr)
            assert done.stderr.count("\n") == 1, (name, done.stderr)
            assert (db.read_bytes() if db.is_file() else None) == before, name
        assert not (tmp_path / "o.csv").exists() and not (tmp_path / "rep").exists()
    with sqlite3.connect(tmp_path / "foreign.db") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (0,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert [name for (name,) in db.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_read_only_commands_do_not_change_a_database(stored, tmp_path):
    _source, _path, good = stored
    before = good.read_bytes()
    subprocess.run(PEFORGE + ["results", "export", str(good), "--csv", str(tmp_path / "o.csv")],
                   check=True, capture_output=True)
    subprocess.run(PEFORGE + ["report", str(good), "--out", str(tmp_path / "rep")], check=True,
                   capture_output=True)
    assert good.read_bytes() == before
    assert (tmp_path / "o.csv").read_text().count("\n") == 3  # header and two rows


def _altered_copy(source, path, *statements):
    """A copy of the database ``source`` at ``path``, changed by the SQL ``statements``."""
    with sqlite3.connect(source) as original, sqlite3.connect(path) as copy:
        original.backup(copy)
        for statement in statements:
            copy.execute(statement)
    copy.close()
    original.close()
    return path


def test_a_version_1_database_is_read_as_it_is_and_upgraded_by_a_sweep(stored, tmp_path):
    _source, path, good = stored
    old = _altered_copy(good, tmp_path / "v1.db", "ALTER TABLE results DROP COLUMN model_version",
                        "PRAGMA user_version=1")
    before = old.read_bytes()
    with ResultStore(old, readonly=True) as store:
        assert len(store.table()) == 2 and "model_version" not in store.table()
    assert old.read_bytes() == before
    done = subprocess.run(PEFORGE + ["sweep", str(path), "--db", str(old), "--workers", "1",
                                     "--quiet"], capture_output=True, text=True, check=True)
    # Rows of no known model version are evaluated again, and the sweep says so.
    assert "sweep: 2 stored rows of" in done.stderr and "come from an older model" in done.stderr
    assert "2 points asked, 2 evaluated" in done.stdout
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        versions = {version for (version,) in db.execute("SELECT model_version FROM results")}
    assert versions == {points_module.model_version()}


def test_rows_of_an_older_model_are_evaluated_again_and_the_report_says_so(stored, tmp_path):
    _source, path, good = stored
    db = _altered_copy(good, tmp_path / "older.db",
                       "UPDATE results SET model_version = 'an-old-one'")
    report = subprocess.run(PEFORGE + ["report", str(db), "--out", str(tmp_path / "rep")],
                            capture_output=True, text=True, check=True)
    assert ("report: 2 of 2 rows come from an older model version (another peforge or edited "
            "model code): run the sweep again to refresh them.") in report.stderr
    assert "2 of 2 rows come from an older model version" in (
        tmp_path / "rep" / "index.html").read_text()
    run = run_sweep(load_sweep(path), db, workers=1, quiet=True)
    assert (run.points_evaluated, run.points_skipped) == (2, 0)
    again = run_sweep(load_sweep(path), db, workers=1, quiet=True)
    assert (again.points_evaluated, again.points_skipped) == (0, 2)


def test_keys_follow_the_topology_file_s_content(tmp_path):
    path = write_sweep(tmp_path, SMALL)
    db = tmp_path / "t.db"
    run_sweep(load_sweep(path), db, workers=1, quiet=True)
    # Double every GEMM's M: new content, new keys, new MAC counts (M x N x K by hand).
    (tmp_path / "layers.csv").write_text("layer, M, N, K\ng1, 128, 96, 128\ng2, 400, 64, 48\n")
    run = run_sweep(load_sweep(path), db, workers=1, quiet=True)
    assert (run.points_evaluated, run.points_skipped) == (2, 0)
    with ResultStore(db, readonly=True) as store:
        rows = sweep_rows(store, "s")
    # The report's rows are those of the file as it is now; the old ones stay stored.
    assert len(rows) == 2 and set(rows["run"]) == {2}
    assert set(rows["macs"]) == {128 * 96 * 128 + 400 * 64 * 48}
    with ResultStore(db, readonly=True) as store:
        table = store.table()
    assert len(table) == 4
    assert set(table.loc[table["run"] == 1, "macs"]) == {64 * 96 * 128 + 200 * 64 * 48}


def test_metrics_that_are_not_finite_are_failed_rows(tmp_path):
    path = write_sweep(tmp_path, HEAD + "axes:\n  clock_mhz: [1.0e-300, 1000]\n"
                       "families:\n  systolic:\n    pe.rows: [4]\n")
    run_sweep(load_sweep(path), tmp_path / "f.db", workers=1, quiet=True)
    with ResultStore(tmp_path / "f.db", readonly=True) as store:
        table = store.table().set_index("clock_mhz")
    assert table.loc[1000, "status"] == "ok"
    assert table.loc[1e-300, "status"] == "failed"
    # 1e-300 MHz: a cycle lasts 1e294 s, so leakage power x time overflows a float.
    assert table.loc[1e-300, "error"] == "metrics: energy_leakage_pj is inf, not a finite number"


def test_a_design_run_at_two_levels_is_reported_once(tmp_path):
    """--synth and then --verify into one database (here: the model, then --synth: the same
    path): each design once, at its highest level. Two clocks share one synthesis."""
    path = write_sweep(tmp_path, HEAD + "axes:\n  clock_mhz: [500, 1000]\n"
                       "families:\n  systolic: {pe.rows: 2, pe.cols: 2}\n")
    db = tmp_path / "l.db"
    run_sweep(load_sweep(path), db, workers=1, quiet=True)
    run_sweep(load_sweep(path), db, level="synth", workers=1, quiet=True)
    with ResultStore(db, readonly=True) as store:
        assert len(store.table()) == 4
        rows = sweep_rows(store, "s")
    assert sorted(rows["design"]) == ["systolic clock_mhz=1000", "systolic clock_mhz=500"]
    assert set(rows["level"]) == {"synth"} and rows["synth_nand2_eq"].notna().all()
    write_sweep_report(db, tmp_path / "rep")
    pareto = pd.read_csv(tmp_path / "rep" / "pareto.csv")
    assert not pareto.duplicated(["workload_label", "design"]).any() and len(pareto) >= 1
