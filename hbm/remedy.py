"""One remedy policy for fits that fail their diagnostics, so no chapter reads an unchecked fit.

:func:`fit_with_remedies` fits a model, judges the fit with :func:`hbm.diagnostics.check` (the
thresholds of :mod:`hbm.diagnostics`, after @vehtari2021), and when a check fails re-fits it with
one change, chosen by what failed, until the fit passes or a stated budget is spent. It never
hides a failure: every attempt is recorded with what was changed and why, and a fit that still
fails is returned flagged unreliable, with a sentence that says so.

The policy
----------
Applied to the latest attempt, one remedy per refit, the first rule that applies:

1. **Divergent transitions, or an E-BFMI below** :data:`hbm.diagnostics.MIN_BFMI` (the sampler
   met geometry it cannot explore, typically the funnel of a centred hierarchy): switch to the
   next parameterization in ``parameterizations`` that has not been tried (centred to
   non-centred). Reparameterizing removes the funnel; a smaller step size only walks into it
   more carefully [@betancourt2015; @papaspiliopoulos2007; Stan's "Runtime warnings and
   convergence problems"; PyMC's "Diagnosing biased inference with divergences"].
2. **Divergences left once every parameterization has been tried**: raise ``target_accept`` to
   the next of :data:`TARGET_ACCEPT_STEPS` (0.9, 0.95, 0.99) above it, up to
   ``max_target_accept``: smaller steps follow sharper curvature [Stan's guidance on
   ``adapt_delta``]. A persistent E-BFMI problem has no further remedy here.
3. **R-hat above** :data:`hbm.diagnostics.MAX_RHAT` **or a bulk or tail ESS below 100 per
   chain** (the chains disagree, or hold too few effective draws): take more draws, at least
   twice as many and, when the ESS is short, enough for the required ESS by linear
   extrapolation with a 20% margin, rounded up to a hundred [@vehtari2021: the ESS of a chain
   that mixes grows in proportion to its draws]; when R-hat failed, also twice the tuning
   steps (a longer warm-up lets every chain reach the typical set).

Divergences come first because they make R-hat and the ESS meaningless; a change of draws never
comes with a change of geometry, so the record says what helped. The budget: at most ``max_refits``
refits, draws at most ``max_draws``, tuning steps at most ``max_tune``, ``target_accept`` at most
``max_target_accept``. The policy stops when the fit passes, when the budget is spent, or when no
rule can change anything (a cap reached, or a failure it has no remedy for, such as the maximum
tree depth): the last fit is then returned with ``reliable`` False.

The module is the statistics library's: it imports no sampler. The caller passes a function
``fit(draws=, tune=, target_accept=, parameterization=)`` that builds and samples the model
(with PyMC, Bambi or nutpie, and its own seed) and returns the fit as an ``xarray.DataTree``.

References
----------
Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", *Bayesian Analysis* 16(2).
Betancourt and Girolami (2015), "Hamiltonian Monte Carlo for hierarchical models".
Papaspiliopoulos, Roberts and Sköld (2007), "A general framework for the parametrization of
hierarchical models", *Statistical Science* 22(1).
Stan Development Team, "Runtime warnings and convergence problems" (mc-stan.org/misc/warnings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from hbm._text import Text
from hbm.diagnostics import MAX_RHAT, MIN_BFMI, Diagnostics, check

__all__ = ["TARGET_ACCEPT_STEPS", "Settings", "Attempt", "Remedied", "fit_with_remedies"]

#: The values ``target_accept`` is raised through on divergences, in order.
TARGET_ACCEPT_STEPS: tuple[float, ...] = (0.9, 0.95, 0.99)
#: Margin on the draws that the observed ESS extrapolates to.
_ESS_MARGIN = 1.2

_COUNT_WORDS = {1: "once", 2: "twice"}


@dataclass(frozen=True)
class Settings:
    """What one attempt was sampled with: the keyword arguments given to the fit function."""

    draws: int
    tune: int
    target_accept: float
    parameterization: str


@dataclass(frozen=True)
class Attempt:
    """One fit of the model: its settings, its diagnostics, and why it differs from the one before.

    ``change`` is empty for the first attempt, else a clause such as "took 2,000 draws instead
    of 1,000 because the bulk ESS was 312 < 400".
    """

    settings: Settings
    diagnostics: Diagnostics
    change: str = ""


@dataclass(frozen=True, eq=False)
class Remedied:
    """The outcome of :func:`fit_with_remedies`.

    Attributes
    ----------
    fit : xarray.DataTree
        The last fit (the one that passed, or the last one tried).
    diagnostics : Diagnostics
        Its diagnostics.
    attempts : tuple of Attempt
        Every fit in order, the first with the caller's settings.
    stopped : str
        Why the policy stopped: "passed", "budget" (``max_refits`` refits spent) or
        "no remedy" (a cap reached, or a failure the policy has no change for).
    """

    fit: object
    diagnostics: Diagnostics
    attempts: tuple[Attempt, ...]
    stopped: str

    @property
    def reliable(self) -> bool:
        """True when the returned fit passes every check of :func:`hbm.diagnostics.check`."""
        return self.diagnostics.ok

    @property
    def settings(self) -> Settings:
        """The settings of the returned fit."""
        return self.attempts[-1].settings

    @property
    def refits(self) -> int:
        """How many times the model was re-fitted."""
        return len(self.attempts) - 1

    @property
    def description(self) -> Text:
        """One plain-English sentence for the page: what was changed and why, and the verdict."""
        if self.refits == 0:
            head = "The first fit"
        else:
            times = _COUNT_WORDS.get(self.refits, f"{self.refits} times")
            changes = "; then ".join(a.change for a in self.attempts[1:])
            head = f"The model was re-fitted {times}: it {changes}; the last fit"
        if self.reliable:
            tail = "passes every diagnostic check." if self.refits else "passed every diagnostic check."
            return Text(f"{head} {tail}")
        budget = (f"after {self.refits} refit{'s' if self.refits != 1 else ''}, the most allowed"
                  if self.refits else "with no refit allowed")
        why = {"budget": budget, "no remedy": "with no change left to try"}.get(self.stopped, "")
        return Text(f"{head} still fails its diagnostics {why}, with {'; '.join(self.diagnostics.failures)}. "
                    "It is not reliable.")

    def table(self) -> pd.DataFrame:
        """One row per attempt: settings, the diagnostics of :meth:`Diagnostics.row`, the change.

        The settings' columns are named in words, for a page: "parameterization", "draws",
        "warm-up steps" (``tune``), "target acceptance rate" (``target_accept``), "change".
        """
        rows = []
        for k, a in enumerate(self.attempts, start=1):
            row = a.diagnostics.row(f"attempt {k}")
            row.update({
                "parameterization": a.settings.parameterization,
                "draws": a.settings.draws,
                "warm-up steps": a.settings.tune,
                "target acceptance rate": a.settings.target_accept,
                "change": a.change,
            })
            rows.append(row)
        return pd.DataFrame(rows).set_index("fit")


#: How a parameterization's name reads in a sentence.
_PARAMETERIZATION_WORDS = {"centered": "centred", "noncentered": "non-centred", "non-centered": "non-centred",
                           "marginal": "integrated-out"}


def _words(parameterization: str) -> str:
    """A parameterization's name as prose: 'noncentered' reads 'non-centred'."""
    return _PARAMETERIZATION_WORDS.get(parameterization, parameterization.replace("_", " "))


