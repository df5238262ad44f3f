"""``peforge report numerics``: the whole-model numerics study (:mod:`peforge.sim.numerics.study`)."""

from pathlib import Path

__all__ = ["run"]


def run(out_dir: Path) -> list[Path]:
    """Writes numerics.csv, perplexity.csv, claims.txt and numerics.png into ``out_dir`` and
    prints the claims."""
    from peforge.sim.numerics.study import write_report

    paths = write_report(out_dir)
    print((out_dir / "claims.txt").read_text(), end="")
    return list(paths)
