"""`recsage` command line: one module per command group, all thin wrappers over `recsage.pipelines`."""

from recsage.cli.main import app
from recsage.cli import features as _features  # noqa: F401  (registers `features` and `rank`)

__all__ = ["app"]
