"""Models the book's chapters show in full, as plain code a reader can copy.

Each module here is written to be read on a chapter's page (Quarto includes the file into a
visible cell), so it carries a comment instead of docstrings; the same file is what the
chapter runs and what its tests, replication studies and benchmarks import: one copy. These
modules build PyMC models, so they need the ``book`` extra (``pip install ".[book]"``), and,
like the statistics library, they never import the book's helpers (``hbm.book``), plotting or
the build tools.
"""
