"""The sentences, captions and verdicts of each chapter, built from its computed results.

One module per chapter (``hbm.book.prose.creators`` for ``chapters/creators.qmd``). Each
function takes the chapter's computed results (and ``truth=None`` where no simulation truth is
available) and returns the text the page shows, so every branch (no truth, a failed fit, a
verdict either way) is unit-tested without executing the chapter; the chapter's prose calls it
inline. Nothing here computes a statistic: that is the library's job (:mod:`hbm`).
"""
