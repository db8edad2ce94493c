"""Every architecture family. Importing this package registers all models."""

from . import (
    googlenet,  # noqa: F401
    inception_v3,  # noqa: F401
    lenet,  # noqa: F401
    xception,  # noqa: F401
)
