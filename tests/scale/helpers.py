"""Constants and small helpers the hbm.scale tests share."""

from pathlib import Path

import numpy as np
import pandas as pd

from hbm.book.data import GENRES

ROOT = Path(__file__).resolve().parents[2]
K = len(GENRES)
#: Users and users per simulation chunk of the shared log (tests/scale/conftest.py).
N_USERS, CHUNK = 24_000, 8_000
#: Seed of the shared log and of the full Bayes sampler.
SEED = 11


def frame_of(uid, reg, x):
    """Per-user counts as a frame: user_id, region code, one column per genre."""
    frame = pd.DataFrame({"user_id": uid.astype(np.int64), "region": reg})
    for k, g in enumerate(GENRES):
        frame[g] = x[:, k]
    return frame
