"""Every architecture family. Importing this package registers all models."""

from . import lenet  # noqa: F401
from . import resnet  # noqa: F401
