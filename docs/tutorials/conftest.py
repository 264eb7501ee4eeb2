"""pytest collects doctests from every module under docs/; the tutorials are notebooks, not modules.

Importing one would run it: tests/test_docs.py executes them, through the site build (hooks.py).
"""

collect_ignore_glob = ["*.py"]
