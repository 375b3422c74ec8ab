"""The report model: test results, the JSON report and its schema, the crash-proof
records, the peak history, comparisons, the terminal/markdown tables and the HTML page.

Imports the engine (:mod:`pytest_memguard.core`, :mod:`pytest_memguard.probe`) and
nothing else of the package; the plugin and the command line build on it.
"""
