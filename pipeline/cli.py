"""Subcommands of the dataset pipeline: scan, generate, merge, report, review, dataset-default."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_CHARACTERS = 24  # procedural characters in `make dataset` without models
DEFAULT_HELD_OUT = 2  # of those, the last 2×2 seeds are the val and test characters


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="load models and report their face roles, flags and usability"
    )
    p.add_argument("paths", nargs="+", type=Path, help="model files, folders or zips")
    p.add_argument("--json", action="store_true", help="one JSON object per model, per line")
    p.add_argument("--overrides", type=Path, help="YAML/CSV file of per-model face overrides")
    p.add_argument(
        "--no-render", action="store_true", help="skip the flags that need renders (no GL)"
    )
    p.set_defaults(handler=inspect_command)

    scan = sub.add_parser("scan", help="inspect every model under folders/zips: catalog.parquet")
    scan.add_argument("models", nargs="+", type=Path, help="model folders, files or zips")
    scan.add_argument("--out", "-o", type=Path, default=Path("catalog.parquet"))
    scan.add_argument("--jobs", type=int, default=-1, help="processes (default: all cores)")
    _timeout_arg(scan)
    _runner_args(scan)
    _split_args(scan)
    _overrides_arg(scan)
    scan.set_defaults(handler=scan_command)

    gen = sub.add_parser("generate", help="render a dataset of WebDataset shards (resumable)")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--models", type=Path, nargs="+", help="model folders (scanned first)")
    source.add_argument("--catalog", type=Path, help="a catalog.parquet from `thagen scan`")
    gen.add_argument("--out", "-o", type=Path, required=True, help="dataset folder")
    _generate_args(gen, splits=True)
    gen.set_defaults(handler=generate_command)

    merge = sub.add_parser("merge", help="join slice outputs (--shard-index) into one dataset")
    merge.add_argument("out", type=Path)
    merge.add_argument("parts", nargs="*", type=Path, help="slice output folders (default: OUT)")
    merge.set_defaults(handler=merge_command)

    report = sub.add_parser("report", help="a self-contained HTML report of a dataset")
    report.add_argument("dataset", type=Path)
    report.add_argument("--out", "-o", type=Path, default=None, help="default: DATASET/report.html")
    report.add_argument("--samples", type=int, default=12, help="example triples shown")
    report.set_defaults(handler=report_command)

    review = sub.add_parser(
        "review", help="an HTML page of every model, flagged ones first, to review by eye"
    )
    review.add_argument("models", nargs="+", type=Path, help="model folders/files, or a catalog")
    review.add_argument("--out", "-o", type=Path, default=Path("review.html"))
    review.add_argument("--workers", type=int, default=0, help="local processes (default: cores)")
    review.add_argument("--no-progress", action="store_true")
    review.add_argument(
        "--schema",
        default="tha1",
        help="the sheets' poses and the parameters whose visibility is shown (tha1, tha3, ...)",
    )
    _brows_arg(
        review,
        "the brows as a run with this choice draws them (default: the schema's, as generate; "
        "mix is shown over the hair)",
    )
    _runner_args(review)
    _overrides_arg(review)
    review.set_defaults(handler=review_command)

    default = sub.add_parser(
        "dataset-default", help="the default dataset (procedural characters unless --models)"
    )
    default.add_argument("--out", "-o", type=Path, required=True)
    default.add_argument("--models", type=Path, default=None, help="real models instead")
    default.add_argument("--characters", type=int, default=DEFAULT_CHARACTERS)
    default.add_argument(
        "--held-out",
        type=int,
        default=DEFAULT_HELD_OUT,
        help="procedural faces in each of val and test (default %(default)s), with all their looks",
    )
    default.add_argument(
        "--looks-per-face",
        type=int,
        default=1,
        help="procedural characters sharing each face construction (one family: different "
        "hair, colours, ornaments; default %(default)s)",
    )
    _generate_args(default)
    default.set_defaults(handler=dataset_default_command)


def _check_count(option: str, value: int | None, lo: int, hi: int = 10**9) -> None:
    """A count option inside [lo, hi], or one ValueError naming it (before any work starts)."""
    if value is not None and not lo <= value <= hi:
        raise ValueError(f"{option} must be in {lo}..{hi}, not {value}")


def _split_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("splits (by character family, stable when models are added)")
    group.add_argument("--train", type=float, default=0.9)
    group.add_argument("--val", type=float, default=0.05)
    group.add_argument("--test", type=float, default=0.05)
    ids = "family ids (fam_…) or character ids, or their prefixes; a whole family moves"
    group.add_argument("--val-characters", nargs="*", default=[], help=ids)
    group.add_argument("--test-characters", nargs="*", default=[], help=ids)


def _timeout_arg(parser: argparse.ArgumentParser) -> None:
    from pipeline.deadline import DEFAULT_MODEL_TIMEOUT

    parser.add_argument(
        "--model-timeout",
        type=float,
        default=DEFAULT_MODEL_TIMEOUT,
        metavar="SECONDS",
        help="per-model time limit for load, face detection and upload; a model over it is a "
        "failure naming the stage (default %(default)g; 0: none)",
    )


def _generate_args(parser: argparse.ArgumentParser, splits: bool = False) -> None:
    parser.add_argument("--schema", default="tha1", help="tha1, tha2, tha3 or a schema YAML file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=100, help="per character")
    parser.add_argument(
        "--size", type=int, default=None, help="image size in pixels (default: the schema's)"
    )
    parser.add_argument(
        "--head-fraction",
        type=float,
        default=None,
        help="head height / image height (default: the schema's; tha1 0.5, tha3 0.25)",
    )
    parser.add_argument("--shading", default="phong", choices=("phong", "toon"))
    parser.add_argument("--supersample", type=int, default=2)
    parser.add_argument(
        "--lighting",
        default="character",
        choices=("character", "example"),
        help="draw lighting per character (rest image shared) or per example",
    )
    _brows_arg(
        parser,
        "eyebrows as modelled, over the hair (as drawings show them), or one of the two per "
        "example, recorded in its JSON (default: mix for a schema with eyebrows, else modelled)",
    )
    parser.add_argument("--png-level", type=int, default=1, help="PNG compress level 0..9")
    parser.add_argument("--shard-size", type=int, default=1000, help="max examples per shard")
    parser.add_argument("--shard-bytes", type=int, default=1 << 30, help="max bytes per shard")
    parser.add_argument("--workers", type=int, default=0, help="local processes (default: cores)")
    _timeout_arg(parser)
    parser.add_argument(
        "--verify",
        default="full",
        choices=("full", "quick"),
        help="on resume, check each complete shard's sha256 (full, default: about 1.8 GB/s) or "
        "only its size and member index (quick)",
    )
    parser.add_argument(
        "--gpus",
        default=None,
        help="render on these NVIDIA GPUs (CUDA numbers, e.g. 0,1,2,3): worker i uses GPU "
        "i mod N, found through EGL device enumeration",
    )
    _runner_args(parser)
    parser.add_argument("--shard-index", type=int, default=None, help="render slice I of N")
    parser.add_argument("--num-shards", type=int, default=None, help="number of slices N")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the shards of a dataset OUT made with other options (default: refuse)",
    )
    parser.add_argument(
        "--exclude-flags",
        default="",
        help="leave out models carrying any of these quality flags (CODE,CODE,...; see "
        "thagen review)",
    )
    parser.add_argument(
        "--terms-exclude",
        default="ai_training",
        metavar="CLAUSES",
        help="leave out models whose terms of use forbid, or put a condition on, any of these "
        "clauses (ai_training, outside_mmd, redistribution, modification, commercial, adult, "
        "violence, political_religious, credit; 'unknown': also models whose terms were not "
        "found; 'none': keep every model). Default: %(default)s",
    )
    _overrides_arg(parser)
    parser.add_argument(
        "--poses",
        type=Path,
        default=None,
        metavar="MOTIONS",
        help="draw each example's pose from the frames of this folder's MMD motions (.vmd, "
        ".vpd), mapped through each character's own morphs and bones, instead of the schema's "
        "laws",
    )
    parser.add_argument(
        "--poses-mix",
        type=float,
        default=0.0,
        metavar="P",
        help="with --poses: the share of examples drawn from the schema's laws instead (default 0)",
    )
    if splits:
        _split_args(parser)


def _brows_arg(parser: argparse.ArgumentParser, text: str) -> None:
    from pipeline.config import BROW_CHOICES

    parser.add_argument("--brows", default=None, choices=BROW_CHOICES, help=text)


def _runner_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runner", default=None, choices=("local", "dask"), help="backend (default: local)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="Dask scheduler tcp://HOST:PORT (implies --runner dask)"
    )


def _runner(args: argparse.Namespace, workers: int):
    from pipeline.runners import make_runner

    name = args.runner or ("dask" if args.scheduler else "local")
    devices = None
    if getattr(args, "gpus", None) is not None:
        from render.devices import gpu_device_indices, parse_gpus

        devices = gpu_device_indices(parse_gpus(args.gpus))
    return make_runner(name, workers=workers, scheduler=args.scheduler, devices=devices)


def _overrides_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overrides", type=Path, default=None, help="YAML/CSV of per-model face overrides"
    )


def _overrides(args: argparse.Namespace) -> dict[str, dict]:
    from mmd_loader.overrides import load_overrides, table_to_json

    return table_to_json(load_overrides(args.overrides)) if args.overrides else {}


def _splits(args: argparse.Namespace):
    from pipeline.splits import SplitConfig

    explicit = {}
    if args.val_characters:
        explicit["val"] = tuple(args.val_characters)
    if args.test_characters:
        explicit["test"] = tuple(args.test_characters)
    return SplitConfig(train=args.train, val=args.val, test=args.test, explicit=explicit)


def _config(args: argparse.Namespace, splits):
    from pipeline.config import GenerateConfig

    return GenerateConfig(
        schema=args.schema,
        seed=args.seed,
        examples_per_character=args.examples,
        image_size=args.size,
        head_fraction=args.head_fraction,
        shading=args.shading,
        supersample=args.supersample,
        lighting=args.lighting,
        brows=args.brows,
        png_compress_level=args.png_level,
        shard_max_examples=args.shard_size,
        shard_max_bytes=args.shard_bytes,
        splits=splits,
        overrides=_overrides(args),
        exclude_flags=_flag_codes(args.exclude_flags),
        terms_exclude=_terms_policy(args.terms_exclude),
        **_pose_sources(args),
    )


def _pose_sources(args: argparse.Namespace) -> dict:
    """The config's motions for --poses (each file left out is one line on stderr)."""
    if args.poses is None:
        if args.poses_mix:
            raise ValueError("--poses-mix needs --poses MOTIONS")
        return {}
    if not 0.0 <= args.poses_mix < 1.0:
        raise ValueError(f"--poses-mix must be in [0, 1), not {args.poses_mix:g}")
    from pipeline.motions import absolute, scan_motions

    motions, skipped = scan_motions(args.poses)
    for line in skipped:
        print(line, file=sys.stderr)
    if not motions:
        raise ValueError(f"--poses {args.poses}: no usable motion (.vmd, .vpd) in the folder")
    frames = sum(m.frames for m in motions)
    print(f"poses from {len(motions)} motions ({frames} frames) in {args.poses}", file=sys.stderr)
    return {
        "poses": absolute(args.poses),
        "motions": tuple(tuple(m.to_json()) for m in motions),
        "poses_mix": args.poses_mix,
    }


