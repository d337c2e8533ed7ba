"""The book's own helpers: what the chapters of *Borrowing Strength* import besides the library.

They build on the statistics library (:mod:`hbm`) and need ``pip install hbm[book]`` (Bambi,
PyMC, Altair, Dask). The build tools (``booktools/``, in the book's repository) build on them;
nothing here imports the build tools.

hbm.book.common     chapter setup (seed, Altair theme, display options), number formatting,
                    the named results each chapter saves
hbm.book.data       schema-checked loaders for every CSV under ``data/`` (raise ``DataError``)
hbm.book.simulate   data with known truth; ``python -m hbm.book.simulate`` writes ``data/``
hbm.book.music      the regional music-preference models (chapters 3 and 5)
hbm.book.creators   the creator A/B-test shrinkage study (chapter 6)
hbm.book.scale      the music simulation's log settings for hbm.scale, the recorded benchmark (chapter 4)
"""
