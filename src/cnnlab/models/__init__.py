"""Every architecture family. Importing this package registers all models."""

from . import (
    densenet,  # noqa: F401
    lenet,  # noqa: F401
    resnet,  # noqa: F401
)