def _terms_policy(text: str) -> tuple[str, ...]:
    """`--terms-exclude`: clause names (and 'unknown'), or 'none'."""
    from pipeline.config import check_terms_exclude

    names = tuple(sorted({c.strip() for c in text.split(",") if c.strip()}))
    if names == ("none",):
        return ()
    try:
        check_terms_exclude(names)
    except ValueError as error:
        raise ValueError(f"--terms-exclude: {error}") from None
    return names


def _flag_codes(text: str) -> tuple[str, ...]:
    from mmd_loader.terms import TERMS_FLAG
    from pipeline.quality import FLAG_CODES

    known = (*FLAG_CODES, TERMS_FLAG)
    codes = tuple(sorted({c.strip() for c in text.split(",") if c.strip()}))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ValueError(f"--exclude-flags: unknown flag(s) {unknown}; flags: {', '.join(known)}")
    return codes


def inspect_command(args: argparse.Namespace) -> int:
    import json

    from mmd_loader.inspection import format_reports, inspect_paths
    from mmd_loader.overrides import load_overrides

    overrides = load_overrides(args.overrides) if args.overrides else None
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    extra = None
    if not args.no_render:
        from pipeline.catalog import render_flags_of

        extra = render_flags_of
    reports = inspect_paths(args.paths, overrides, extra)
    if args.json:
        for report in reports:
            print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(format_reports(reports))
    return 0 if reports else 1


