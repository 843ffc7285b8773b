"""`python -m recsage.cli …` (torchrun uses it)."""

from recsage.cli import app

app()
