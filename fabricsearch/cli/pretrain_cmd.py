"""Pretraining commands: ``pretrain`` (synthetic fabrics → shipped model) and ``adapt``
(self-supervised adaptation to a library's own unlabelled images)."""

from __future__ import annotations

import argparse
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
from fabricsearch.config import AdaptConfig, PretrainConfig

#: The flags that set `PretrainConfig` / `AdaptConfig` fields of the same name; their
#: defaults (shown in --help) are the dataclasses'.
PRETRAIN_FLAGS = ("steps", "seed", "bits", "batch_fabrics", "input_size", "lr", "device", "amp")
ADAPT_FLAGS = ("epochs", "batch_size", "lr", "max_steps", "seed", "device", "amp")
DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps"


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the DVSH network on generated fabrics (makes the shipped default model)",
        description=(
            "Pretrain DVSH on a stream of procedurally generated fabrics (exact labels, list-wise "
            "loss with the fine-grained similarity, plus instance discrimination between photos "
            "of the same fabric). Writes OUT/pretrained-dvsh-<bits>.safetensors and its JSON. "
            "The shipped model is made by `fabricsearch pretrain fabricsearch/resources/models --steps N "
            "--seed S` (see fabricsearch/resources/models/README.md)."
        ),
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    add_config_flags(
        p,
        PRETRAIN_FLAGS,
        {
            "steps": "optimisation steps",
            "bits": "code length",
            "batch_fabrics": "fabrics per step (2 photos each)",
            "input_size": "network input side, px",
            "lr": "learning rate",
            "device": DEVICE_HELP,
            "amp": "mixed precision on CUDA",
        },
        PretrainConfig,
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_pretrain)

    p = subparsers.add_parser(
        "adapt",
        help="adapt the search model to this library's own images (no labels needed)",
        description=(
            "With the pretrained image network (the default, --backbone efficientnet-lite0): fit "
            "the label-free search head (ITQ) on the cached features of every photo and make it "
            "active if it passes the activation rule; this is what every import does while no "
            "trained model is active, and it ranks far better than the compact adaptation below "
            "(dtd10 mAP about 0.5 against 0.14; docs/backbones.md). "
            "With --backbone compact: fine-tune the base network of the active model (or of the "
            "shipped pretrained model) "
            "on the library's unlabelled images with a contrastive objective between two "
            "augmented views (crops, rotations, scale, lighting, blur; colour is never changed) "
            "and a ranking by measured colour and texture similarity, then re-encode the "
            "library and make the adapted model active if it passes the activation rule "
            "(docs/evaluation.md: not worse than the active model on the labelled test split, "
            "codes not degenerate); --activate forces it."
        ),
    )
    p.add_argument("library", metavar="LIB", help="library folder")
    p.add_argument(
        "--backbone",
        default=None,
        help="efficientnet-lite0 (default: label-free head on pretrained features) or compact "
        "(self-supervised fine-tuning of the compact network)",
    )
    p.add_argument(
        "--bits",
        type=int,
        default=None,
        help="code length of the label-free head (default: the one an import fits)",
    )
    add_config_flags(
        p,
        ADAPT_FLAGS,
        {
            "epochs": "passes over the images (compact)",
            "batch_size": "images per step (compact)",
            "lr": "learning rate (compact)",
            "max_steps": "stop after this many steps (0: off)",
            "device": DEVICE_HELP,
            "amp": "mixed precision on CUDA",
        },
        AdaptConfig,
    )
    p.add_argument(
        "--split",
        action="append",
        choices=("train", "val", "test"),
        help="adapt on these splits only (default: every image); repeatable",
    )
    p.add_argument(
        "--from", dest="start", default="active", help="'active', 'pretrained' or a path"
    )
    p.add_argument(
        "--activate", action="store_true", help="make the adapted model active in any case"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_adapt)


@user_errors
def run_pretrain(args: argparse.Namespace) -> int:
    from fabricsearch.services.training import pretrain

    cfg = build_config(PretrainConfig, **config_values(args, PRETRAIN_FLAGS))
    with tqdm_progress(not args.json) as (progress, cancel):
        result = pretrain(cfg, args.out, progress=progress, cancel=cancel)
    summary = {
        "path": str(result.path),
        "steps": result.steps,
        "device": result.device,
        "train_time_s": round(result.train_time_s, 1),
        "metrics": result.metrics,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"wrote {result.path} ({result.steps} steps on {result.device}, {result.train_time_s:.0f} s)"
        )
        for k, v in result.metrics.items():
            if k.startswith("synthetic"):
                print(f"  {k}: {v:.3f}")
    return 0


@user_errors
def run_adapt(args: argparse.Namespace) -> int:
    from fabricsearch.cli.libraries import open_library
    from fabricsearch.services.imports import fit_auto_head
    from fabricsearch.services.training import (
        COMPACT,
        BackboneError,
        adapt,
        default_backbone_for,
        is_pretrained,
    )
    from fabricsearch.services.versions import read_decision

    cfg = build_config(
        AdaptConfig,
        **config_values(args, ADAPT_FLAGS),
        splits=tuple(args.split or ()),
        start=args.start,
    )
    backbone = args.backbone or default_backbone_for("itq")
    try:
        pretrained = is_pretrained(backbone)
    except BackboneError as exc:
        raise UserError(str(exc)) from exc
    with open_library(args.library) as lib, tqdm_progress(not args.json) as (progress, cancel):
        if pretrained:
            bits = {} if args.bits is None else {"bits": args.bits}
            fitted = fit_auto_head(lib, progress=progress, cancel=cancel, backbone=backbone, **bits)
            if fitted is None:
                raise UserError("the library needs at least two photos that decode")
            info = fitted
            if args.activate:
                lib.set_active_model(info.version)
        else:
            assert backbone == COMPACT
            info = adapt(
                lib, cfg, progress=progress, cancel=cancel, activate=True if args.activate else None
            )
        active = lib.active_model()
        decision = read_decision(info)
        summary = {
            "version": info.version,
            "method": info.method,
            "bits": info.bits,
            "path": str(info.path),
            "active": active is not None and active.version == info.version,
            "activation": None if decision is None else decision.to_dict(),
            "metrics": info.metrics,
            "note": info.note,
        }
    if args.json:
        print_json(summary)
    elif summary["active"]:
        print(f"adapted model {info.version} is now active")
    else:
        reason = decision.message() if decision is not None else "not activated"
        print(f"adapted model {info.version}: {reason}")
        print(f"  to use it anyway: fabricsearch models LIB --activate {info.version}")
    if not args.json:
        for k, v in info.metrics.items():
            print(f"  {k}: {v:.4g}")
    return 0
