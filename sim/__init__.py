"""peforge's simulation side: the command line, the RTL flow, EDA, performance model and design
space exploration. ``__version__`` is the installed distribution's version (``peforge`` itself is
a namespace package spread over hw/, models/, sim/ and sweeps/, so it has no ``__init__``)."""

from importlib.metadata import version as _version

__version__ = _version("peforge")
