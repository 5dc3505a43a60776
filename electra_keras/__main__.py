"""`python -m electra_keras ...`: the same as the `electra-keras` command."""

import sys

from electra_keras.cli import main

sys.exit(main())
