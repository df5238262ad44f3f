"""Tidy result tables: written as CSV under reports/ and printed for the terminal."""

from pathlib import Path

import pandas as pd

__all__ = ["write_table", "print_table", "report_table"]


def print_table(table: pd.DataFrame) -> None:
    """Print ``table`` whole, floats to 4 significant digits, missing values blank."""
    with pd.option_context("display.width", 250, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}", na_rep=""))


def write_table(table: pd.DataFrame, out: Path, columns: list[str] | None = None) -> None:
    """Write ``table`` to ``out`` as CSV (creating its folder) and print ``columns`` of it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.6g")
    print_table(table if columns is None else table[columns])


def report_table(table: pd.DataFrame, out: Path, columns: list[str] | None = None,
                 claims: list[str] = ()) -> list[Path]:
    """A study's table: written to ``out`` and printed (:func:`write_table`), then its claim
    lines; ``[out]``."""
    write_table(table, out, columns)
    if claims:
        print()
        print("\n".join(claims))
    return [out]
