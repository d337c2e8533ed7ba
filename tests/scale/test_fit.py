"""hbm.scale.fit (empirical Bayes): the regional priors from histograms, their memory and their recovery of the truth.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np
import pytest

from hbm import eb
from hbm import scale
from hbm.book import simulate
from hbm.book.data import GENRES, counts_matrix
from hbm.scale import histograms, log as log_mod

from .helpers import ROOT, frame_of


_FIT_PEAKS = """
import json, numpy as np, pandas as pd
from hbm import scale
from hbm.book import simulate
from hbm.book.data import GENRES
from hbm.scale import log as log_mod
_, weights, alpha = log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
peaks = []
for n in (20_000, 400_000):
    uid, reg, x = scale.simulate_chunk(0, n, np.random.default_rng(7), alpha, weights, 1, 100)
    frame = pd.DataFrame({"user_id": uid.astype(np.int64), "region": reg, **{g: x[:, k] for k, g in enumerate(GENRES)}})
    stats = scale.region_suffstats(frame, simulate.REGIONS, GENRES)
    peaks.append(scale.traced_peak(scale.fit_priors, stats, GENRES)[1])
print(json.dumps(peaks))
"""


def test_fit_memory_independent_of_users():
    """The EB fit from statistics allocates about the same peak memory for 20,000 and 400,000 users.

    Measured in a fresh interpreter: tracemalloc counts every thread's allocations, and other
    tests run chapters in background threads of this one.
    """
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FIT_PEAKS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peaks = json.loads(done.stdout.strip().splitlines()[-1])
    assert peaks[1] < 2 * peaks[0] + 64 * 1024
    assert peaks[1] < 4 * 1024 * 1024  # far below the 400,000 x 5 count matrix (16 MB)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_eb_recovers_concentration_music_simulator(seed):
    """hbm.book.simulate.music with 1,000 users per region: each kappa_r within 15% and each p_r within 0.025 (about 5 SE)."""
    observed, truth = simulate.music(n_users=4000, seed=seed)
    x = counts_matrix(observed)
    for region in truth["regions"]:
        rows = (observed["region"] == region["region"]).to_numpy()
        fit = eb.fit_dirichlet_multinomial(x[rows])
        p = np.array([region["p"][g] for g in GENRES])
        assert abs(fit.concentration / region["kappa"] - 1) < 0.15
        assert np.max(np.abs(fit.mean - p)) < 0.025


def test_eb_recovers_concentration_from_streamed_stats():
    """Streamed statistics of 5 seeds x 40,000 users (about 21 plays each): kappa_r within 12%, mean ratio within 4%."""
    _, weights, alpha = log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
    ratios = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        parts = [scale.region_suffstats(frame_of(*scale.simulate_chunk(
            10_000 * j, 10_000, rng, alpha, weights, 1, 100)), simulate.REGIONS, GENRES) for j in range(4)]
        priors = scale.fit_priors(histograms._merge(parts), GENRES)
        ratio = priors.alpha.sum(axis=1) / alpha.sum(axis=1)
        assert np.all(np.abs(ratio - 1) < 0.12), ratio
        assert np.max(np.abs(priors.alpha / priors.alpha.sum(axis=1, keepdims=True)
                             - alpha / alpha.sum(axis=1, keepdims=True))) < 0.02
        ratios.append(ratio)
    assert abs(np.mean(ratios) - 1) < 0.04
