"""Mutation-audit tests for ``cnnlab.pretrained`` (issue 21): the SHA-256 check compares the
whole digest, ``load_pretrained(sha256=)`` checks it for files and for already-read
:class:`WeightsFile` objects, and a new head drops the file's old classifier keys."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

import cnnlab
from cnnlab.errors import CheckpointError
from cnnlab.pretrained import load_pretrained, read_weights


@pytest.fixture(scope="module")
def r20(tmp_path_factory):
    torch.manual_seed(3)
    model = cnnlab.create_model("resnet20").eval()
    path = tmp_path_factory.mktemp("sha") / "resnet20.pth"
    torch.save(model.state_dict(), path)
    return model, path, hashlib.sha256(path.read_bytes()).hexdigest()


def flip_hex(c: str) -> str:
    return "0" if c != "0" else "1"


@pytest.mark.parametrize("where", [8, 31, 63])  # past the 8-digit prefix, to the last digit
def test_a_digest_that_differs_after_its_first_8_digits_is_refused(r20, where):
    _, path, digest = r20
    wrong = digest[:where] + flip_hex(digest[where]) + digest[where + 1:]
    assert wrong[:8] == digest[:8] or where < 8
    with pytest.raises(CheckpointError, match=f"SHA-256 is {digest}, not {wrong}"):
        read_weights(path, sha256=wrong)
    with pytest.raises(CheckpointError, match="not the one you expected"):
        cnnlab.create_model("resnet20", weights=path, sha256=wrong)


def test_a_prefix_longer_than_8_digits_is_compared_in_full(r20):
    _, path, digest = r20
    read_weights(path, sha256=digest[:12])           # a true 12-digit prefix is accepted
    wrong = digest[:11] + flip_hex(digest[11])
    with pytest.raises(CheckpointError, match="not the one you expected"):
        read_weights(path, sha256=wrong)


def test_load_pretrained_checks_the_sha256_of_a_path(r20):
    _, path, digest = r20
    target = cnnlab.create_model("resnet20")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    wrong = digest[:-1] + flip_hex(digest[-1])
    with pytest.raises(CheckpointError, match="not the one you expected"):
        load_pretrained(target, path, sha256=wrong, log=None)
    # refused before anything was loaded
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    load_pretrained(target, path, sha256=digest, log=None)


def test_load_pretrained_checks_the_sha256_of_a_weights_file_read_before(r20):
    model, path, digest = r20
    wf = read_weights(path)                          # read once, without a hash
    assert wf.sha256 == digest
    target = cnnlab.create_model("resnet20")
    wrong = digest[:-1] + flip_hex(digest[-1])
    with pytest.raises(CheckpointError, match="not the one you expected"):
        load_pretrained(target, wf, sha256=wrong, log=None)
    # a WeightsFile whose recorded hash is another file's is refused too
    other = dataclasses.replace(wf, sha256="0" * 64)
    with pytest.raises(CheckpointError, match=f"SHA-256 is {'0' * 64}, not {digest}"):
        load_pretrained(target, other, sha256=digest, log=None)
    load_pretrained(target, wf, sha256=digest, log=None)
    assert torch.equal(target.state_dict()["fc.weight"], model.state_dict()["fc.weight"])


def test_a_new_head_drops_every_old_classifier_key_of_the_file(r20, tmp_path):
    """A file whose head holds a tensor the model's head has not (here a temperature of a
    cosine classifier, 'fc.scale'): with a new head for other classes the whole old head goes;
    with the same classes it is an unexpected key, refused."""
    model, _, _ = r20
    state = dict(model.state_dict())
    state["fc.scale"] = torch.tensor(16.0)
    path = tmp_path / "resnet20-cosine-head.pth"
    torch.save(state, path)
    torch.manual_seed(5)
    target = cnnlab.create_model("resnet20", num_classes=4)
    fresh = target.state_dict()["fc.weight"].clone()
    report = load_pretrained(target, path, log=None)
    assert report.replaced == ["fc.weight 10x64 -> 4x64", "fc.bias 10 -> 4"]
    assert "fc.scale" not in target.state_dict()
    assert torch.equal(target.state_dict()["fc.weight"], fresh)
    assert torch.equal(target.state_dict()["conv1.weight"], model.state_dict()["conv1.weight"])
    with pytest.raises(CheckpointError, match="unexpected.*fc.scale"):
        load_pretrained(cnnlab.create_model("resnet20"), path, log=None)
