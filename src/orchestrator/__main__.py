"""``python -m orchestrator`` runs the command line."""

from orchestrator.entrypoints.cli import main

main()
