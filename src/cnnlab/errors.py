"""Errors that name the problem and the fix.

Every mistake a user can make (an unknown model, an input that is too small, a file that
is not what it claims to be) raises a subclass of :class:`CnnlabError`. The command line
prints such errors as one line and exits non-zero; library users can catch them by class.
Each also derives from the built-in exception a Python programmer would expect
(``KeyError`` for an unknown name, ``ValueError`` for a bad value), so existing
``except ValueError`` code keeps working.
"""

from __future__ import annotations

from contextlib import contextmanager


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


class UsageError(CnnlabError, ValueError):
    """A value the user gave that cnnlab cannot use (an option out of range, an unknown choice,
    a builder argument of the right type but a wrong value), named with the fix."""


class NotAModelError(CnnlabError, TypeError):
    """Something other than a ``torch.nn.Module`` where a model is needed (``summary(None,
    ...)``, ``fuse("resnet18")``)."""

    @classmethod
    def check(cls, model, what: str) -> None:
        """Raise unless ``model`` is a ``torch.nn.Module`` (``what``: the function's name)."""
        from torch import nn

        if not isinstance(model, nn.Module):
            raise cls(f"{what} takes a model (a torch.nn.Module, e.g. "
                      f"cnnlab.create_model('resnet18')), got {type(model).__name__}")


class OptionError(UsageError):
    """A command-line option (or the library argument behind it) whose value cannot be used:
    a count below 1, two options that exclude each other, a file of the wrong kind."""


class UnknownNameError(CnnlabError, KeyError):
    """A name that is not among the ones a lookup knows (a layer of the NumPy network, a
    kernel), other than a model name (:class:`UnknownModelError`)."""


class FileProblemError(CnnlabError, OSError):
    """A file or folder of the user's that cannot be used as asked: unreadable, a folder where
    a file is needed or the reverse, a loop of symbolic links, no space left. The message names
    the path and what to do (see :func:`file_problem`)."""


class MissingFileError(FileProblemError, FileNotFoundError):
    """A file or folder the user named that does not exist."""


class OutputExistsError(FileProblemError, FileExistsError):
    """An output the user named exists already and would be replaced; nothing a user made is
    overwritten without ``--overwrite``."""


class NotAFolderError(FileProblemError, NotADirectoryError):
    """A file given where a folder is needed."""


_OS_ADVICE = {
    "ELOOP": "a loop of symbolic links (a link that leads back to itself); fix or remove it",
    "EACCES": "permission denied; check its permissions (ls -l) or choose another path",
    "EPERM": "operation not permitted; check its permissions or choose another path",
    "ENOENT": "no such file or folder",
    "EISDIR": "is a folder; give a file",
    "ENOTDIR": "a part of this path is a file, not a folder",
    "ENOSPC": "no space left on the device; free some space or choose another place",
    "EROFS": "the file system is read-only; choose another place",
    "ENAMETOOLONG": "the name is too long",
    "EEXIST": "exists already, and not as the folder needed here; choose another place",
}


def file_problem(err: OSError, path=None) -> FileProblemError:
    """``err`` (an OSError met while opening, reading or writing one of the user's files) as a
    :class:`FileProblemError` whose message is one line naming the file and what to do, instead
    of "[Errno 40] Too many levels of symbolic links: 'x'". ``path`` is the name the user gave,
    when the error names another (a temporary file). A cnnlab error is returned unchanged.
    ``raise file_problem(err) from err`` keeps the cause for ``--debug``."""
    import errno

    if isinstance(err, CnnlabError):
        return err
    name = errno.errorcode.get(err.errno, "") if err.errno is not None else ""
    what = _OS_ADVICE.get(name) or (err.strerror or "").lower() or str(err)
    files = [str(f) for f in (err.filename, err.filename2) if f is not None]
    if path is not None:
        files = [str(path)]
    line = f"{' -> '.join(files)}: {what}" if files else what
    cls = (MissingFileError if isinstance(err, FileNotFoundError)
           else OutputExistsError if isinstance(err, FileExistsError)
           else NotAFolderError if isinstance(err, NotADirectoryError) else FileProblemError)
    out = cls(line)
    out.errno, out.strerror = err.errno, err.strerror
    out.filename = str(path) if path is not None else err.filename
    return out


@contextmanager
def user_files(path=None):
    """Turn an OSError raised inside the block (or the decorated function: ``@user_files()``)
    into a :class:`FileProblemError` (see :func:`file_problem`): for code that opens, reads or
    writes files the user named, where such an error is the user's to fix, not a bug."""
    try:
        yield
    except CnnlabError:
        raise
    except OSError as err:
        raise file_problem(err, path) from err
