"""Shunt from Python: hosts, topologies and workloads in virtual time (the compiled module
shunt._shunt), and the scenarios, results store, dashboard and regression gate
(shunt.scenarios). docs/python.md has the guide.

The store, the dashboard and the gate are plain Python and work without the compiled module;
everything that simulates needs it (build it: README)."""
try:
    from ._shunt import *  # noqa: F401,F403
    from ._shunt import __version__  # noqa: F401
    BINDINGS_ERROR = None
except ImportError as e:  # pragma: no cover - only on a tree without the compiled module
    BINDINGS_ERROR = str(e)


def require_bindings() -> None:
    """Raises ImportError with the reason when the compiled module is missing."""
    if BINDINGS_ERROR is not None:
        raise ImportError("shunt._shunt (the compiled bindings) is not built or not loadable: "
                          + BINDINGS_ERROR)
