"""`python -m tuning_service`: the same as the `tuning-service` command."""

import sys

from tuning_service.cli import main

sys.exit(main())
