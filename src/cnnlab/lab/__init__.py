"""The course extras, apart from the library core: classical filters (:mod:`.filters`), the
slides' errata (:mod:`.errata`), the EfficientNet scaling search (:mod:`.scaling`), the lab
figures (:mod:`.plots_lab`) and the Glorot gain table (:mod:`.init_gains`).

Nothing is imported here: the model files take the gain table from :mod:`.init_gains` (no
torch, no NumPy) without loading the rest. The old paths (``cnnlab.filters``, ...) still
work for one release, with a DeprecationWarning.
"""
