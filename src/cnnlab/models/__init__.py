"""Every architecture family. Importing this package registers all models."""

from . import efficientnet  # noqa: F401, I001
from . import lenet  # noqa: F401
from . import mobilenet  # noqa: F401