def _count(n: int) -> str:
    return f"{n:,}"


def _ess_reason(d: Diagnostics) -> str:
    """'the bulk ESS was 312, below 400' (the smaller of bulk and tail)."""
    kind, ess = ("bulk", d.min_ess_bulk) if d.min_ess_bulk <= d.min_ess_tail else ("tail", d.min_ess_tail)
    return f"the {kind} ESS was {ess:,.0f}, below {d.min_ess:,.0f}"


def _geometry_reason(d: Diagnostics, parameterization: str) -> str:
    if d.divergences > 0:
        s = "s" if d.divergences != 1 else ""
        return f"the {_words(parameterization)} fit had {_count(d.divergences)} divergent transition{s}"
    return f"the {_words(parameterization)} fit had an E-BFMI of {d.min_bfmi:.2f}, below {MIN_BFMI}"


def _next_step(s: Settings, d: Diagnostics, tried: set[str], parameterizations: Sequence[str],
               max_draws: int, max_tune: int, max_target_accept: float) -> tuple[Settings, str] | None:
    """The settings of the next attempt and the clause that explains them, or None (no remedy)."""
    geometry = d.divergences > 0 or d.min_bfmi < MIN_BFMI  # NaN E-BFMI (no energy stat): False
    if geometry:
        untried = [p for p in parameterizations if p not in tried]
        if untried:
            why = _geometry_reason(d, s.parameterization)
            return (replace(s, parameterization=untried[0]),
                    f"switched from the {_words(s.parameterization)} to the {_words(untried[0])} parameterization "
                    f"because {why}")
        if d.divergences > 0:
            higher = [t for t in TARGET_ACCEPT_STEPS if s.target_accept < t <= max_target_accept]
            if not higher:
                return None
            return (replace(s, target_accept=higher[0]),
                    f"raised the target acceptance rate from {s.target_accept:g} to {higher[0]:g} because "
                    f"{_geometry_reason(d, s.parameterization)}")
        return None
    rhat_bad = not d.max_rhat <= MAX_RHAT
    ess = min(d.min_ess_bulk, d.min_ess_tail)
    ess_bad = not ess >= d.min_ess
    if rhat_bad or ess_bad:
        wanted = s.draws * d.min_ess / ess * _ESS_MARGIN if ess_bad and ess > 0 else 2 * s.draws
        draws = min(max(2 * s.draws, 100 * math.ceil(wanted / 100)), max_draws)
        tune = min(2 * s.tune, max_tune) if rhat_bad else s.tune
        if (draws, tune) == (s.draws, s.tune):
            return None
        why = ([f"R-hat was {d.max_rhat:.3f}, above {MAX_RHAT}"] if rhat_bad else []) + (
            [_ess_reason(d)] if ess_bad else [])
        took = (f"took {_count(draws)} draws instead of {_count(s.draws)}" if tune == s.tune else
                f"took {_count(draws)} draws and {_count(tune)} tuning steps instead of "
                f"{_count(s.draws)} and {_count(s.tune)}")
        return replace(s, draws=draws, tune=tune), f"{took} because {' and '.join(why)}"
    return None  # e.g. the maximum tree depth: no knob of this policy changes it


