"""Command line: python -m sr_course <command> [options]. `python -m sr_course --help` lists them."""

from __future__ import annotations

import argparse
import sys


def _cmd_check(args: argparse.Namespace) -> int:
    from . import checks

    checks.run_all()
    return 0


def _load_config(args: argparse.Namespace):
    from .config import load_config, parse_overrides

    return load_config(args.profile, **parse_overrides(args.overrides))


def _cmd_train(args: argparse.Namespace) -> int:
    import json

    from .config import to_plain_dict
    from .solver import Trainer

    cfg = _load_config(args)
    stage = args.command.removeprefix("train-")
    resume = args.resume_from or ("auto" if args.resume else None)
    trainer = Trainer(cfg, stage, out_dir=args.out, resume=resume)
    if trainer.is_main:
        print(json.dumps(to_plain_dict(cfg), indent=1, default=str))
    try:
        trainer.fit()
    finally:
        trainer.close()
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import convert_legacy_checkpoint

    out = convert_legacy_checkpoint(args.old, args.new)
    print(f"converted {args.old} -> {out}")
    return 0


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        help="paper (GPU, DIV2K), demo (CPU, sample) or smoke; default $SR_PROFILE or paper",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. srresnet.lr=1e-3 data.num_workers=8",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sr_course",
        description="sr_course: 4x super-resolution with SRResNet and SRGAN, a notebook course kit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    p = sub.add_parser(
        "check", help="run the self-checks of every TODO (models, VGG truncation, imresize)"
    )
    p.set_defaults(func=_cmd_check)

    for stage, what in (
        ("srresnet", "SRResNet with pixel MSE (Sec. 3.2)"),
        ("srgan", "SRGAN: VGG content + adversarial loss"),
    ):
        p = sub.add_parser(
            f"train-{stage}",
            help=f"train {what}",
            description=f"Train {what}. Checkpoints go to --out (default <runs_dir>/{stage}): last.pt after every "
            "epoch and every train.checkpoint_every iterations, best.pt by validation PSNR. Runs unattended "
            "(nohup python -m sr_course ... &) and under torchrun for several GPUs.",
        )
        _add_config_arguments(p)
        p.add_argument("--out", help=f"run folder (default <runs_dir>/{stage})")
        p.add_argument(
            "--resume", action="store_true", help="continue the run in --out from its last.pt"
        )
        p.add_argument(
            "--resume-from", metavar="CHECKPOINT", help="continue from this checkpoint file"
        )
        p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "convert-checkpoint",
        help="convert a checkpoint of the course's old format (pickled modules) that you trust",
        description="Unpickles OLD (this can run code: only for files you trust) and writes its weights in "
        "the kit's safe checkpoint format to NEW.",
    )
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=_cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may stand anywhere, also after options (argparse stops a positional list
    # at the first option), so collect the stragglers here.
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if "=" not in a or a.startswith("-")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*getattr(args, "overrides", []), *extra]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError
    from .datasets import DataError
    from .solver import DivergenceError

    try:
        return args.func(args)
    except (
        CheckpointError,
        DataError,
        DivergenceError,
        FileExistsError,
        FileNotFoundError,
        KeyError,
        ValueError,
    ) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
