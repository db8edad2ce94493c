"""Training checkpoints of the two reference trainers load; nothing else beyond tensors does.

timm's ``train.py`` saves through ``timm/utils/checkpoint_saver.py`` (``CheckpointSaver._save``)
and torchvision's ``references/classification/train.py`` at the end of each epoch; both put the
command line's ``argparse.Namespace`` in the file under ``args``. The files here are written
the way those scripts write them: the same keys, a real optimizer, scheduler and grad-scaler
state after a step, an EMA copy, and a Namespace with (a subset of) their arguments.
"""

from __future__ import annotations

import argparse
import pickle

import pytest
import torch
from torch.optim.swa_utils import AveragedModel

import cnnlab
from cnnlab.errors import CheckpointError
from cnnlab.pretrained import create_pretrained, match_architectures, read_weights


def stepped(model: torch.nn.Module):
    """An SGD optimizer, a warm-up + cosine schedule and a grad scaler after one step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=5)
    main = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=85)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, main], milestones=[5])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    model.train()
    loss = model(torch.randn(2, 1, 32, 32)).logsumexp(1).mean()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    sched.step()
    return opt, sched, scaler


def timm_args(**over) -> argparse.Namespace:
    """Arguments of timm's train.py (names and kinds as its parser and set-up give them)."""
    args = dict(data_dir="/data/imagenet", dataset="", train_split="train", val_split="validation",
                model="lenet5", pretrained=False, initial_checkpoint="", resume="",
                num_classes=10, gp=None, img_size=None, in_chans=None, input_size=None,
                crop_pct=None, mean=None, std=None, interpolation="", batch_size=128,
                model_kwargs={}, opt="sgd", opt_eps=None, opt_betas=None, momentum=0.9,
                weight_decay=2e-5, clip_grad=None, clip_mode="norm", sched="cosine", lr=None,
                lr_base=0.1, lr_base_size=256, epochs=300, decay_milestones=[90, 180, 270],
                scale=[0.08, 1.0], ratio=[3.0 / 4.0, 4.0 / 3.0], hflip=0.5, aa=None,
                smoothing=0.1, drop=0.0, drop_path=None, model_ema=True,
                model_ema_decay=0.9998, seed=42, workers=4, amp=True, amp_dtype="float16",
                output="", eval_metric="top1", device="cuda:0", prefetcher=True,
                distributed=False, world_size=1, rank=0, local_rank=0)
    args.update(over)
    return argparse.Namespace(**args)


def torchvision_args(**over) -> argparse.Namespace:
    """Arguments of torchvision's references/classification/train.py (get_args_parser, then
    utils.init_distributed_mode)."""
    args = dict(data_path="/datasets01/imagenet_full_size/061417/", model="resnet18",
                device="cuda", batch_size=32, epochs=90, workers=16, opt="sgd", lr=0.1,
                momentum=0.9, weight_decay=1e-4, norm_weight_decay=None, label_smoothing=0.0,
                mixup_alpha=0.0, cutmix_alpha=0.0, lr_scheduler="cosineannealinglr",
                lr_warmup_epochs=5, lr_warmup_method="linear", lr_warmup_decay=0.01,
                lr_step_size=30, lr_gamma=0.1, print_freq=10, output_dir=".", resume="",
                start_epoch=0, cache_dataset=False, sync_bn=False, test_only=False,
                auto_augment=None, random_erase=0.0, amp=True, world_size=1,
                dist_url="env://", model_ema=True, model_ema_steps=32, model_ema_decay=0.99998,
                use_deterministic_algorithms=False, interpolation="bilinear",
                val_resize_size=256, val_crop_size=224, train_crop_size=224,
                clip_grad_norm=None, weights=None, distributed=False, rank=0, gpu=0,
                dist_backend="nccl")
    args.update(over)
    return argparse.Namespace(**args)


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5", num_classes=10)
    opt, sched, scaler = stepped(model)
    return model.eval(), opt, sched, scaler


def timm_checkpoint(model, opt, scaler, args) -> dict:
    """CheckpointSaver._save with args, a NativeScaler and model_ema (keys in its order)."""
    ema = {k: v + 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return {"epoch": 12, "arch": args.model, "optimizer": opt.state_dict(), "version": 2,
            "args": args, "amp_scaler": scaler.state_dict(), "state_dict": model.state_dict(),
            "state_dict_ema": ema, "metric": 71.25}


def torchvision_checkpoint(model, opt, sched, scaler, args) -> dict:
    """The end-of-epoch checkpoint of torchvision's train.py with --model-ema and --amp."""
    ema = AveragedModel(model)  # torchvision's ExponentialMovingAverage is an AveragedModel
    return {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "lr_scheduler": sched.state_dict(), "epoch": 89, "args": args,
            "model_ema": ema.state_dict(), "scaler": scaler.state_dict()}


def assert_same_weights(loaded: torch.nn.Module, model: torch.nn.Module) -> None:
    ours = loaded.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in model.state_dict().items())


