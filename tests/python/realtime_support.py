"""What the real-time scenario tests (test_rt_*.py) need from the machine."""
import shutil

from shunt.scenarios import backends
from shunt.scenarios import scenario as sc


def missing(programs):
    """Why these tests cannot run here (a program or the preload library is missing), or None."""
    for p in programs:
        if shutil.which(p) is None:
            return f"{p} is not installed"
    try:
        backends.find_library({})
    except sc.BackendUnavailable as e:
        return str(e)
    return None
