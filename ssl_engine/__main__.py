"""``python -m ssl_engine {train,predict,bench}``."""

import sys

from ssl_engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
