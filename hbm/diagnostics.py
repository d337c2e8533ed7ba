"""Sampler diagnostics in one table and one sentence, so no chapter shows a fit unchecked.

The checks are the ones recommended by @vehtari2021: rank-normalized split R-hat below 1.01,
bulk and tail effective sample sizes of at least 100 per chain (400 for four chains), and no
divergent transitions after warm-up (Betancourt's diagnostic for regions the sampler could not
explore). Where the fit's ``sample_stats`` have them, two more of Hamiltonian Monte Carlo's own
checks, as ``arviz.diagnose`` and CmdStan's ``diagnose`` run them (Betancourt 2016, "Diagnosing
suboptimal cotangent disintegrations in Hamiltonian Monte Carlo", arXiv:1604.00695):

- E-BFMI (``arviz.bfmi`` of the ``energy``) of at least :data:`MIN_BFMI` = 0.3 in every chain;
  below it the momentum resampling explores the energy distribution poorly (heavy tails,
  funnels).
- Tree-depth saturation: the share of transitions that hit the sampler's maximum tree depth
  (PyMC's ``reached_max_treedepth``, nutpie's ``maxdepth_reached``) at most
  :data:`MAX_TREEDEPTH_SHARE` = 1%. A saturated trajectory is cut short: the draws stay valid
  but exploration slows (which the ESS checks also see); ``arviz.diagnose`` reports any hit, we
  fail a fit only when saturation is systematic.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from hbm._text import Text

MAX_RHAT = 1.01
MIN_ESS_PER_CHAIN = 100
#: Smallest acceptable E-BFMI of a chain (the rule of thumb of ``arviz.bfmi`` and CmdStan).
MIN_BFMI = 0.3
#: Largest acceptable share of transitions that hit the maximum tree depth.
MAX_TREEDEPTH_SHARE = 0.01
#: Names of the tree-depth saturation flag in ``sample_stats`` (PyMC, nutpie).
TREEDEPTH_STATS = ("reached_max_treedepth", "maxdepth_reached")


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
    min_bfmi: float = float("nan")  # smallest E-BFMI over chains; NaN without an energy stat
    treedepth_hits: int = 0  # transitions that hit the maximum tree depth (0 without the stat)

    @property
    def min_ess(self) -> float:
        """Required bulk and tail ESS: 100 per chain."""
        return MIN_ESS_PER_CHAIN * self.chains

    @property
    def failures(self) -> list[str]:
        """The checks that failed, in words and without parentheses, so they read inside a sentence
        (empty when all pass): ``"R-hat up to 1.022, above 1.01"``."""
        out = []
        if self.divergences > 0:
            out.append(f"{self.divergences:,} divergent transition{'' if self.divergences == 1 else 's'}")
        if not self.max_rhat <= MAX_RHAT:
            out.append(f"R-hat up to {self.max_rhat:.3f}, above {MAX_RHAT}")
        if not self.min_ess_bulk >= self.min_ess:
            out.append(f"bulk ESS down to {self.min_ess_bulk:.0f}, below {self.min_ess:.0f}")
        if not self.min_ess_tail >= self.min_ess:
            out.append(f"tail ESS down to {self.min_ess_tail:.0f}, below {self.min_ess:.0f}")
        if self.min_bfmi < MIN_BFMI:  # False for NaN: no energy statistic, no check
            out.append(f"E-BFMI down to {self.min_bfmi:.2f}, below {MIN_BFMI}")
        if self.treedepth_hits > MAX_TREEDEPTH_SHARE * self.chains * self.draws:
            out.append(f"{self.treedepth_hits} transitions hit the maximum tree depth, "
                       f"more than {MAX_TREEDEPTH_SHARE:.0%} of them")
        return out

    @property
    def ok(self) -> bool:
        """True when there are no divergences, R-hat <= 1.01, bulk/tail ESS >= 100 per chain,
        E-BFMI >= 0.3 in every chain and at most 1% of transitions hit the maximum tree depth."""
        return not self.failures

    @property
    def message(self) -> Text:
        """One sentence for the prose: what was run and whether every check passed.

        A :class:`hbm._text.Text`, so an inline expression shows it without quotes.
        """
        head = (
            f"{self.chains} chains of {self.draws} draws with {self.sampler}: "
            f"{self.divergences:,} divergence{'' if self.divergences == 1 else 's'}, max R-hat {self.max_rhat:.3f}, "
            f"min bulk ESS {self.min_ess_bulk:.0f}, min tail ESS {self.min_ess_tail:.0f}"
        )
        if self.ok:
            return Text(head + "; all checks pass.")
        return Text(head + ". Its diagnostics failed: " + "; ".join(self.failures)
                    + ". Do not trust this fit as it stands.")

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
    bfmi = np.asarray(az.bfmi(idata)["energy"], dtype=float) if "energy" in stats else np.array([np.nan])
    saturated = [name for name in TREEDEPTH_STATS if name in stats]
    treedepth_hits = int(np.asarray(stats[saturated[0]]).sum()) if saturated else 0
    return Diagnostics(
        sampler=sampler_name(idata),
        chains=chains,
        draws=draws,
        divergences=divergences,
        max_rhat=float(table["r_hat"].max()),
        min_ess_bulk=float(table["ess_bulk"].min()),
        min_ess_tail=float(table["ess_tail"].min()),
        table=table,
        min_bfmi=float(np.min(bfmi)),
        treedepth_hits=treedepth_hits,
    )


def compare(fits: dict) -> pd.DataFrame:
    """A table with one row per named fit: sampler, divergences, max R-hat, min ESS, verdict."""
    return pd.DataFrame([check(idata).row(name) for name, idata in fits.items()]).set_index("fit")