def scan_command(args: argparse.Namespace) -> int:
    from pipeline.catalog import scan, write_catalog

    _check_count("--jobs", args.jobs, -1, 4096)
    splits, overrides = _splits(args), _overrides(args)
    with _runner(args, max(args.jobs, 0)) as runner:
        table = scan(
            args.models, splits, overrides=overrides, runner=runner, timeout=args.model_timeout
        )
    write_catalog(table, args.out)
    usable = table[table["usable"].astype(bool)]
    print(
        f"{args.out}: {len(table)} characters in {table['family'].nunique()} families, "
        f"{len(usable)} usable (in {usable['family'].nunique()} families), "
        f"{sum(len(d) for d in table['duplicates'])} duplicate files"
    )
    from pipeline.catalog import family_table

    for row in family_table(table).itertuples():
        print(f"  family {row.family} ({row.split}): {', '.join(row.files)}")
    for row in table[~table["usable"].astype(bool)].itertuples():
        member = f"/{row.member}" if isinstance(row.member, str) and row.member else ""
        print(f"  unusable {row.path}{member}: {'; '.join(map(str, row.reasons))}")
    _print_terms(table)
    return 0


def _print_terms(table) -> None:
    """One line per model: its terms of use (clauses stated, licences), then a tally."""
    from mmd_loader.terms import CLAUSES, is_unknown, summary
    from pipeline.catalog import row_terms

    rows = table.sort_values(["path", "member"], na_position="first").to_dict("records")
    print("terms of use (thagen inspect --json shows each clause's sentences):")
    unknown = 0
    for row in rows:
        terms = row_terms(row)
        unknown += is_unknown(terms)
        label = f"{row['path']}/{row['member']}" if isinstance(row["member"], str) else row["path"]
        print(f"  {label}: {summary(terms)}")
    refusing = ("forbidden", "conditional")
    ai = sum(row_terms(r).get("clauses", {}).get(CLAUSES[0]) in refusing for r in rows)
    print(
        f"  {len(rows)} models: terms unknown for {unknown}; AI training forbidden or "
        f"conditional for {ai}"
    )


