"""Every architecture family. Importing this package registers all models."""

from . import alexnet  # noqa: F401
from . import allconv  # noqa: F401
from . import lenet  # noqa: F401
from . import vgg  # noqa: F401
