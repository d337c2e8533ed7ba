"""The test suite (a package, so that `tests.variants` is this one and never another distribution's `tests`)."""
