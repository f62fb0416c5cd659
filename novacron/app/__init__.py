"""The application layer: everything that touches files, terminals or a runtime.

The CLI (and composition root, ``cli``), run directories (``rundir``), the Parquet event store
(``eventstore``), the HTML/Markdown report (``report``), notebook analysis (``analysis``), the
plots (``plots``) and the pytest plugin (``pytest_plugin``). The pure core (``novacron.raft``,
``scheduler``, ``cache``, ``migration``, ``cluster``, events, targets, seeding) never imports
from here.
"""