def fit_with_remedies(
    fit: Callable[..., object],
    *,
    draws: int = 1000,
    tune: int = 1000,
    target_accept: float = 0.8,
    parameterizations: Sequence[str] = ("centered", "noncentered"),
    max_refits: int = 3,
    max_draws: int = 4000,
    max_tune: int = 4000,
    max_target_accept: float = 0.99,
    var_names: Sequence[str] | None = None,
) -> Remedied:
    """Fit a model, and re-fit it by the module's remedy policy until its diagnostics pass.

    Parameters
    ----------
    fit : callable
        ``fit(draws=int, tune=int, target_accept=float, parameterization=str)`` returning the
        fit as an ``xarray.DataTree`` with ``posterior`` and ``sample_stats`` groups (as
        ``pymc.sample``, ``bambi.Model.fit`` or ``nutpie.sample`` return). It is called once per
        attempt; give it its own fixed seed for a reproducible record.
    draws, tune, target_accept : int, int, float
        The settings of the first attempt (draws and tuning steps per chain).
    parameterizations : sequence of str
        The parameterizations the fit function knows, in the order to try them; the first is
        used first. One name disables switching (a model with one parameterization).
    max_refits : int
        At most this many refits after the first fit.
    max_draws, max_tune : int
        Caps on draws and tuning steps per chain.
    max_target_accept : float
        Cap on ``target_accept``.
    var_names : sequence of str, optional
        Parameters whose R-hat and ESS are checked (default: every posterior variable), passed
        to :func:`hbm.diagnostics.check`.

    Returns
    -------
    Remedied
        The last fit, its :class:`~hbm.diagnostics.Diagnostics`, every attempt with what was
        changed and why, ``reliable`` (whether the last fit passes), and ``description``, one
        sentence for the page.

    Raises
    ------
    ValueError
        Budget values that make no sense (negative refits, draws or tuning steps below 1,
        ``target_accept`` outside (0, 1), first settings above their caps, no parameterization).

    Examples
    --------
    >>> result = fit_with_remedies(lambda **kw: sample_eight_schools(**kw))  # doctest: +SKIP
    >>> result.description  # doctest: +SKIP
    The model was re-fitted once: it switched from the centered to the noncentered
    parameterization because the centered fit had 23 divergent transitions; the last fit
    passes every diagnostic check.
    """
    parameterizations = tuple(parameterizations)
    if not parameterizations:
        raise ValueError("parameterizations must name at least one parameterization")
    if max_refits < 0:
        raise ValueError(f"max_refits must be >= 0, got {max_refits}")
    if not (1 <= draws <= max_draws and 0 <= tune <= max_tune):
        raise ValueError(f"need 1 <= draws <= max_draws and 0 <= tune <= max_tune "
                         f"(draws={draws}, max_draws={max_draws}, tune={tune}, max_tune={max_tune})")
    if not 0 < target_accept <= max_target_accept < 1:
        raise ValueError(f"need 0 < target_accept <= max_target_accept < 1 "
                         f"(got {target_accept} and {max_target_accept})")
    var_names = None if var_names is None else list(var_names)
    settings = Settings(int(draws), int(tune), float(target_accept), parameterizations[0])
    change = ""
    attempts: list[Attempt] = []
    while True:
        idata = fit(draws=settings.draws, tune=settings.tune, target_accept=settings.target_accept,
                    parameterization=settings.parameterization)
        diagnostics = check(idata, var_names=var_names)
        attempts.append(Attempt(settings, diagnostics, change))
        if diagnostics.ok:
            stopped = "passed"
            break
        if len(attempts) > max_refits:
            stopped = "budget"
            break
        step = _next_step(settings, diagnostics, {a.settings.parameterization for a in attempts},
                          parameterizations, max_draws, max_tune, max_target_accept)
        if step is None:
            stopped = "no remedy"
            break
        settings, change = step
    return Remedied(fit=idata, diagnostics=diagnostics, attempts=tuple(attempts), stopped=stopped)
