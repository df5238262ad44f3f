"""The shipped sweep specifications, installed as package data (``peforge demo`` runs ``demo.yaml``)."""

from importlib.resources import files
from pathlib import Path


def shipped_sweep(name: str) -> Path:
    """Path of the shipped sweep file ``<name>.yaml``."""
    return Path(str(files(__name__) / f"{name}.yaml"))
