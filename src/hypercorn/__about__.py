__version__ = "0.1.0"


def compiled() -> bool:
    """True when this installation is the compiled build (``HYPERCORN_COMPILE=1``, see
    setup.py): the HTTP/1.1 hot path is C extensions made by mypyc, not Python modules."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from .protocol import events

    return (events.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
