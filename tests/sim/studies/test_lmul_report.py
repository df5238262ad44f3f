"""``peforge report lmul``: the error table against ml_dtypes, the claims, and the CLI."""

import json
import subprocess
import sys

import ml_dtypes
import numpy as np
import pandas as pd
import pytest

from peforge.sim.studies.lmul import claims, error_table

DTYPES = {"e4m3": (ml_dtypes.float8_e4m3fn, 7, 55), "e5m2": (ml_dtypes.float8_e5m2, 15, 59)}


def peforge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def table():
    return error_table(seed=0)


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_all_pairs_rows_against_ml_dtypes(table, name):
    """Recompute both rows from ml_dtypes values: L-Mul as the integer add of the reference
    (saturating at the largest finite value), rounding as ml_dtypes' cast."""
    dtype, bias, constant = DTYPES[name]
    values = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float64)
    largest = float(ml_dtypes.finfo(dtype).max)
    max_pattern = int(np.array(largest, dtype).view(np.uint8))
    smallest_normal = 2.0 ** (1 - bias)
    lmul_err, round_err = [], []
    for x in range(256):
        for y in range(256):
            vx, vy = values[x], values[y]
            with np.errstate(invalid="ignore"):         # 0 * Inf: skipped below
                exact = vx * vy
            if not (np.isfinite(exact) and abs(vx) >= smallest_normal <= abs(vy)
                    and smallest_normal <= abs(exact) <= largest):
                continue
            r = min((x & 0x7F) + (y & 0x7F) - constant, max_pattern)
            lmul = np.array(r | ((x ^ y) & 0x80), np.uint8).view(dtype).astype(np.float64)
            rounded = float(np.array(exact).astype(dtype))
            lmul_err.append(abs(lmul - exact) / abs(exact))
            round_err.append(abs(rounded - exact) / abs(exact))
    rows = table[table.operands == f"all-pairs-{name}"].set_index("method")
    for method, errors in (("lmul", lmul_err), (f"round-{name}", round_err)):
        assert rows.loc[method, "pairs"] == len(errors)
        assert rows.loc[method, "mean_rel_error"] == pytest.approx(np.mean(errors), rel=1e-12)
        assert rows.loc[method, "max_rel_error"] == pytest.approx(max(errors), rel=1e-12)


def test_gaussian_rows_are_in_the_reference_range(table):
    """The reference's own estimates (lmul.md): e4m3 multiply ~3.5-4.5%, e5m2 ~7%, L-Mul m=3
    ~5%, m >= 5 ~2.7%."""
    mean = table[table.operands == "gaussian"].set_index("method").mean_rel_error
    assert 0.03 < mean["round-e4m3"] < 0.05
    assert 0.06 < mean["round-e5m2"] < 0.08
    assert 0.045 < mean["lmul-m3"] < 0.065
    assert 0.025 < mean["lmul-m7"] < 0.03


def test_claims_follow_the_numbers(table):
    assert all(" holds " in line for line in claims(table))
    worse = table.copy()
    worse.loc[worse.method == "lmul-m4", "mean_rel_error"] = 1.0
    worse.loc[worse.method == "lmul-m3", "mean_rel_error"] = 1.0
    assert all("does not hold" in line for line in claims(worse))


def test_cli_report_writes_tables_png_and_claims(tmp_path):
    result = peforge("report", "lmul", "--out", str(tmp_path / "lmul"))
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "lmul" / "lmul_error.csv")
    assert list(written.columns) == ["operands", "method", "format", "pairs", "mean_rel_error",
                                     "max_rel_error"]
    assert (tmp_path / "lmul" / "lmul_error.png").read_bytes()[:4] == b"\x89PNG"
    area = pd.read_csv(tmp_path / "lmul" / "lmul_area.csv").set_index(["format", "multiplier"])
    for name in ("e4m3", "e5m2", "fp16", "bf16"):
        lmul, exact = area.loc[(name, "lmul")], area.loc[(name, "exact")]
        assert 0 < lmul.transistors < exact.transistors
        assert lmul.transistors_vs_exact == pytest.approx(lmul.transistors / exact.transistors)
    claim_lines = (tmp_path / "lmul" / "claims.txt").read_text().splitlines()
    assert len(claim_lines) == 2 and all(line in result.stdout for line in claim_lines)


@pytest.mark.parametrize("args, message", [
    (["report", "nosuch"], "peforge: error: report: must be a study (lmul, bitserial, lut, "
                           "sparse-dsp, numerics, cost), a sweep file (.yaml) or a results database, got "
                           "'nosuch'"),
    (["gen", "lmul", "--format", "e3m4"],
     "peforge: error: format: must be one of e4m3, e5m2, fp16, bf16, got 'e3m4'"),
    (["gen", "lmul-dot", "--lanes", "65"],
     "peforge: error: lanes: must be an integer in 1..64, got 65"),
    (["gen", "systolic", "--pe", "lmul", "--format", "fp32"],
     "peforge: error: format: must be one of e4m3, e5m2, fp16, bf16, got 'fp32'"),
    (["gen", "systolic", "--pe", "lmul", "--bits", "4"],
     "peforge: error: bits: applies to pe=int only (pe=lmul uses format)"),
    (["gen", "systolic", "--format", "e4m3"],
     "peforge: error: format: applies to pe=lmul or pe=fp only, got pe=int"),
])
def test_cli_errors(args, message):
    result = peforge(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_cli_gen_float_systolic_array(tmp_path):
    result = peforge("gen", "systolic", "--pe", "lmul", "--format", "bf16", "--rows", "2",
                     "--cols", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(next(tmp_path.glob("systolic_*.json")).read_text())
    assert manifest["parameters"]["pe"] == "lmul" and manifest["parameters"]["format"] == "bf16"
    ports = {port["name"]: port["width"] for port in manifest["ports"]}
    assert ports["o_stream__payload"] == 3 * 32 + 1  # three fp32 accumulators and last


def test_cli_gen_dot_product_unit(tmp_path):
    result = peforge("gen", "lmul-dot", "--format", "bf16", "--lanes", "16", "--exact",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "module lmul_dot(" in next(tmp_path.glob("lmul_dot_*.v")).read_text()
