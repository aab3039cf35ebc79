"""``check --fix``: a pinned requirements file that resolves what the checks found.

- :mod:`.plan`: :func:`~.plan.make_plan`, a pure function of the Report, the Snapshot and the Pack;
- :mod:`.choice`: which torch build and transformers (driver-aware, from the knowledge base);
- :mod:`.render`: the plan as a requirements or constraints file;
- :mod:`.writer`: atomic writing that never replaces a file without ``--force``;
- :mod:`.verify`: pip's own resolver on the file (``--verify``);
- :mod:`.command`: what ``check --fix`` runs after the report.

Nothing here installs anything. This package imports nothing at start-up: the command line
imports :mod:`.formats` for its option type, the rest only when ``--fix`` is given.
"""
