"""`python -m mobilebert_cli`: the `mobilebert` command."""

import sys

from mobilebert_cli.interrupt import handled  # the standard library only: loaded in a blink

with handled("mobilebert"):  # Ctrl-C while main.py is imported, too
    from mobilebert_cli.main import main

    sys.exit(main())
