"""``python -m mmrag`` runs the CLI."""

from mmrag.cli import main

main()
