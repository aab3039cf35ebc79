"""The smoke test's machinery: the child script, its protocol, the runner and the failure classifier.

The check itself (``smoke.load-infer``) lives in :mod:`autoglm_doctor.checks.smoke`. Here:

- ``_script.py`` runs in the *target* interpreter, imports torch and transformers, loads and
  generates, and writes JSON lines (phase events, then a result or an error);
- :mod:`.protocol` holds the request and the parsed outcome;
- :mod:`.runner` starts the script in its own session with a deadline and kills the whole
  process group when it runs over;
- :mod:`.classify` turns an outcome into findings, each with its fix.

Nothing here imports torch or transformers: the doctor's process never does.
"""
