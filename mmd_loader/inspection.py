"""What `thagen inspect` reports per model: counts, the face roles found, whether it is usable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmd_loader.errors import ModelLoadError
from mmd_loader.face import detect_face
from mmd_loader.model import Model
from mmd_loader.overrides import FaceOverrides, overrides_for
from mmd_loader.roles import FaceRoles
from mmd_loader.terms import CLAUSES, TERMS_FLAG, is_unknown, model_terms
from mmd_loader.terms import summary as terms_summary
from mmd_loader.textures import describe_textures

MODEL_SUFFIXES = (".pmd", ".pmx")


@dataclass
class ModelReport:
    path: str
    member: str | None = None  # the model's name inside an archive
    format: str | None = None
    name: str | None = None
    vertices: int = 0
    faces: int = 0
    materials: int = 0
    bones: int = 0
    morphs: int = 0
    roles: dict[str, str] = field(default_factory=dict)  # role -> "morph (how)" or bone name
    head_box: dict | None = None  # top, chin, center_x, half_width, uncertain_top, notes
    eyes: dict[str, dict] = field(default_factory=dict)  # eye role -> chosen, reason, candidates
    flags: list[dict] = field(default_factory=list)  # code, role, value, message
    warnings: list[str] = field(default_factory=list)
    # Per material: {"material", "name", "texture", "sphere", "toon"}, each slot None or
    # {"reference", "file", "status", "detail", "size"} (+ "alpha" for the texture); status
    # "ok" / "substituted" / "missing" / "refused" / "unreadable" / "builtin" (see
    # mmd_loader.textures.describe_textures).
    textures: list[dict] = field(default_factory=list)
    # Terms of use (mmd_loader.terms.reader: status, clauses, evidence, licences, fields, ...)
    terms: dict = field(default_factory=dict)
    usable: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def find_models(path: Path, skipped: list | None = None) -> Iterator[tuple[Path, str | None]]:
    """(file, archive member) for every model under a file, folder or archive, in sorted order.

    A folder is walked by `mmd_loader.walk.walk_models` (its symlink rule); what it did not
    follow, and inner archives that are refused, are appended to `skipped` (`Skipped` entries)
    when given.
    """
    from mmd_loader.archive import is_archive_name

    path = Path(path)
    if path.is_dir():
        from mmd_loader.walk import walk_models

        files, passed_over = walk_models(path)
        if skipped is not None:
            skipped.extend(passed_over)
        for child in files:
            yield from find_models(child, skipped)
    elif is_archive_name(path.name):
        from mmd_loader.archive import list_models_and_problems
        from mmd_loader.walk import Skipped

        try:
            members, problems = list_models_and_problems(path)
        except ModelLoadError:
            yield path, None  # let loading report what is wrong with the archive
            return
        if skipped is not None:
            skipped.extend(Skipped(path / p.member, str(p)) for p in problems)
        for member in members:
            yield path, member
    else:
        yield path, None


def summarize(model: Model, roles: FaceRoles, path: Path, member: str | None) -> ModelReport:
    """The report row for a loaded model and its detected roles."""
    report = ModelReport(
        path=str(path),
        member=member,
        format=model.format,
        name=model.name,
        vertices=len(model.positions),
        faces=len(model.triangles),
        materials=len(model.materials),
        bones=len(model.bones),
        morphs=len(model.morphs),
        warnings=list(model.warnings),
        textures=describe_textures(model),
        usable=roles.usable,
        reasons=list(roles.problems),
    )
    for role, bound in roles.morphs.items():
        report.roles[role] = f"{bound.morph} ({bound.how})"
    for role, index in (("neck", roles.neck), ("head", roles.head)):
        if index >= 0:
            report.roles[role] = model.bones[index].name
    if roles.head_box is not None:
        box = roles.head_box
        report.head_box = {
            "top": round(box.top, 4),
            "chin": round(box.chin, 4),
            "center_x": round(float(box.center[0]), 4),
            "half_width": round(box.half_width, 4),
            "uncertain_top": None if box.uncertain_top is None else round(box.uncertain_top, 4),
            "notes": list(box.notes),
        }
    for role, choice in roles.eyes.items():
        report.eyes[role] = {
            "chosen": choice.chosen,
            "reason": choice.reason,
            "candidates": [_candidate(c) for c in choice.candidates],
        }
    report.flags = [
        {"code": f.code, "role": f.role, "value": f.value, "message": f.message}
        for f in roles.flags
    ]
    return report


def _candidate(c) -> dict:
    """One scored closure as plain JSON values."""
    return {
        "morph": c.morph,
        "how": c.how,
        "arch": None if c.arch is None else round(c.arch, 4),
        "raised": round(c.raised, 4),
        "elsewhere": round(c.elsewhere, 4),
        "smile": c.smile,
        "score": round(c.score, 4),
    }


def inspect_model(
    path: Path,
    member: str | None = None,
    overrides: FaceOverrides | None = None,
    root: Path | None = None,
) -> tuple[ModelReport, Model | None, FaceRoles | None]:
    """Load and analyse one model; a load failure becomes an unusable report, never an exception.

    `overrides` (see `overrides_for`) win over detection. Terms files are looked for up to
    `root` (default: the model's or the archive's folder).
    """
    from mmd_loader.loader import load

    try:
        model = load(path, member=member, companions=True) if member else load(path)
    except ModelLoadError as error:
        report = ModelReport(path=str(path), member=member, reasons=[str(error)])
        report.terms = model_terms(None, Path(path), root)
        return report, None, None
    roles = detect_face(model, overrides)
    report = summarize(model, roles, path, member)
    if member:
        extracted = model.root.joinpath(*Path(member).parts[-1:])
        report.terms = model_terms(model, extracted, root, Path(path), model.archive_root)
    else:
        report.terms = model_terms(model, Path(path), root)
    return report, model, roles


def inspect_paths(
    paths: list[Path],
    overrides: dict[str, FaceOverrides] | None = None,
    extra_flags: Callable[[Model, FaceRoles], list[dict]] | None = None,
) -> list[ModelReport]:
    """Reports for every model found under `paths`; `extra_flags(model, roles)` adds flags to
    each loaded model's report (the pipeline passes the flags of its renders)."""
    reports = []
    for path in paths:
        if not Path(path).exists():
            reports.append(ModelReport(path=str(path), reasons=[f"{path}: no such file or folder"]))
            continue
        skipped: list = []
        root = Path(path) if Path(path).is_dir() else Path(path).parent
        for file, member in find_models(Path(path), skipped):
            label = file / member if member else file
            forced = overrides_for(label, overrides)
            report, model, roles = inspect_model(file, member, forced, root)
            if extra_flags is not None and model is not None:
                report.flags = [*report.flags, *extra_flags(model, roles)]
            if model is not None and is_unknown(report.terms):
                report.flags = [*report.flags, terms_flag()]
            reports.append(report)
        reports += [ModelReport(path=str(s.path), reasons=[str(s)]) for s in skipped]
    return reports


