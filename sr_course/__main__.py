"""Command line: python -m sr_course <command> [options]. `python -m sr_course --help` lists them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, data_root=args.data_root, fresh=args.fresh, iterations=args.iterations)
    return 0


def _cmd_execute_notebooks(args: argparse.Namespace) -> int:
    from .notebook import execute_notebooks

    for path in execute_notebooks(args.names or None, profile=args.profile):
        print(f"executed and stripped {path}")
    return 0


def _release_module():
    try:
        from . import release
    except ImportError:
        raise FileNotFoundError(
            "release and grade are instructor tools: they live in the reference kit, not in the student kit"
        ) from None
    return release


def _cmd_release(args: argparse.Namespace) -> int:
    release = _release_module()
    try:
        release.build_release(args.out)
        if args.git_branch:
            commit = release.commit_to_branch(Path(args.out), args.git_branch)
            print(f"committed the student kit to branch {args.git_branch} ({commit[:12]})")
    except release.ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    release = _release_module()
    from . import grader

    options = dict(
        notebooks=not args.no_notebooks, timeout=args.timeout, cell_timeout=args.cell_timeout
    )
    try:
        subs = grader.find_submissions(args.submissions)
        if len(subs) == 1 and not args.out:
            grader.grade(subs[0], json_out=args.json, **options)
        else:
            grader.grade_many(subs, args.out or "grades", jobs=args.jobs, **options)
    except release.ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_outputs(args: argparse.Namespace) -> int:
    from .outputs import save_outputs

    cfg = _load_config(args)
    models = _named_models(args.models or [])
    save_outputs(models, args.splits, cfg, _out(args, cfg), device=cfg.device, tile=args.tile)
    return 0


def _cmd_rate(args: argparse.Namespace) -> int:
    from . import rating

    cfg = _load_config(args)
    out = _out(args, cfg)
    if args.score:
        try:
            rating.score_study(out / rating.KEY, args.score, out)
        except rating.RatingError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    page = rating.make_study(
        _named_models(args.models or []), args.split, cfg, out, args.images, tile=args.tile
    )
    print(f"rating page written: {page} (open it in a browser; each rater saves a JSON file)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    write_report(_load_config(args), args.out, args.runs, args.split)
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from .runs import runs_table

    print(runs_table(args.folder, args.split))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from . import checks

    return 1 if checks.run_all() else 0


def _load_config(args: argparse.Namespace):
    from .config import load_config, parse_overrides

    return load_config(args.profile, **parse_overrides(args.overrides))


def _cmd_train(args: argparse.Namespace) -> int:
    import json

    from .config import to_plain_dict
    from .trainer import Trainer

    cfg = _load_config(args)
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


def _cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import convert_legacy_checkpoint

    out = convert_legacy_checkpoint(args.old, args.new)
    print(f"converted {args.old} -> {out}")
    return 0


def _is_config_leaf(key: str) -> bool:
    """Whether `key` (e.g. 'scale', 'data.crop_size') names a config value, not a section."""
    from .config import _BASE, lookup

    return not isinstance(lookup(_BASE, key, missing={}), dict)


def _split_models(args: argparse.Namespace) -> None:
    """`--models a=x.pt key=value` : --models takes every word up to the next option, so move the
    config overrides (a key=value whose key is a config value, like scale=4 or data.crop_size=48)
    back to the overrides."""
    models = getattr(args, "models", None)
    if not models:
        return
    keep, moved = [], []
    for item in models:
        key = item.partition("=")[0]
        (moved if "=" in item and _is_config_leaf(key) else keep).append(item)
    args.models = keep
    args.overrides = [*getattr(args, "overrides", []), *moved]


def _named_models(items: list[str]) -> dict:
    """['srresnet=runs/course/srresnet/best.pt', 'runs/course/srgan/last.pt'] -> {name: path}
    (name defaults to the run folder's name). A name given twice is refused."""
    from pathlib import Path

    models, given = {}, {}
    for item in items or []:
        name, _, path = item.rpartition("=")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"checkpoint {path} does not exist; train first or check the path"
            )
        name = name or path.parent.name
        if name in models:
            raise ValueError(
                f"two models are named {name!r} ({given[name]} and {item}); give each its own name: "
                f"--models A={models[name]} B={path}"
            )
        models[name], given[name] = path, item
    return models


def _out(args: argparse.Namespace, cfg) -> Path:
    """--out, else the command's folder in the profile's runs folder (runs/<profile>/test, ...),
    where the notebooks and `report` look for it."""
    return Path(args.out) if args.out else Path(cfg.runs_dir) / args.default_out


def _cmd_test(args: argparse.Namespace) -> int:
    from .metrics import evaluate

    cfg = _load_config(args)
    splits = args.splits or list(cfg.data.test_splits)
    evaluate(_named_models(args.models), splits, cfg, out_dir=_out(args, cfg), tile=args.tile)
    return 0


