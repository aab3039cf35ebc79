"""``python -m autoglm_doctor``."""

import sys

from autoglm_doctor.entry import main

sys.exit(main())
