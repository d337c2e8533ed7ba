"""Sentence helpers for the chapters' hidden cells.

:mod:`hbm.book.prose.common` holds the phrases every chapter needs (counts of a whole, numbers
of any scale, the one failed-fit warning). The chapters write their prose by hand in the
``.qmd``; two chapters (music, empirical Bayes) still call a module of their own here for some
verdicts, until their prose moves into the page too.
"""
