"""peforge's simulation side: the command line, the RTL flow, EDA, performance model and design
space exploration. ``__version__`` is the installed distribution's version (``peforge`` itself is
a namespace package spread over hw/, models/, sim/ and sweeps/, so it has no ``__init__``)."""


def __getattr__(name: str):
    if name == "__version__":  # looked up when asked: importlib.metadata loads slowly
        from importlib.metadata import version

        return version("peforge")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
