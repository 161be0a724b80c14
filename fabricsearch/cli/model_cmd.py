"""Model commands: ``train``, ``encode``, ``eval``, ``models``.

Thin wrappers: parse arguments, call `fabricsearch.services`, print a table or JSON.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fabricsearch.cli.common import (
    UserError,
    add_config_flags,
    build_config,
    config_values,
    print_json,
    tqdm_progress,
    user_errors,
)
from fabricsearch.config import CODE_LENGTHS, FINETUNE_BLOCKS

#: The train command's flags that set `TrainConfig` fields of the same name; their defaults
#: (shown in --help) are the dataclass's, the one place every default lives (the window's
#: retrain dialog starts from `TrainConfig()` too).
TRAIN_FLAGS = (
    "method",
    "bits",
    "epochs",
    "batch_size",
    "lr",
    "input_size",
    "patience",
    "seed",
    "device",
    "compare_head",
)


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a hashing model on the library's labelled images, then encode the library",
        description=(
            "Train a hashing model (default DVSH, 64 bits) on the labelled train/val images of "
            "the library, encode every image, evaluate it and the active model on the same "
            "test split, and make the new model active only if that evaluation is meaningful "
            "(at least 10 test queries in 2 classes, codes not degenerate) and the new model is "
            "not worse (test mAP at least the active one's minus 0.01); otherwise it is kept "
            "inactive and the reason printed (--activate forces it). LSH and ITQ need no "
            "labels: they are fitted on every image of the train split. An interrupted run can "
            "continue with --resume."
        ),
    )
    p.add_argument("library", metavar="LIB", help="library folder")
    add_config_flags(
        p,
        TRAIN_FLAGS,
        {
            "method": "hashing method (see `fabricsearch models --methods`)",
            "bits": f"code length K ({', '.join(map(str, CODE_LENGTHS))})",
            "epochs": "passes over the training images (--preset thorough sets its own)",
            "input_size": "network input side, px (compact)",
            "patience": "early-stopping patience (0: off)",
            "batch_size": "training batch size",
            "lr": "learning rate",
            "seed": "random seed (initialisation, split order, batches)",
            "device": "auto | cpu | cuda | cuda:N | mps",
            "compare_head": "with the default method (DVSH on a pretrained backbone) and enough "
            "validation images, also train the simple supervised head (seconds) and keep the "
            "one with the higher validation mAP",
        },
    )
    p.add_argument(
        "--backbone",
        default=None,
        help="image network under the method: efficientnet-lite0 (default, ImageNet-pretrained, "
        "frozen; trains on cached features in seconds), efficientnet-lite1/-lite2, or compact "
        "(the paper's BaseNet, trained from scratch on pixels)",
    )
    p.add_argument(
        "--preset",
        choices=("quick", "thorough"),
        help="quick: the pretrained network stays, only the search layers train (seconds); "
        "thorough: also fine-tunes its last blocks (GPU recommended). Flags given explicitly "
        "win over the preset",
    )
    p.add_argument(
        "--finetune",
        type=int,
        nargs="?",
        const=FINETUNE_BLOCKS,
        default=None,
        metavar="BLOCKS",
        help=f"also train the last BLOCKS (default {FINETUNE_BLOCKS}) blocks of the pretrained "
        "network, on augmented photos (minutes to hours on a CPU; a GPU is recommended)",
    )
    p.add_argument(
        "--views",
        dest="feature_views",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also train on cached mirrored/zoomed/rotated views of each photo (measured: no "
        "gain, several times the time; default: off, as in the window)",
    )
    p.add_argument(
        "--no-amp", dest="amp", action="store_false", default=None,
        help="no mixed precision on CUDA",
    )  # fmt: skip
    p.add_argument(
        "--init",
        default=None,
        help="start from: 'scratch', 'pretrained' (the shipped synthetic-pretrained network), "
        "'adapted' (this library's newest adapted model) or a path to weights",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option, e.g. tau=8 or variational=false (JSON values); repeatable",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--note", default="", help="a note stored with the model")
    p.add_argument(
        "--activate",
        action="store_true",
        help="make the new model active even if it does not pass the activation rule",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("encode", help="re-encode every image with a model")
    p.add_argument("library", metavar="LIB")
    p.add_argument("--model", metavar="VERSION", help="model version (default: active)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_encode)

    p = subparsers.add_parser(
        "eval",
        help="evaluate a model: mAP, NDCG@50, precision@k, PR curve (test split vs train+val)",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("--model", metavar="VERSION", help="model version (default: active)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser("models", help="list the library's models, or activate one")
    p.add_argument("library", metavar="LIB", nargs="?")
    p.add_argument("--activate", metavar="VERSION")
    p.add_argument("--methods", action="store_true", help="list the available hashing methods")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_models)


def _open(path: str) -> Any:
    from fabricsearch.cli.libraries import open_library

    return open_library(path)


def _default_backbone(method: str) -> str:
    from fabricsearch.services.training import default_backbone_for

    return default_backbone_for(method)


def _method_options(method: str, items: list[str]) -> dict[str, Any]:
    """Typed method options (see `registry.parse_method_options`); refusals are user errors."""
    from fabricsearch.services.training import parse_method_options

    try:
        return parse_method_options(method, items)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _check_method_config(cfg: Any) -> None:
    """The method's configuration as `train` will build it, checked before anything runs: a
    value it refuses (``--option tau=-1``, too many bits) is a user error. A ValueError from
    inside the run itself is a bug (the training's own refusals are `TrainingError`s)."""
    from fabricsearch.services.training import check_method_config

    try:
        check_method_config(cfg)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


@user_errors
def run_train(args: argparse.Namespace) -> int:
    from fabricsearch.config import TrainConfig, replace
    from fabricsearch.services.training import (
        describe_choice,
        get_method_class,
        read_choice,
        resolve_init,
        stop_reason,
        train,
    )
    from fabricsearch.services.versions import read_decision

    preset: dict[str, Any] = {}
    if args.preset:
        from fabricsearch.services.training import get_preset

        preset = get_preset(args.preset).changes
    # The dataclass's defaults, then the preset, then the flags given explicitly.
    values = {
        **preset,
        **config_values(
            args, (*TRAIN_FLAGS, "finetune", "feature_views", "amp", "init", "backbone")
        ),
    }
    method = values.setdefault("method", TrainConfig.method)
    get_method_class(method)
    values.setdefault("backbone", _default_backbone(method))
    values["method_options"] = _method_options(method, args.option)
    cfg = build_config(TrainConfig, **values)
    _check_method_config(cfg)
    with _open(args.library) as lib, tqdm_progress(not args.json) as (progress, cancel):
        init = resolve_init(cfg.init, lib)
        cfg = replace(cfg, init=str(init) if init is not None else "scratch")
        try:
            info = train(
                lib,
                cfg,
                progress,
                cancel,
                resume=args.resume,
                note=args.note,
                activate=True if args.activate else None,
            )
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        active = lib.active_model()
        decision = read_decision(info)
        choice = read_choice(info)
        summary = {
            "version": info.version,
            "method": info.method,
            "bits": info.bits,
            "path": str(info.path),
            "active": active is not None and active.version == info.version,
            "activation": None if decision is None else decision.to_dict(),
            "metrics": info.metrics,
            "images_encoded": lib.count_codes(info.version),
            "method_choice": choice,
            "stopped_early": stop_reason(info) or None,
        }
    if args.json:
        print_json(summary)
    else:
        reason = "" if decision is None else decision.message()
        if summary["active"]:
            print(f"model {info.version} trained and active ({info.path})")
            if reason:
                print(f"  activated: {reason}")
        else:
            print(f"model {info.version} trained, {reason or 'not activated'} ({info.path})")
            print(f"  the active model stays {active.version if active else 'none'}; ", end="")
            print(f"to use the new one anyway: fabricsearch models LIB --activate {info.version}")
        if choice:
            print(f"  {describe_choice(choice)}")
        if summary["stopped_early"]:
            print(f"  {summary['stopped_early']}")
        for key, value in info.metrics.items():
            print(f"  {key:>14}: {value:.4f}")
        print(f"  encoded {summary['images_encoded']} images")
    return 0


@user_errors
def run_encode(args: argparse.Namespace) -> int:
    from fabricsearch.services.training import encode

    with _open(args.library) as lib, tqdm_progress(not args.json) as (progress, cancel):
        info, encoded = encode(lib, args.model, args.device, progress=progress, cancel=cancel)
    out = {"version": info.version, "images_encoded": encoded}
    if args.json:
        print_json(out)
    else:
        print(f"encoded {encoded} images with model {info.version}")
    return 0


@user_errors
def run_eval(args: argparse.Namespace) -> int:
    from fabricsearch.services.training import evaluate

    with _open(args.library) as lib:
        result, info, plots = evaluate(lib, args.model)
    summary = result.summary()
    summary = {
        "mAP": summary["mAP"],
        "ndcg@50": summary[f"ndcg@{result.ndcg_k}"],
        "precision@10": result.precision.get(10),
        "bits": result.bits,
        "queries": result.queries,
        "database": result.database,
        "model": info.version,
        "precision@k": {str(k): v for k, v in result.precision.items()},
        "plots": [str(p) for p in plots],
    }
    if args.json:
        print_json(summary)
    else:
        print(f"model {info.version} ({info.method}, {result.bits} bits)")
        print(f"  queries (test): {result.queries}   database (train+val): {result.database}")
        print(f"  mAP:          {result.mAP:.4f}")
        print(f"  NDCG@50:      {result.ndcg:.4f}")
        for k, v in result.precision.items():
            print(f"  precision@{k:<4}{v:.4f}")
        for p in plots:
            print(f"  plot: {p}")
    return 0


@user_errors
def run_models(args: argparse.Namespace) -> int:
    from fabricsearch.services.training import available_methods

    if args.methods or args.library is None:
        methods = available_methods()
        if args.json:
            print_json(methods)
        else:
            print("\n".join(methods))
        return 0
    with _open(args.library) as lib:
        if args.activate:
            from fabricsearch.services.versions import activate

            activate(lib, args.activate)
        rows = model_rows(lib)
    if args.json:
        print_json(rows)
    elif not rows:
        print("no models yet (run `fabricsearch train LIB`)")
    else:
        for r in rows:
            mark = "*" if r["active"] else " "
            test = r["test"]
            if test is None:
                metric = "no codes"
            elif test["mAP"] is None:
                metric = "no labelled test split"
            else:
                metric = f"mAP {test['mAP']:.3f} ({test['queries']} queries)"
            line = f"{mark} {r['version']:<36} {r['method']:<8} {r['bits']:>4} bits  {metric}"
            if not r["active"] and r["activation"] and not r["activation"]["activate"]:
                line += f"  [not activated: {r['activation']['reason']}]"
            print(line)
    if args.activate:
        print(f"active model: {args.activate}", file=sys.stderr)
    return 0


def model_rows(lib: Any) -> list[dict[str, Any]]:
    """Every model with its figures and activation decision (`services.versions.model_rows`)."""
    from fabricsearch.services.versions import model_rows as rows

    return rows(lib)
