"""Helpers for *Borrowing Strength*, a book of hierarchical Bayesian models in Python.

Modules
-------
hbm.book       shared chapter setup (seed, Altair theme, display options, number formatting)
hbm.data       schema-checked loaders for every CSV under ``data/`` (raise ``DataError``)
hbm.simulate   data with known truth; ``python -m hbm.simulate`` writes ``data/``
hbm.pooling    no-pooling and complete-pooling baselines with 95% intervals
hbm.eb         empirical Bayes: normal-normal, beta-binomial, Dirichlet-multinomial
hbm.metrics    MSE, interval coverage and width, shrinkage, stratified by sample size

"""

__version__ = "0.1.0"
