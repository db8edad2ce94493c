"""Exit codes (issue 21): only cnnlab's own error classes are the user's mistakes (one line,
exit 2); any other exception is a bug (one line naming it and the --debug hint, exit 1)."""

from __future__ import annotations

import errno
import os

import pytest

import cnnlab
from cnnlab import errors
from cnnlab.cli import main
from cnnlab.commands import list as list_command


def _run(capsys, monkeypatch, exc, *extra):
    def boom(args):
        raise exc

    monkeypatch.setattr(list_command, "run", boom)  # add_parser reads it when main builds
    capsys.readouterr()
    code = main(["list", *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"),
                                 ValueError("a bare ValueError"),
                                 KeyError("k"), OSError("raw"),
                                 RuntimeError("not an allocation")])
def test_a_bug_exits_1_with_one_line_and_the_debug_hint(capsys, monkeypatch, exc):
    code, err = _run(capsys, monkeypatch, exc)
    assert code == 1
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("cnnlab list: internal error (a bug in cnnlab")
    assert type(exc).__name__ in err and "run with --debug for the traceback" in err


def test_a_bug_with_debug_prints_the_traceback(capsys, monkeypatch):
    code, err = _run(capsys, monkeypatch, ZeroDivisionError("division by zero"), "--debug")
    assert code == 1
    assert err.startswith("Traceback") and "in boom" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cnnlab list: internal error") and "ZeroDivisionError" in last
    assert "--debug for the traceback" not in err  # the hint is not repeated


@pytest.mark.parametrize("exc", [errors.CnnlabError("plain"), errors.UsageError("bad value"),
                                 errors.UnknownModelError("unknown model 'x'"),
                                 errors.MissingFileError("x.png: no such file or folder"),
                                 errors.ResourceError("too large")])
def test_a_cnnlab_error_exits_2_with_one_line(capsys, monkeypatch, exc):
    code, err = _run(capsys, monkeypatch, exc)
    assert code == 2
    assert err == f"cnnlab list: error: {exc}\n"


def test_a_cnnlab_error_with_debug_keeps_exit_2(capsys, monkeypatch):
    code, err = _run(capsys, monkeypatch, errors.UsageError("bad value"), "--debug")
    assert code == 2 and err.startswith("Traceback")
    assert err.strip().splitlines()[-1] == "cnnlab list: error: bad value"


def test_argparse_mistakes_stay_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list", "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("cls,builtin", [
    (errors.UsageError, ValueError), (errors.UnknownNameError, KeyError),
    (errors.NotAModelError, TypeError), (errors.FileProblemError, OSError),
    (errors.MissingFileError, FileNotFoundError), (errors.OutputExistsError, FileExistsError),
    (errors.NotAFolderError, NotADirectoryError)])
def test_each_class_is_also_the_builtin_a_caller_catches(cls, builtin):
    err = cls("the message")
    assert isinstance(err, errors.CnnlabError) and isinstance(err, builtin)
    assert str(err) == "the message"  # KeyError would quote it, OSError would not keep it


@pytest.mark.parametrize("code,cls,needle", [
    (errno.ENOENT, errors.MissingFileError, "no such file or folder"),
    (errno.ELOOP, errors.FileProblemError, "a loop of symbolic links"),
    (errno.EISDIR, errors.FileProblemError, "is a folder; give a file"),
    (errno.EACCES, errors.FileProblemError, "permission denied"),
])
def test_file_problem_names_the_file_and_the_fix(code, cls, needle):
    raw = OSError(code, os.strerror(code), "/data/x.png")
    err = errors.file_problem(raw)
    assert type(err) is cls and err.errno == code and err.filename == "/data/x.png"
    assert str(err) == f"/data/x.png: {errors._OS_ADVICE[errno.errorcode[code]]}"
    assert needle in str(err) and "[Errno" not in str(err)
    # the name the user gave replaces a temporary file's
    assert str(errors.file_problem(raw, "out.png")).startswith("out.png: ")


def test_user_files_wraps_os_errors_only(tmp_path):
    with pytest.raises(errors.FileProblemError, match="is a folder; give a file") as info:
        with errors.user_files():
            open(tmp_path, "rb")
    assert isinstance(info.value.__cause__, IsADirectoryError)
    with pytest.raises(errors.UsageError):  # cnnlab's own errors pass through unchanged
        with errors.user_files():
            raise errors.UsageError("x")
    with pytest.raises(ZeroDivisionError):  # and so do bugs
        with errors.user_files():
            1 / 0  # noqa: B018


@pytest.mark.parametrize("call", [
    lambda: cnnlab.create_model(None),
    lambda: cnnlab.list_models(123),
    lambda: cnnlab.create_model("lenet5", num_classes=-1),
    lambda: cnnlab.summary(None, (1, 32, 32)),
    lambda: cnnlab.count_macs("lenet5", (1, 32, 32)),
    lambda: cnnlab.receptive_field(None, (1, 32, 32)),
    lambda: cnnlab.trace_graph(None, (1, 32, 32)),
    lambda: cnnlab.fuse("resnet18"),
    lambda: cnnlab.conv_cost(-1, 2, 3, 4),
    lambda: cnnlab.create_model("lenet5", features_only=True, out_indices=("a",)),
    lambda: cnnlab.load_pretrained(cnnlab.create_model("lenet5"), "/no/such/file.safetensors"),
])
def test_python_api_mistakes_raise_cnnlab_errors(call):
    with pytest.raises(errors.CnnlabError):
        call()


def test_a_data_folder_that_cannot_be_read_is_a_file_problem(tmp_path):
    from cnnlab.data import load_data

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "loop.png").symlink_to(tmp_path / "a" / "loop.png")
    with pytest.raises(errors.FileProblemError, match="loop.png: a loop of symbolic links"):
        load_data(str(tmp_path))


@pytest.mark.parametrize("exc", [
    MemoryError(),
    RuntimeError("Storage size calculation overflowed with sizes=[4, 1, 10**12, 10**12]"),
    ValueError("array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum "
               "possible size."),
])
def test_an_allocation_that_fails_is_the_resource_error_it_would_have_been(
        capsys, monkeypatch, exc):
    code, err = _run(capsys, monkeypatch, exc)
    assert code == 2 and err.startswith("cnnlab list: error: not enough memory"), err
    assert err.count("\n") == 1