def generate_command(args: argparse.Namespace) -> int:
    return _generate(args, _config(args, _splits(args)), args.models, args.catalog)


def _generate(args: argparse.Namespace, config, models, catalog_path) -> int:
    from pipeline.catalog import read_catalog, scan
    from pipeline.deadline import check_timeout
    from pipeline.generate import Slice, generate
    from pipeline.lock import holding
    from pipeline.rerun import check_rerun

    _check_count("--workers", args.workers, 0, 4096)
    part = None
    if args.shard_index is not None or args.num_shards is not None:
        if args.shard_index is None or args.num_shards is None:
            raise ValueError("--shard-index and --num-shards go together")
        part = Slice(args.shard_index, args.num_shards)
    timeout = check_timeout(args.model_timeout)
    # The folder's lock first: a second writer is refused before it scans anything.
    key = None if part is None else (part.index, part.count)
    with holding(args.out, "generate", key), _runner(args, args.workers) as runner:
        check_rerun(args.out, config, args.overwrite)  # before the scan: nothing is lost
        if catalog_path is not None:
            catalog = read_catalog(catalog_path)
        else:
            catalog = scan(
                models,
                config.splits,
                progress=not args.no_progress,
                overrides=config.overrides,
                runner=runner,
                timeout=timeout,
            )
        _warn_empty_splits(catalog, config.splits)
        result = generate(
            config,
            catalog,
            args.out,
            runner,
            part,
            progress=not args.no_progress,
            verify=args.verify,
            model_timeout=timeout,
            overwrite=args.overwrite,
        )
    info = result["dataset"]
    print(f"{args.out}: rendered {result['rendered']} shards, {result['skipped']} already complete")
    if info is None:
        print(f"slice {part.index}/{part.count} done; when all are, run: thagen merge {args.out}")
    else:
        _print_counts(info)
    return 0


