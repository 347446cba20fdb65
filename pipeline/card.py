"""The dataset card: `README.md` in Hugging Face's format, written into every dataset folder.

A YAML header (pretty_name, `license: other` with `license_link: attributions.csv`,
task_categories, size_categories, tags, and `configs` naming the shards of each split, so
`datasets.load_dataset(FOLDER)` and the Hub's viewer read them), then how the dataset was made
(thagen version, schema, config, counts, splits), the terms policy used and what it left out,
the attributions table and the known limitations. Nothing in it records time or host: the same
dataset gives the same bytes.
"""

from __future__ import annotations

import json

import pandas as pd

from mmd_loader.terms import CLAUSES, is_unknown
from pipeline.attribution import model_label, models_root
from pipeline.catalog import row_terms
from pipeline.terms_policy import TALLY_VALUES, describe, excluded_by_terms, tally, with_defaults

TASK_CATEGORIES = ("image-to-image",)
TAGS = ("anime", "talking-head", "mikumikudance", "mmd", "synthetic", "thagen", "webdataset")
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
MAX_TABLE_ROWS = 1000  # attributions shown in the card; attributions.csv has them all
SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def size_category(examples: int) -> str:
    """Hugging Face's size category for a number of examples."""
    return next((name for bound, name in SIZES if examples < bound), "1B<n<10B")


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _table(head: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _yaml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def front_matter(info: dict) -> str:
    """The YAML header."""
    schema = info["schema"]["name"]
    characters = sum(s["characters"] for s in info["splits"].values())
    lines = [
        "---",
        f"pretty_name: {_yaml_string(f'thagen {schema}: renders of {characters} MMD characters')}",
        "license: other",
        "license_name: per-character-terms",
        "license_link: attributions.csv",
        "task_categories:",
        *[f"- {t}" for t in TASK_CATEGORIES],
        "size_categories:",
        f"- {size_category(info['counts']['examples'])}",
        "tags:",
        *[f"- {t}" for t in TAGS],
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split, counts in info["splits"].items():
        if counts["shards"]:
            lines += [f"  - split: {HF_SPLITS[split]}", f'    path: "{split}-*.tar"']
    return "\n".join([*lines, "---", ""])


def _made(info: dict) -> str:
    versions, config, counts = info["versions"], info["config"], info["counts"]
    schema = info["schema"]
    names = ", ".join(f"`{p['name']}`" for p in schema["parameters"])
    split_rows = [
        [split, c["characters"], c["examples"], c["shards"]] for split, c in info["splits"].items()
    ]
    count_rows = [[k.replace("_", " "), v] for k, v in counts.items()]
    return "\n".join(
        [
            "## How it was made",
            "",
            f"Rendered by thagen {versions.get('thagen')} (code "
            f"`{str(versions.get('code', ''))[:16]}`) with the `{schema['name']}` pose schema "
            f"({names}) at {info['image_size']}×{info['image_size']} px, "
            f"{config['examples_per_character']} examples per character, seed {config['seed']}. "
            "Each example holds the character's rest image, the expression-only image, the "
            "expression + rotation image and the pose (WebDataset tar shards; "
            "`manifest.parquet` lists every example).",
            "",
            _table(["split", "characters", "examples", "shards"], split_rows),
            "",
            _table(["count", "value"], count_rows),
            "",
            "The run's configuration (`dataset.json` records it with the library versions):",
            "",
            "```json",
            json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True),
            "```",
            "",
        ]
    )


def _policy(catalog: pd.DataFrame, characters: set[str], policy: tuple[str, ...]) -> str:
    root = models_root(catalog)
    usable = catalog[catalog["usable"].astype(bool)]
    left = excluded_by_terms(usable, policy)
    left_rows = [
        [model_label(r, root), "; ".join(left[i])]
        for i, r in zip(usable.index, usable.to_dict("records"), strict=True)
        if left[i]
    ]
    kept = [r for r in catalog.to_dict("records") if r["character"] in characters]
    unknown = [[model_label(r, root)] for r in kept if is_unknown(row_terms(r))]
    kept_terms = [row_terms(r) for r in kept]
    parts = [
        "## Terms of use",
        "",
        "Each model's readme and terms files (in its folder and the folders above it) and its "
        "comments were read for what they say of AI training, use outside MMD, redistribution, "
        "modification, commercial, adult, violent and political/religious use, and credit "
        "(`thagen scan`; the sentences are in `catalog.parquet`'s `terms` column and in "
        "`thagen inspect --json`).",
        "",
        f"**Policy used** (`--terms-exclude {','.join(policy) or 'none'}`): {describe(policy)}.",
        "",
        f"Left out for their terms: {len(left_rows)} model(s).",
        "",
    ]
    if left_rows:
        parts += [_table(["model", "why"], left_rows), ""]
    parts += [
        f"Kept with terms unknown (no readme, terms file or licence found; flagged "
        f"`terms_unknown`): {len(unknown)} character(s).",
        "",
    ]
    if unknown:
        parts += [_table(["model"], unknown[:MAX_TABLE_ROWS]), ""]
    parts += [
        "What the kept characters' terms say, clause by clause (characters):",
        "",
        _table(["clause", *TALLY_VALUES], tally(kept_terms)),
        "",
        f"{with_defaults(kept_terms)} of them have a readme saying that what it does not mention "
        'is forbidden or needs asking (e.g. "what is not written here is not allowed"); such '
        "sentences are listed as `default` with the terms and do not change unstated clauses.",
        "",
    ]
    return "\n".join(parts)


def _attributions(rows: list[dict]) -> str:
    shown = [
        [
            r["model"],
            r["title"],
            r["author"],
            r["licences"],
            r["url"],
            ", ".join(f"{c} {r[c]}" for c in CLAUSES if r[c] != "unstated") or r["terms"],
        ]
        for r in rows[:MAX_TABLE_ROWS]
    ]
    more = len(rows) - len(shown)
    return "\n".join(
        [
            "## Attributions",
            "",
            "Every character in the dataset, its author and what its terms state "
            "(`attributions.csv` has each clause, the contact, copyright lines and the sha256 of "
            "every terms file read).",
            "",
            _table(["model", "title", "author", "licences", "URL", "terms"], shown),
            "",
            *([f"… and {more} more in `attributions.csv`.", ""] if more > 0 else []),
        ]
    )


LIMITATIONS = """## Known limitations

- The terms were read by a small rule-based reader (Japanese, English and Chinese keywords and
  negations). It can miss or misread a sentence; every value comes with the sentence it was
  read from (file and line), so check them, and read the authors' readmes yourself, before you
  publish or use this dataset.
- `unstated` means the files found say nothing about the clause; it is not a permission. Many
  readmes say that what they do not allow is forbidden.
- The images are renders of the authors' models: derivative works, under the authors' terms.
  Fan models of characters that belong to others (Crypton's VOCALOIDs, …) are also under the
  character owner's rules (e.g. the Piapro Character License).
- Terms change, and some authors apply changes retroactively: the files read are identified by
  their sha256 in `attributions.csv`.
- Models with unknown terms are kept under the default policy and listed above; leave them out
  with `--terms-exclude ai_training,unknown`.
- Procedural characters (`thagen make-character`) carry a CC0 dedication in their comment.
"""


def dataset_card(info: dict, catalog: pd.DataFrame, rows: list[dict]) -> str:
    """The whole README.md."""
    characters = {r["character"] for r in rows}
    policy = tuple(info["config"].get("terms_exclude", ()))
    schema = info["schema"]["name"]
    intro = (
        f"# thagen {schema}: renders of {len(characters)} MMD characters\n\n"
        "Paired images and poses for training *Talking Head Anime* networks, rendered by thagen "
        "from MikuMikuDance models. **Each character's images come under its author's terms**, "
        "listed below and in `attributions.csv`; the dataset as a whole has no single licence.\n"
    )
    return "\n".join(
        [
            front_matter(info),
            intro,
            _made(info),
            _policy(catalog, characters, policy),
            _attributions(rows),
            LIMITATIONS,
        ]
    )
