"""`python -m nas_recon ...`: the same as the `nas-recon` command."""

import sys

from nas_recon.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
