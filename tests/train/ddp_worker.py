"""Run under torchrun by tests/test_training.py: a few SRResNet iterations with DDP on
CPU (gloo); every rank saves its final weights so the test can compare them."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from sr_course.config import load_config
from sr_course.train.trainer import Trainer

data_root, out = sys.argv[1], Path(sys.argv[2])
cfg = load_config(
    "smoke",
    data_root=data_root,
    runs_dir=str(out),
    data={"patches_per_image": 4, "val_split": None},
)
trainer = Trainer(cfg, "srresnet", out_dir=out / "run", progress=False)
trainer.fit()
# Parameters only: BatchNorm running statistics are per rank (each sees its own batches).
torch.save(dict(trainer.G_raw.named_parameters()), out / f"rank{dist.get_rank()}.pt")
print(
    f"rank {dist.get_rank()} of {dist.get_world_size()}: {trainer.iteration} iterations, {len(trainer.sampler)} samples"
)
trainer.close()
