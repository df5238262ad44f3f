"""The family studies behind ``peforge report <study>``.

Each study is a module of this package with ``run(out_dir, **options) -> list[Path]``: it computes
its tables (synthesis and energy runs are cached), writes them into ``out_dir``, prints them and
returns the paths written. :data:`STUDIES` registers them by name; a new study is one module and
one :class:`Study` entry.
"""

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

__all__ = ["Study", "STUDIES", "study", "run_study"]


@dataclass(frozen=True)
class Study:
    """One registered study.

    Attributes
    ----------
    name : str
        ``peforge report <name>``.
    module : str
        Module (under ``peforge.sim.studies``) whose ``run(out_dir, **options)`` writes it.
    folder : str
        Default output folder under ``reports/``.
    summary : str
        One line for ``peforge report --help``.
    options : tuple of str
        Keyword options ``run`` takes from the command line (``seed``, ``stats``).
    """

    name: str
    module: str
    folder: str
    summary: str
    options: tuple[str, ...] = ()

    def run(self, out_dir: Path | None = None, **options) -> list[Path]:
        """Run the study into ``out_dir`` (default ``reports/<folder>``); the paths written.
        Raises ValueError naming an option the study does not take."""
        for name in options:
            if name not in self.options:
                raise ValueError(f"{name}: report {self.name} takes "
                                 + (f"only {', '.join(self.options)}" if self.options
                                    else "no options"))
        out = Path(out_dir) if out_dir is not None else Path("reports") / self.folder
        return import_module(f"peforge.sim.studies.{self.module}").run(out, **options)


#: The studies by name, in ``peforge report --help`` order.
STUDIES = {entry.name: entry for entry in (
    Study("lmul", "lmul", "lmul", "L-Mul error vs exact multiply and fp8 rounding, and the "
          "multipliers' area", ("seed",)),
    Study("bitserial", "bitserial", "bitserial", "bit-serial PE vs INT8 MAC PE: cells, "
          "transistors, area per throughput"),
    Study("lut", "lut", "lut", "LUT tile vs integer MAC arrays of the same throughput"),
    Study("sparse-dsp", "sparse_dsp", "sparse_dsp", "the sparse DSP chain's N:M modes vs the "
          "dense chain, and its MUXes' area"),
    Study("numerics", "numerics", "numerics", "all-MiniLM-L6-v2 on each PE arithmetic vs float32, "
          "and the papers' accuracy claims"),
    Study("cost", "cost", "cost", "one table: each family's trick vs its baseline (transistors, "
          "area, energy) beside its paper's ratio", ("stats",)),
)}


def study(name: str) -> Study:
    """The study called ``name``; ValueError naming the choices."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"study: must be one of {', '.join(STUDIES)}, got {name!r}") from None


def run_study(name: str, out_dir: Path | None = None, **options) -> list[Path]:
    """Run study ``name`` (:meth:`Study.run`)."""
    return study(name).run(out_dir, **options)
