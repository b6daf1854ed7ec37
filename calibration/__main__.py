"""``python -m calibration``: the same as ``handmesh-calibrate`` (:mod:`calibration.cli`)."""

import sys

from calibration.cli import main

sys.exit(main())