def test_timm_train_checkpoint_loads(lenet, tmp_path):
    model, opt, _, scaler = lenet
    path = tmp_path / "checkpoint-12.pth.tar"
    torch.save(timm_checkpoint(model, opt, scaler, timm_args()), path)
    with pytest.raises(pickle.UnpicklingError, match="argparse.Namespace"):
        torch.load(path, weights_only=True)  # what cnnlab refused before
    lines: list[str] = []
    loaded = create_pretrained("lenet5", path, log=lines.append)
    assert_same_weights(loaded, model)  # the non-EMA weights
    assert lines == ["checkpoint-12.pth.tar: training checkpoint (model 'lenet5', epoch 12); only "
                     "the model weights are read, not its optimizer, amp_scaler, args"]
    assert read_weights(path).container == '{"state_dict": state_dict}'


def test_torchvision_train_checkpoint_loads(lenet, tmp_path):
    model, opt, sched, scaler = lenet
    path = tmp_path / "model_89.pth"
    torch.save(torchvision_checkpoint(model, opt, sched, scaler,
                                      torchvision_args(model="lenet5")), path)
    loaded = cnnlab.create_model("lenet5", weights=path)
    assert_same_weights(loaded, model)
    wf = read_weights(path)
    assert wf.container == '{"model": state_dict}'
    assert wf.notes[0] == ("training checkpoint (model 'lenet5', epoch 89); only the model "
                           "weights are read, not its optimizer, lr_scheduler, scaler, args")
    assert [m.model for m in match_architectures(wf.state, names=["lenet5"])] == ["lenet5"]


def test_namespace_is_allowed_only_during_the_load(lenet, tmp_path):
    model, opt, _, scaler = lenet
    path = tmp_path / "last.pth.tar"
    torch.save(timm_checkpoint(model, opt, scaler, timm_args()), path)
    before = set(torch.serialization.get_safe_globals())
    read_weights(path)
    assert set(torch.serialization.get_safe_globals()) == before
    torch.save({"state_dict": model.state_dict(), "args": timm_args(device=torch.device("cpu"))},
               tmp_path / "bad.pth")
    with pytest.raises(CheckpointError):
        read_weights(tmp_path / "bad.pth")
    assert set(torch.serialization.get_safe_globals()) == before
    # A caller that allowed Namespace process-wide keeps it.
    with torch.serialization.safe_globals([argparse.Namespace]):
        read_weights(path)
        assert argparse.Namespace in torch.serialization.get_safe_globals()


@pytest.mark.parametrize("value, kind", [
    (torch.device("cpu"), "device"),
    (torch.ones(2), "Tensor"),
    ({"lr": torch.float16}, "dict"),
    ([1, 2, torch.nn.Identity], "list"),
])
def test_namespace_with_more_than_plain_values_is_refused(lenet, tmp_path, value, kind):
    """What torch's weights_only unpickler accepts beside tensors (devices, dtypes) is still
    more than a Namespace of arguments holds; a class is refused by the unpickler itself."""
    model = lenet[0]
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": model.state_dict(), "args": timm_args(extra=value)}, path)
    with pytest.raises(CheckpointError, match="refused") as err:
        read_weights(path)
    message = str(err.value)
    assert "\n" not in message
    assert f"holds extra= of type {kind}" in message or "arbitrary unpickling" in message


class Sub(argparse.Namespace):
    pass


def test_other_classes_stay_refused(lenet, tmp_path):
    model = lenet[0]
    torch.save({"state_dict": model.state_dict(), "args": Sub(model="lenet5")},
               tmp_path / "sub.pth")
    with pytest.raises(CheckpointError, match="arbitrary unpickling .*Sub"):
        read_weights(tmp_path / "sub.pth")
    torch.save({"state_dict": model.state_dict(), "args": timm_args(), "module": model},
               tmp_path / "module.pth")
    with pytest.raises(CheckpointError, match="arbitrary unpickling"):
        read_weights(tmp_path / "module.pth")


class Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_object_inside_the_namespace_never_runs(lenet, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": lenet[0].state_dict(), "args": timm_args(x=Hostile(str(marker)))},
               path)
    with pytest.raises(CheckpointError, match="arbitrary unpickling"):
        read_weights(path)
    assert not marker.exists()
