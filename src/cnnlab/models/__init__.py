"""Every architecture family, one module each; importing a family registers its models.

This package imports no family by itself (so that ``create_model("lenet5")`` needs only
``lenet.py``): :mod:`cnnlab.catalog` imports them when a lookup needs them, from the list
below. A new family is one more line here (and ``python -m cnnlab.catalog --write``).
"""

FAMILIES = (
    "lenet",
    "alexnet",
    "vgg",
    "allconv",
    "googlenet",
    "inception_v3",
    "resnet",
    "densenet",
    "xception",
    "mobilenet",
    "shufflenet",
    "efficientnet",
)
