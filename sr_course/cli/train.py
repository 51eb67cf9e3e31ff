"""`python -m sr_course train-srresnet` / `train-srgan`: one training stage, resumable, unattended."""

from __future__ import annotations

import json

from ..config import to_plain_dict
from ..train.trainer import Trainer
from .common import add_config_arguments, config_of

STAGES = {
    "srresnet": "SRResNet with pixel MSE (Sec. 3.2)",
    "srgan": "SRGAN: VGG content + adversarial loss",
}


def register(sub) -> None:
    for stage, what in STAGES.items():
        p = sub.add_parser(
            f"train-{stage}",
            help=f"train {what}",
            description=f"Train {what}. Checkpoints go to --out (default <runs_dir>/{stage}): last.pt after every "
            "epoch and every train.checkpoint_every iterations, best.pt by validation PSNR. Runs unattended "
            "(nohup python -m sr_course ... &) and under torchrun for several GPUs.",
        )
        add_config_arguments(p)
        p.add_argument("--out", help=f"run folder (default <runs_dir>/{stage})")
        p.add_argument(
            "--resume", action="store_true", help="continue the run in --out from its last.pt"
        )
        p.add_argument(
            "--resume-from", metavar="CHECKPOINT", help="continue from this checkpoint file"
        )
        p.add_argument(
            "--fresh",
            action="store_true",
            help="start from scratch: move the run's last.pt and best.pt into <out>/earlier-<k>/ first",
        )
        p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_of(args)
    stage = args.command.removeprefix("train-")
    resume = args.resume_from or ("auto" if args.resume else None)
    trainer = Trainer(cfg, stage, out_dir=args.out, resume=resume, fresh=args.fresh)
    if trainer.is_main:
        print(json.dumps(to_plain_dict(cfg), indent=1, default=str))
    try:
        trainer.fit()
    finally:
        trainer.close()
    return 0
