"""kb: the living complaint cheat sheet."""

import os

# Before NumPy loads: a search multiplies one small matrix by one vector, far too
# little work to share between threads, and the server already runs a process per
# core. With BLAS's own thread pool, each product woke a second thread that spun
# for its share, which tripled a search's CPU time on a busy server.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from kb.app import create_app  # noqa: E402 (after the thread settings)

__all__ = ["create_app"]
