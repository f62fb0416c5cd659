"""The application layer: everything that touches files, terminals or a runtime.

The CLI (``cli``), run directories (``rundir``), the Parquet event store (``eventstore``), the
HTML/Markdown report (``report``), notebook analysis (``analysis``), the plots (``plots``), cache
trace files (``tracefiles``), the golden run hashes (``golden``) and the pytest plugin
(``pytest_plugin``). ``cli`` and ``pytest_plugin`` are the composition roots: the only modules of
``novacron`` that import a runtime (``sim``, ``backends``), lazily. The pure core (``novacron.raft``,
``scheduler``, ``cache``, ``migration``, ``cluster``, events, targets, seeding) never imports
from here.
"""
