"""cljax's tests: tests/<package>/ mirrors cljax/<package>/ (see conftest.py)."""
