"""`python -m r2rec` runs the CLI."""

from r2rec.cli import main

main()
