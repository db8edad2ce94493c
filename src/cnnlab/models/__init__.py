"""Every architecture family, one module each; importing a family registers its models.

This package imports no family by itself (so that ``create_model("lenet5")`` needs only
``lenet.py``): :mod:`cnnlab.catalog` imports them when a lookup needs them. ``FAMILIES`` is
every module of this folder but ``base`` (found by name, nothing imported): a new family is
its own file (docs/adding_a_family.md), then ``python -c "import cnnlab.catalog as c;
c.write_index()"`` so that ``cnnlab list`` shows it without importing torch.
"""

import pkgutil

FAMILIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                        if m.name != "base" and not m.name.startswith("_")))