def terms_flag() -> dict:
    """The flag of a model whose terms of use were not found."""
    message = "no readme, terms file or licence in its comments: terms of use unknown"
    return {"code": TERMS_FLAG, "role": None, "value": None, "message": message}


def terms_lines(terms: dict) -> list[str]:
    """The terms block of `inspect`'s text output: the summary, then each stated clause with its
    first evidence (file:line), and the fields found."""
    lines = [f"  terms     {terms_summary(terms)}"]
    evidence = terms.get("evidence") or {}
    for clause in [c for c in CLAUSES if c in evidence]:
        for item in evidence[clause][:2]:
            text = item["text"] if len(item["text"]) <= 60 else item["text"][:59] + "…"
            lines.append(f"  {'':<9} {clause} {item['value']}: {item['file']}:{item['line']} "
                         f"{text}")  # fmt: skip
    fields = terms.get("fields") or {}
    shown = ", ".join(f"{k} {v['value']}" for k, v in fields.items())
    if shown:
        lines.append(f"  {'':<9} {shown}")
    return lines


def format_reports(reports: list[ModelReport]) -> str:
    """A human-readable block per model."""
    from poses.roles import BONE_ROLES, MORPH_ROLES

    lines = []
    for r in reports:
        where = f"{r.path}!{r.member}" if r.member else r.path
        lines.append(where)
        if r.format:
            lines.append(
                f"  {r.format}  {r.vertices} vertices  {r.faces} faces  {r.materials} materials"
                f"  {r.bones} bones  {r.morphs} morphs"
            )
        for role in (*MORPH_ROLES, *BONE_ROLES):
            if role in r.roles:
                lines.append(f"  {role:<9} {r.roles[role]}")
            if role in r.eyes:
                lines.append(f"  {'':<9} {r.eyes[role]['reason']}")
        for role in sorted(set(r.roles) - {"left_eye", "right_eye", "mouth", "neck", "head"}):
            lines.append(f"  {role:<9} {r.roles[role]}")
        if r.head_box:
            box = r.head_box
            lines.append(f"  head box  top {box['top']:.3f}  chin {box['chin']:.3f}")
            lines.extend(f"  {'':<9} {note}" for note in box.get("notes", []))
        for flag in r.flags:
            role = f" [{flag['role']}]" if flag["role"] else ""
            lines.append(f"  flag      {flag['code']}{role}: {flag['message']}")
        for warning in r.warnings:
            lines.append(f"  warning   {warning}")
        if r.terms:
            lines += terms_lines(r.terms)
        verdict = "yes" if r.usable else "no: " + "; ".join(r.reasons)
        lines.append(f"  usable    {verdict}")
    usable = sum(r.usable for r in reports)
    lines.append(f"{len(reports)} models, {usable} usable for the THA1 pose")
    return "\n".join(lines)
