"""`recsage` command line: one module per command group, all thin wrappers over `recsage.pipelines`."""

from recsage.cli.main import app
from recsage.cli import features as _features  # noqa: F401  (registers `features` and `rank`)
from recsage.cli import lcu as _lcu  # noqa: F401  (registers `lcu`)
from recsage.cli import onereason as _onereason  # noqa: F401  (registers `onereason`)

__all__ = ["app"]
