"""The runtime library: the memory-bounded cache and its manager, bounded collections,
singletons, the memory-pressure coordinator, the process monitor, diagnostics and the
background cleanup.

Imports the engine (:mod:`pytest_memguard.core`, :mod:`pytest_memguard.probe`) and
nothing else of the package; the services (:mod:`pytest_memguard.web`) build on it.
Its public names are exported by :mod:`pytest_memguard`.
"""
