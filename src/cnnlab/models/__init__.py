"""Every architecture family. Importing this package registers all models."""

from . import lenet, shufflenet  # noqa: F401
