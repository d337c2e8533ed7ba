"""Empirical Bayes and full Bayes for millions of users, on a Dask cluster (``pip install hbm[scale]``).

A capability to take to production: from a play-event log in Parquet to every user's
posterior in Parquet, reading the log once. Split by stage:

hbm.scale.log          simulated play-event logs, partitioned by time, with their truth
hbm.scale.cluster      local or remote Dask clients; peak memory of client and workers
hbm.scale.count        the count pass: events to dense per-user counts, tree-summed
hbm.scale.histograms   regional histograms and distinct (x, n) pairs, reduced in a tree
hbm.scale.model        the three-level model on histograms: priors, exact likelihood, PyMC
hbm.scale.fit          the empirical Bayes fit and the full Bayes fit (nutpie)
hbm.scale.mixture      full Bayes user posteriors, once per distinct (x, n): mixtures over draws
hbm.scale.posteriors   block-wise posterior writers (Parquet)
hbm.scale.jobs         the whole jobs, timed and measured: run_eb, run_full_bayes

Every name in those modules' ``__all__`` is also available here (``hbm.scale.run_eb``);
submodules are imported on first use, so ``hbm.scale.model`` alone needs no Dask.
"""

from __future__ import annotations

import importlib

_MODULES = ("log", "cluster", "count", "histograms", "model", "fit", "mixture", "posteriors", "jobs")


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"hbm.scale.{name}")
    for module in _MODULES:
        mod = importlib.import_module(f"hbm.scale.{module}")
        if name in getattr(mod, "__all__", ()):
            return getattr(mod, name)
    raise AttributeError(f"module 'hbm.scale' has no attribute {name!r}")


def __dir__() -> list[str]:
    names = set(globals())
    for module in _MODULES:
        names |= set(importlib.import_module(f"hbm.scale.{module}").__all__)
    return sorted(names)