def _cmd_super_resolve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .datasets import BadImage, read_image, write_png
    from .inference import load_generator, super_resolve

    inputs = _input_images(args.images)
    model = load_generator(args.checkpoint, args.device)
    out = Path(args.out)
    targets = _output_names(inputs, out, model.scaling_factor)
    failed = []
    for path, target in zip(inputs, targets):
        try:
            lr = read_image(path)
        except (BadImage, FileNotFoundError) as err:
            failed.append(path)
            print(f"skipped {path}: {err}", file=sys.stderr)
            continue
        sr = super_resolve(model, lr, tile=args.tile)
        write_png(sr, target)
        print(f"{path} ({lr.shape[1]}x{lr.shape[0]}) -> {target} ({sr.shape[1]}x{sr.shape[0]})")
    if failed:
        print(
            f"error: {len(failed)} of {len(inputs)} images could not be read (named above); the others "
            f"are in {out}",
            file=sys.stderr,
        )
        return 1
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _input_images(items: list[str]) -> list[Path]:
    """Files as given, and the images inside folders (sorted); a missing path is refused."""
    inputs = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(
                    f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            inputs += found
        elif path.is_file():
            inputs.append(path)
        else:
            raise FileNotFoundError(f"input image {path} does not exist")
    return inputs


def _output_names(inputs: list[Path], out: Path, scale: int) -> list[Path]:
    """<stem>_x<scale>.png for each input; inputs that share a stem (a.png and a.jpg, or two
    folders' a.png) get their extension and then their folder added, so none overwrites another."""
    from collections import Counter

    stems = Counter(p.stem for p in inputs)
    names = [p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix[1:]}" for p in inputs]
    counts = Counter(names)
    names = [
        n if counts[n] == 1 else f"{p.parent.name or 'here'}_{n}" for p, n in zip(inputs, names)
    ]
    taken: Counter = Counter()
    unique = []
    for n in names:  # still equal (a/x.png and b/a/x.png...): number them
        taken[n] += 1
        unique.append(n if taken[n] == 1 else f"{n}_{taken[n]}")
    return [out / f"{n}_x{scale}.png" for n in unique]


def _cmd_grid(args: argparse.Namespace) -> int:
    from .visualize import comparison_grid, default_methods

    cfg = _load_config(args)
    out = _out(args, cfg) / f"grid_{args.split}"
    comparison_grid(
        args.split,
        default_methods(_named_models(args.models)),
        cfg,
        out=out,
        images=args.images,
        zoom=tuple(args.zoom) if args.zoom else None,
        tile=args.tile,
    )
    print(f"saved {out.with_suffix('.png')} and {out.with_suffix('.pdf')}")
    return 0


def _tile(text: str) -> int:
    """--tile: LR pixels per tile side (at least inference.MIN_TILE), or 0 for no tiling."""
    from .inference import MIN_TILE

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < MIN_TILE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a tile size: give the LR pixels per tile side ({MIN_TILE} or more), or 0 "
            "for no tiling"
        )
    return value


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        help="paper (GPU, DIV2K), course (the paper recipe in about 4 T4-hours), demo (CPU, sample) or smoke; default $SR_PROFILE or paper",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. srresnet.lr=1e-3 data.num_workers=8",
    )


