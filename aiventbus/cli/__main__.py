"""python -m aiventbus.cli: the same as the aibus command."""

from aiventbus.cli.app import main

main()
