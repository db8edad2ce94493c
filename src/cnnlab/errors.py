"""Errors that name the problem and the fix.

Every mistake a user can make (an unknown model, an input that is too small, a file that
is not what it claims to be) raises a subclass of :class:`CnnlabError`. The command line
prints such errors as one line and exits non-zero; library users can catch them by class.
Each also derives from the built-in exception a Python programmer would expect
(``KeyError`` for an unknown name, ``ValueError`` for a bad value), so existing
``except ValueError`` code keeps working.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class of every error cnnlab raises for bad input."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownModelError(CnnlabError, KeyError):
    """A model name that is not in the registry."""


class InputShapeError(CnnlabError, ValueError):
    """An input tensor the model cannot take (too small, wrong channel count, wrong rank)."""


class DataError(CnnlabError, ValueError):
    """A data set that is missing, truncated, corrupt or in an unknown format."""


class CheckpointError(CnnlabError, ValueError):
    """A checkpoint that is missing, corrupt, foreign or does not fit the model."""


class ImageTooLargeError(DataError):
    """An image over the pixel limit that guards against decompression bombs
    (``CNNLAB_MAX_IMAGE_PIXELS``; see :mod:`cnnlab.data.images`)."""


class ModelArgumentError(CnnlabError, TypeError):
    """A builder argument the model does not take, or a value of the wrong type for it."""


class TrainingDivergedError(CnnlabError, FloatingPointError):
    """The loss became NaN or infinite (a learning rate too high, most often): the one class
    for the PyTorch trainer (``cnnlab.training.loop`` names it ``DivergedError``) and the NumPy
    engine."""


class ResourceError(CnnlabError, MemoryError):
    """Work too large for this machine (an input size, batch, model width or kernel size whose
    memory is more than what is available), refused before it is allocated; see
    :mod:`cnnlab.memory`. The command line treats it as the user's mistake (exit 2)."""


class ExploreError(CnnlabError, ValueError):
    """A ``cnnlab explore`` request that does not fit its target (``--weights`` given for a
    run folder, which brings its own weights)."""


class OptionError(CnnlabError, ValueError):
    """A command-line option (or the library argument behind it) whose value cannot be used:
    a count below 1, two options that exclude each other, a file of the wrong kind."""


class OutputExistsError(CnnlabError, FileExistsError):
    """An output file or folder that already holds the user's work, refused without
    ``--overwrite``: nothing a user made is replaced without being asked."""
