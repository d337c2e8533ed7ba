"""Sampler diagnostics in one table and one sentence, so no chapter shows a fit unchecked.

The checks are the ones recommended by @vehtari2021: rank-normalized split R-hat below 1.01,
bulk and tail effective sample sizes of at least 100 per chain (400 for four chains), and no
divergent transitions after warm-up (Betancourt's diagnostic for regions the sampler could not
explore).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from hbm._text import Text

MAX_RHAT = 1.01
MIN_ESS_PER_CHAIN = 100


@dataclass(frozen=True)
class Diagnostics:
    """Summary of a fit's sampler diagnostics; ``ok`` is True when every check passes."""

    sampler: str
    chains: int
    draws: int
    divergences: int
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    table: pd.DataFrame  # one row per scalar parameter: r_hat, ess_bulk, ess_tail, mcse_mean

    @property
    def min_ess(self) -> float:
        """Required bulk and tail ESS: 100 per chain."""
        return MIN_ESS_PER_CHAIN * self.chains

    @property
    def failures(self) -> list[str]:
        """The checks that failed, in words (empty when all pass)."""
        out = []
        if self.divergences > 0:
            out.append(f"{self.divergences} divergent transitions")
        if not self.max_rhat <= MAX_RHAT:
            out.append(f"R-hat up to {self.max_rhat:.3f} (> {MAX_RHAT})")
        if not self.min_ess_bulk >= self.min_ess:
            out.append(f"bulk ESS down to {self.min_ess_bulk:.0f} (< {self.min_ess:.0f})")
        if not self.min_ess_tail >= self.min_ess:
            out.append(f"tail ESS down to {self.min_ess_tail:.0f} (< {self.min_ess:.0f})")
        return out

    @property
    def ok(self) -> bool:
        """True when there are no divergences, R-hat <= 1.01 and bulk/tail ESS >= 100 per chain."""
        return not self.failures

    @property
    def message(self) -> Text:
        """One sentence for the prose: what was run and whether every check passed.

        A :class:`hbm._text.Text`, so an inline expression shows it without quotes.
        """
        head = (
            f"{self.chains} chains of {self.draws} draws with {self.sampler}: "
            f"{self.divergences} divergences, max R-hat {self.max_rhat:.3f}, "
            f"min bulk ESS {self.min_ess_bulk:.0f}, min tail ESS {self.min_ess_tail:.0f}"
        )
        if self.ok:
            return Text(head + "; all checks pass.")
        return Text(head + "; diagnostics failed (" + "; ".join(self.failures)
                    + "): do not trust this fit as it stands.")

    def row(self, name: str) -> dict:
        """A one-line summary for a comparison table of several fits."""
        return {
            "fit": name, "sampler": self.sampler, "chains x draws": f"{self.chains} x {self.draws}",
            "divergences": self.divergences,
            "max R-hat": round(self.max_rhat, 3), "min bulk ESS": round(self.min_ess_bulk),
            "min tail ESS": round(self.min_ess_tail), "checks": "pass" if self.ok else "FAIL",
        }


def sampler_name(idata) -> str:
    """Which sampler produced the fit, from the posterior's attributes (nutpie or PyMC's NUTS).

    ``nutpie.sample`` called directly records its name on ``sample_stats`` only, so that group
    is consulted when the posterior does not say.
    """
    library = idata["posterior"].attrs.get("inference_library")
    if library is None and "sample_stats" in idata.children:
        library = idata["sample_stats"].attrs.get("inference_library")
    library = library or "unknown"
    return "nutpie" if library == "nutpie" else ("PyMC's NUTS" if library == "pymc" else library)


def check(idata, var_names=None) -> Diagnostics:
    """Diagnose a fit.

    Parameters
    ----------
    idata : xarray.DataTree
        The fit (from ``bambi.Model.fit`` or ``pymc.sample``).
    var_names : list of str, optional
        Parameters to check (default: every posterior variable).

    Returns
    -------
    Diagnostics
    """
    table = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    table = pd.DataFrame(table)[["r_hat", "ess_bulk", "ess_tail", "mcse_mean"]].astype(float)
    posterior = idata["posterior"]
    chains, draws = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
    stats = idata["sample_stats"]
    divergences = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    return Diagnostics(
        sampler=sampler_name(idata),
        chains=chains,
        draws=draws,
        divergences=divergences,
        max_rhat=float(table["r_hat"].max()),
        min_ess_bulk=float(table["ess_bulk"].min()),
        min_ess_tail=float(table["ess_tail"].min()),
        table=table,
    )


def compare(fits: dict) -> pd.DataFrame:
    """A table with one row per named fit: sampler, divergences, max R-hat, min ESS, verdict."""
    return pd.DataFrame([check(idata).row(name) for name, idata in fits.items()]).set_index("fit")
