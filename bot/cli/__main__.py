"""`python -m bot.cli` runs the `winback` command line."""

from bot.cli import main

main()
