"""``python -m autoglm_doctor``."""

import sys

from autoglm_doctor.cli import main

sys.exit(main())
