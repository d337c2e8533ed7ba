"""Statistics for *Borrowing Strength*, a book of hierarchical Bayesian models in Python.

``hbm`` is a small statistics library (NumPy, SciPy, pandas; ArviZ where a function takes a
fit). It never imports the book's helpers, plotting or samplers:

hbm.pooling       no-pooling and complete-pooling baselines with 95% intervals
hbm.eb            empirical Bayes: normal-normal, beta-binomial, Dirichlet-multinomial
hbm.metrics       MSE, interval coverage and width, shrinkage, stratified by sample size
hbm.schools       Rubin's eight schools: the exact marginal posterior of tau by quadrature
hbm.posterior     stacked draws, equal-tailed summaries, Bambi linear predictors, pairing by label
hbm.diagnostics   sampler diagnostics (divergences, R-hat, ESS, tree depth, E-BFMI) with a verdict
hbm.remedy        one policy that re-fits a fit failing its diagnostics, within a budget
hbm.intervals     credible and confidence intervals, and their coverage

hbm.scale (``pip install hbm[scale]``) runs empirical Bayes and full Bayes for millions of
users on a Dask cluster: the count pass, the histograms, the fits and the posterior writers.

The book's own helpers (data schemas and loaders, simulators, formatting, theme, each
chapter's model) live in :mod:`hbm.book` and need ``pip install hbm[book]``.
"""

__version__ = "0.1.0"