def _add_model_arguments(p: argparse.ArgumentParser, models_help: str, out: str) -> None:
    """--models NAME=CHECKPOINT ..., --out and --tile: the commands that run checkpoints on test sets.
    `out` is the output folder's name inside the profile's runs folder (see _out)."""
    p.add_argument("--models", nargs="*", metavar="NAME=CHECKPOINT", help=models_help)
    p.add_argument(
        "--out", help=f"output folder (default <runs_dir>/{out}, e.g. runs/course/{out})"
    )
    p.set_defaults(default_out=out)
    p.add_argument(
        "--tile", type=_tile, help="tile size in LR pixels for big images (default: automatic)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sr_course",
        description="sr_course: 4x super-resolution with SRResNet and SRGAN, a notebook course kit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on the built-in sample, offline, on a CPU (a few minutes)",
        description="Builds the sample dataset, trains SRResNet and (briefly) SRGAN with the demo profile, "
        "evaluates beside bicubic and draws the comparison grid. Writes <out>/results.json and <out>/grid.png.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--data-root", help="data root (default: the demo profile's, data/)")
    p.add_argument(
        "--fresh", action="store_true", help="delete <out> first instead of reusing trained models"
    )
    p.add_argument(
        "--iterations",
        type=int,
        help="cap each training stage at this many iterations (quick look)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "check", help="run the self-checks of every TODO (models, losses, GAN step, imresize)"
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
        p.add_argument(
            "--fresh",
            action="store_true",
            help="start from scratch: move the run's last.pt and best.pt into <out>/earlier-<k>/ first",
        )
        p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "test",
        help="PSNR/SSIM of trained models on the test sets, with a bicubic row",
        description="Evaluate checkpoints under the SR papers' protocol (Y channel, 4-pixel border, 8-bit "
        "output) on the test sets, always beside bicubic. Example:\n  python -m sr_course test --profile course --models "
        "srresnet=runs/course/srresnet/best.pt srgan=runs/course/srgan/last.pt --splits Set5 Set14",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(p)
    _add_model_arguments(p, "checkpoints to evaluate (none: bicubic only)", "test")
    p.add_argument(
        "--splits", nargs="+", help="test sets (default: data.test_splits of the profile)"
    )
    p.set_defaults(func=_cmd_test)

    p = sub.add_parser(
        "outputs",
        help="write every test image's x4 output per model and bicubic, for human evaluation",
        description="Lossless PNGs under OUT/<model>/<split>/ and an index (index.csv/.json: image, "
        "model, PSNR, SSIM). Running again keeps what a checkpoint already made; a changed checkpoint "
        "is written anew. Example:\n  python -m sr_course outputs --profile course --models "
        "srresnet=runs/course/srresnet/best.pt srgan=runs/course/srgan/best.pt --splits Set5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(p)
    _add_model_arguments(p, "checkpoints, one folder each", "outputs")
    p.add_argument("--splits", nargs="+", default=["Set5"], help="test sets (default Set5)")
    p.set_defaults(func=_cmd_outputs)

    p = sub.add_parser(
        "runs",
        help="list the training runs under a folder side by side, best first",
        description="Reads each run's run.json: what changed from the paper's recipe, iterations, "
        "training time and the PSNR/SSIM on a test set (from `test`, else from validation).",
    )
    p.add_argument(
        "folder",
        nargs="?",
        default="runs",
        help="where the runs are (default runs: every profile's)",
    )
    p.add_argument("--split", default="Set5", help="the test set to rank by (default Set5)")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser(
        "report",
        help="write the report folder: report.md with the best recipes, tables and figures",
        description="From the runs' run.json records, the test results (<runs>/test/results.json) and "
        "the checkpoints: report.md with the recipe of the best SRResNet and SRGAN, the test table beside "
        "bicubic and the paper, the attempts table, loss curves and the comparison figure (PNG + PDF). "
        "What is missing is said in the report.",
    )
    _add_config_arguments(p)
    p.add_argument("--runs", help="where the runs are (default: the profile's runs_dir)")
    p.add_argument("--out", help="the report folder (default <runs>/report)")
    p.add_argument("--split", help="the test set of the figure and the ranking (default Set5)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "rate",
        help="a blind 1-5 rating page of SR images (MOS study), or --score the raters' files",
        description="Writes OUT/index.html (open it from disk or any static host; nothing is sent "
        "anywhere) with the images of bicubic, the models and the HR (a hidden anchor), one at a time "
        "in a random order per rater, without method names; each rater saves a JSON file. Then "
        "--score checks the files and writes the MOS per method with 95%% confidence intervals. "
        "Example:\n  python -m sr_course rate --profile course --split Set5 --models "
        "srresnet=runs/course/srresnet/best.pt srgan=runs/course/srgan/best.pt\n  "
        "python -m sr_course rate --profile course --score ratings/*.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(p)
    _add_model_arguments(p, "checkpoints to rate beside bicubic and HR", "rating")
    p.add_argument("--split", default="Set5", help="test set (default Set5)")
    p.add_argument("--images", nargs="*", type=int, help="image indices (default: all)")
    p.add_argument(
        "--score", nargs="+", metavar="RATINGS.json", help="score the study in OUT with these files"
    )
    p.set_defaults(func=_cmd_rate)

    p = sub.add_parser(
        "super-resolve",
        help="super-resolve your own images with a checkpoint",
        description="Example: python -m sr_course super-resolve runs/course/srgan/last.pt photo.png --out runs/sr",
    )
    p.add_argument("checkpoint", help="a checkpoint written by training (last.pt / best.pt)")
    p.add_argument("images", nargs="+", help="input (low-resolution) images")
    p.add_argument("--out", default="runs/sr", help="output folder (default runs/sr)")
    p.add_argument("--tile", type=_tile, help="tile size in LR pixels (default: automatic)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.set_defaults(func=_cmd_super_resolve)

    p = sub.add_parser(
        "grid",
        help="comparison figure for a report: LR, bicubic, your models and HR with zoomed insets",
        description="Rows are the images of a test set, columns LR (nearest), Bicubic, the models and HR, with "
        "PSNR/SSIM under each panel. Writes a 220-dpi PNG and a vector PDF. Example:\n  python -m sr_course "
        "grid --profile course --split Set5 --models SRResNet=runs/course/srresnet/best.pt "
        "SRGAN=runs/course/srgan/last.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(p)
    p.add_argument("--split", default="Set5", help="test set (default Set5)")
    _add_model_arguments(p, "checkpoints, one column each", "figures")
    p.add_argument("--images", nargs="*", type=int, help="image indices (default: all)")
    p.add_argument(
        "--zoom",
        nargs=3,
        type=int,
        metavar=("TOP", "LEFT", "SIZE"),
        help="a fixed inset, in HR pixels, for every image shown (default: chosen where the HR "
        "image has detail and the methods differ)",
    )
    p.set_defaults(func=_cmd_grid)

    p = sub.add_parser(
        "convert-checkpoint",
        help="convert a checkpoint of the course's old format (pickled modules) that you trust",
        description="Unpickles OLD (this can run code: only for files you trust) and writes its weights in "
        "the kit's safe checkpoint format to NEW.",
    )
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "execute-notebooks",
        help="re-execute the course notebooks in place (demo profile) and strip them, for committing",
        description="Runs notebooks/*.ipynb in course order with fresh data and run folders, then keeps "
        "outputs and execution counts but strips other metadata (nbstripout --keep-output --keep-count).",
    )
    p.add_argument(
        "names", nargs="*", help="notebook names without .ipynb (default: all, in course order)"
    )
    p.add_argument(
        "--profile",
        default="demo",
        help="profile to run them on (default demo: models that learn, about 3 min on 2 CPU cores)",
    )
    p.set_defaults(func=_cmd_execute_notebooks)

    p = sub.add_parser(
        "release",
        help="build the student kit from this reference (instructors)",
        description="Writes the student kit to --out: solution regions become NotImplementedError stubs, "
        "notebook outputs are cleared, hidden tests and grading tools are left out; then checks the kit.",
    )
    p.add_argument("--out", required=True, help="a new (or empty) folder for the kit")
    p.add_argument(
        "--git-branch", help="also commit the kit as the tip of this branch of this repository"
    )
    p.set_defaults(func=_cmd_release)

    p = sub.add_parser(
        "grade",
        help="grade submissions: one student, or a whole class (instructors)",
        description="Reads each submission's sr_course/models.py, losses.py and solver.py (and nothing else). "
        "Each TODO is graded by behaviour in a sandbox, against the reference, on its own; then the notebooks "
        "run with the student's files (smoke profile). Prints a score per TODO, the notebooks and the total. "
        "Several submissions (or a folder of them) are graded in parallel into --out: one JSON per student "
        "and gradebook.csv. Submission folders are only read.",
        epilog="examples:\n  python -m sr_course grade submissions/alice\n"
        "  python -m sr_course grade submissions/ --out grades --jobs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="+", help="student kit folders, or folders that hold them")
    p.add_argument("--out", help="folder for the gradebook and one JSON per student (a class)")
    p.add_argument("--json", help="one submission: also write its report as JSON here")
    p.add_argument("--jobs", type=int, help="submissions graded at once (default: the CPU cores)")
    p.add_argument(
        "--timeout", type=float, default=30, help="seconds for each TODO's checks (default 30)"
    )
    p.add_argument(
        "--cell-timeout", type=float, default=60, help="seconds per notebook cell (default 60)"
    )
    p.add_argument("--no-notebooks", action="store_true", help="grade the TODOs only")
    p.set_defaults(func=_cmd_grade)

    return parser


def _open_todo_message(err: NotImplementedError) -> str | None:
    """One sentence for a command that reached an unfinished TODO: which one to do first."""
    text = str(err)
    if not text.startswith("TODO: "):
        return None
    from .checks import open_todos

    hit = text.removeprefix("TODO: ").split(":")[0]
    todos = open_todos() or [(hit, "models.py")]
    first, where = todos[0]
    return (
        f"this command needs {hit}, which is not implemented yet; {len(todos)} TODO(s) are still open, "
        f"in course order {', '.join(t for t, _ in todos)}: start with {first} in sr_course/{where} "
        "(its TODO box says what to build; python -m sr_course check tells when it is right)"
    )


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
    _split_models(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError
    from .datasets import DataError
    from .trainer import DivergenceError, RunLockedError, TrainingInterrupted

    try:
        return args.func(args)
    except NotImplementedError as err:
        todo = _open_todo_message(err)
        if todo is None:
            raise
        print(f"error: {todo}", file=sys.stderr)
        return 1
    except TrainingInterrupted as err:
        print(err, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (
        CheckpointError,
        DataError,
        DivergenceError,
        RunLockedError,
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
