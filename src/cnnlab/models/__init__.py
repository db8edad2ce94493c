"""Every architecture family. Importing this package registers all models."""
# ruff: noqa: F401, I001  (one import per line, so that families merge without conflicts)

from . import lenet
from . import alexnet
from . import vgg
from . import allconv
from . import googlenet
from . import inception_v3
from . import resnet
from . import densenet
from . import xception
from . import mobilenet
from . import shufflenet
from . import efficientnet
