"""``check --fix``: a lock that resolves what the checks found.

- :mod:`.plan`: :func:`~.plan.make_plan`, a pure function of the Report, the Snapshot and the Pack:
  the constraints the doctor states;
- :mod:`.choice`: which torch build and transformers (driver-aware, from the knowledge base);
- :mod:`.local`: what no index can reproduce (the doctor itself, editable, local and VCS installs);
- :mod:`.resolve`: a real resolver (uv, or pip run for the target) picks exact versions with hashes;
- :mod:`.render`: the lock as a requirements or constraints file (or the plan's ranges when no
  resolver could choose); :mod:`.pylock`: the lock as a PEP 751 pylock.toml;
- :mod:`.writer`: atomic writing that never replaces a file without ``--force``;
- :mod:`.verify`: the file resolved as a user installs it (``--verify``: pip, or uv for pylock.toml);
- :mod:`.command`: what ``check --fix`` runs after the report.

Nothing here installs anything. This package imports nothing at start-up: the command line
imports :mod:`.formats` for its option type, the rest only when ``--fix`` is given.
"""
