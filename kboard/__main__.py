"""Allow ``python -m kboard``."""

from kboard.cli import main

if __name__ == "__main__":
    main()
