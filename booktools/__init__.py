"""Build tools of the book *Borrowing Strength*: not part of ``hbm``, never imported by chapters.

Modules
-------
booktools.execute    run a chapter as Quarto's Jupyter engine does (document-order inline values)
booktools.checks     static checks: chapters, cross-references, citations, figure options
booktools.freshness  which chapters to re-execute after data or code changed (pre/post-render)
booktools.store      the store of executed chapters (jupyter-cache), keyed by full fingerprint
booktools.render     find and run the real Quarto; publish a render to ``_book/`` only on success
"""
