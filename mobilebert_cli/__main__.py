import sys

from mobilebert_cli.main import main

sys.exit(main())
