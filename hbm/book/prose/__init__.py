"""Sentence helpers for the chapters' hidden cells.

:mod:`hbm.book.prose.common` holds the phrases every chapter needs (counts of a whole, numbers
of any scale, the one failed-fit warning). The chapters write their prose by hand in the
``.qmd``; no chapter has a prose module of its own.
"""
