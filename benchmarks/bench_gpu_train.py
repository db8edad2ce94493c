"""Training throughput: `cnnlab train`'s epoch against a hand-written loop with the same settings.

Issue 23 item 5, for a machine with a GPU: ResNet-50 on synthetic 3x224x224 images, batch 256,
bf16 autocast, channels-last, torch.compile, for cnnlab's trainer (``training.loop.
train_one_epoch`` with the callbacks `cnnlab train` uses) and for a minimal loop written by
hand (index the cached images, move the batch to the device, forward under autocast,
cross-entropy, backward, SGD step), the same initial weights, optimizer and data. One warm-up
epoch each (it pays for compilation), then epochs alternate (trainer, hand, hand, trainer,
...); every epoch ends with a device synchronisation before the clock is read. Printed:
images/s of each, the ratio trainer / hand (median of the pairs), the GPU, the versions.

    PYTHONPATH=src python benchmarks/bench_gpu_train.py --device cuda [--model resnet50]
        [--size 224] [--batch 256] [--images 2560] [--amp bf16] [--channels-last]
        [--compile] [--repeats 4]

On a CPU it runs too, at a small size (the way CI-less development checks the script):
``--device cpu --model resnet20 --size 32 --batch 32 --images 256 --amp none``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--images", type=int, default=2560, help="training images an epoch")
    ap.add_argument("--amp", default="bf16", choices=("none", "bf16", "fp16"))
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--repeats", type=int, default=4, help="interleaved pairs of epochs")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from cnnlab.analysis.backends import _synchronizer, machine_lines
    from cnnlab.training.loop import train_one_epoch
    from cnnlab.training.trainer import TrainConfig, Trainer

    device = torch.device(args.device)
    sync = _synchronizer(device)
    spec = (f"synthetic:classes={args.classes},size=3x{args.size}x{args.size},"
            f"train={args.images},val=0,test=1")
    print("\n".join(machine_lines(device)))
    print(f"{args.model} on {spec}, batch {args.batch}, amp {args.amp}, channels-last "
          f"{args.channels_last}, compile {args.compile}")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(model=args.model, data=spec, batch_size=args.batch, epochs=1000,
                          runs_dir=tmp, plots=False, augment="none", device=str(device),
                          amp=args.amp, channels_last=args.channels_last,
                          compile=args.compile, num_workers=0)
        trainer = Trainer(cfg, log=lambda *a, **k: None, progress=False)
        with trainer.open():
            trainer.run.write_config(trainer.config)
            trainer.run.reset_metrics([])
            callbacks = trainer.callbacks()
            ds = trainer.data.train
            x_all, y_all = ds._cache, ds.base.labels
            n = len(ds)
            hand = copy.deepcopy(trainer.model)  # the same initial weights, device, layout
            opt = torch.optim.SGD(hand.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                  weight_decay=cfg.weight_decay)
            net = torch.compile(hand) if args.compile else hand
            amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
            fmt = torch.channels_last if args.channels_last else torch.contiguous_format
            g = torch.Generator().manual_seed(0)
            state = trainer.state

            def hand_epoch():
                hand.train()
                order = torch.randperm(n, generator=g)
                for i in range(0, n - args.batch + 1, args.batch):  # full batches, as DDP
                    idx = order[i:i + args.batch]
                    xb = x_all[idx].to(device, non_blocking=True).contiguous(memory_format=fmt)
                    yb = y_all[idx].to(device, non_blocking=True)
                    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                        loss = F.cross_entropy(net(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

            def timed(f):
                sync()
                t = time.perf_counter()
                f()
                sync()
                return time.perf_counter() - t

            def trainer_epoch(epoch):
                train_one_epoch(trainer.learner, ds, state, epoch, callbacks)
                state.epoch, state.batch = epoch + 1, 0

            warm_t, warm_h = timed(lambda: trainer_epoch(0)), timed(hand_epoch)
            print(f"warm-up epochs (compilation included): trainer {warm_t:.1f} s, hand "
                  f"{warm_h:.1f} s")
            tt, th = [], []
            for r in range(args.repeats):
                if r % 2 == 0:
                    tt.append(timed(lambda r=r: trainer_epoch(r + 1)))
                    th.append(timed(hand_epoch))
                else:
                    th.append(timed(hand_epoch))
                    tt.append(timed(lambda r=r: trainer_epoch(r + 1)))
    pairs = [h / t for t, h in zip(tt, th, strict=True)]
    print(f"{n} images an epoch, {args.repeats} interleaved pairs after the warm-up")
    print(f"cnnlab train: {n / statistics.median(tt):8.1f} images/s (median epoch "
          f"{statistics.median(tt):.3f} s)")
    print(f"hand loop:    {n / statistics.median(th):8.1f} images/s (median epoch "
          f"{statistics.median(th):.3f} s)")
    print(f"throughput trainer / hand: {statistics.median(pairs):.3f} (median of the pairs: "
          f"{', '.join(f'{p:.3f}' for p in pairs)})")


if __name__ == "__main__":
    main()