def _warn_empty_splits(catalog, splits) -> None:
    """Say so when a split that should have characters got none (few models, hash-assigned)."""
    usable = catalog[catalog["usable"]]
    for split in ("val", "test"):
        wanted = getattr(splits, split) > 0 or split in splits.explicit
        if wanted and not (usable["split"] == split).any():
            print(
                f"warning: no usable character is in the {split} split ({len(usable)} usable;"
                f" splits are drawn by hash of the family id); name some with"
                f" --{split}-characters FAMILY_OR_CHARACTER_ID_PREFIX",
                file=sys.stderr,
            )


def _print_counts(info: dict) -> None:
    for split, counts in info["splits"].items():
        print(
            f"  {split:5} {counts['examples']:7} examples  {counts['characters']:4} characters"
            f"  {counts['shards']:4} shards"
        )
    c = info["counts"]
    print(f"  models {c['models']}, usable {c['usable']}, failures {c['failures']}")


def merge_command(args: argparse.Namespace) -> int:
    from pipeline.merge import merge

    info = merge(args.out, args.parts)
    print(f"{args.out}: merged")
    _print_counts(info)
    return 0


def review_command(args: argparse.Namespace) -> int:
    from pipeline.catalog import read_catalog, scan
    from pipeline.review import write_review

    _check_count("--workers", args.workers, 0, 4096)
    overrides = _overrides(args)
    with _runner(args, args.workers) as runner:
        if len(args.models) == 1 and args.models[0].suffix == ".parquet":
            catalog = read_catalog(args.models[0])
        else:
            progress = not args.no_progress
            catalog = scan(args.models, overrides=overrides, progress=progress, runner=runner)
        summary = write_review(
            catalog, args.out, runner, overrides, not args.no_progress, args.schema, args.brows
        )
    print(
        f"wrote {args.out}: {summary['models']} models, {summary['usable']} usable, "
        f"{summary['flagged']} flagged"
    )
    for code, value in summary["flags"].items():
        print(f"  {code:24} {value['models']:5} models  {value['share']:.0%}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    from pipeline.report import write_report

    _check_count("--samples", args.samples, 0, 10000)
    out = args.out or args.dataset / "report.html"
    write_report(args.dataset, out, samples=args.samples)
    print(f"wrote {out}")
    return 0


def held_out_splits(ids: list[str], faces: list[int], held_out: int) -> dict[str, tuple]:
    """The explicit val and test characters of `dataset-default`: every look of the last
    `held_out` faces is val, of the `held_out` faces before them test (none when there are
    fewer than 4 × held_out faces)."""
    distinct = sorted(set(faces))
    if held_out <= 0 or len(distinct) < 4 * held_out:
        return {}
    val, test = set(distinct[-held_out:]), set(distinct[-2 * held_out : -held_out])
    pairs = list(zip(ids, faces, strict=True))
    return {
        "val": tuple(i for i, f in pairs if f in val),
        "test": tuple(i for i, f in pairs if f in test),
    }


def dataset_default_command(args: argparse.Namespace) -> int:
    """Procedural characters (seeds 0..N-1, faces shared by --looks-per-face of them; every look
    of the last --held-out faces is val, of the ones before them test) unless --models is given,
    then `generate` into --out."""
    from pipeline.splits import SplitConfig

    _check_count("--characters", args.characters, 1, 100000)
    _check_count("--held-out", args.held_out, 0, 100000)
    models = args.models
    splits = SplitConfig()
    if models is None:
        from characters.batch import shared_faces, write_characters
        from pipeline.identity import model_identity

        models = args.out / "characters"
        seeds = list(range(args.characters))
        faces = shared_faces(seeds, args.looks_per_face)
        begin = time.perf_counter()
        paths, written = write_characters(models, seeds, faces, workers=args.workers)
        seconds = time.perf_counter() - begin
        ids = [model_identity(path) for path in paths]
        explicit = held_out_splits(ids, faces, args.held_out)
        splits = SplitConfig(train=1.0, val=0.0, test=0.0, explicit=explicit)
        print(
            f"{models}: {len(paths)} procedural characters ({len(set(faces))} faces), "
            f"{written} written in {seconds:.1f} s, the rest already there"
        )
    code = _generate(args, _config(args, splits), [models], None)
    print(f"dataset in {args.out} (report: thagen report {args.out})")
    return code
