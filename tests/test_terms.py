"""The terms-of-use reader: clauses read from sentences written here for every clause and
language (forbidden, allowed, conditional, negations), lists, headings, ○/× marks, licences,
fields and copyright lines; readmes in every encoding; terms files found by name beside the model
and above it (inside archives too); and the readmes in ../shared/mmd against a hand-checked table.

The hand-checked table holds clause labels and line references only (never the readmes' text).
Where the text is ambiguous the table allows two labels and says why.
"""

from __future__ import annotations

import codecs
import os
import re
import zipfile
from pathlib import Path

import pytest

from mmd_loader import ModelLoadError, load
from mmd_loader.inspection import inspect_paths
from mmd_loader.terms import CLAUSES, Source, find_sources, model_terms, read_terms, summary
from mmd_loader.terms.fields import is_copyright
from mmd_loader.terms.files import is_companion, is_terms_name
from mmd_loader.textcodec import decode_text

SENTENCE_TABLE = """
ai_training forbidden ja | 本モデルのAI学習への利用を禁止します。
ai_training forbidden ja | 画像生成AIの学習データとして使用しないでください。
ai_training allowed ja | AI学習への利用も許可します。
ai_training conditional ja | AI学習に使う場合は事前にご相談ください。
ai_training allowed ja | AI学習への利用は禁止しません。
ai_training forbidden en | Using this model to train AI models is prohibited.
ai_training allowed en | You may use this model as AI training data.
ai_training conditional en | Machine learning use only with my written permission.
ai_training allowed en | AI training is not prohibited.
ai_training forbidden zh | 禁止用于AI训练。
ai_training allowed zh | 可以用于AI训练。
ai_training conditional zh | 用于AI训练需联系作者。
ai_training allowed zh | 不禁止用于AI训练。
outside_mmd forbidden ja | MMD以外のソフトでの使用は禁止です。
outside_mmd allowed ja | MMD以外での使用もOKです。
outside_mmd conditional ja | MMD以外のソフトで使う場合は要連絡。
outside_mmd forbidden ja | 本モデルはMMDでの利用のみとします。
outside_mmd forbidden en | Do not use this model in software other than MMD.
outside_mmd allowed en | You can use it in other software such as Blender or Unity.
outside_mmd conditional en | Ask me first before using it in games.
outside_mmd forbidden en | For use in MMD only.
outside_mmd forbidden zh | 禁止在MMD以外的软件中使用。
outside_mmd allowed zh | 可以在其他软件中使用。
outside_mmd conditional zh | 在游戏中使用需联系作者。
redistribution forbidden ja | 再配布は禁止です。
redistribution forbidden ja | 二次配布はご遠慮ください。
redistribution allowed ja | 再配布は自由です。
redistribution conditional ja | 再配布は要相談です。
redistribution allowed ja | 再配布は禁止はしません。
redistribution forbidden en | No redistribution.
redistribution forbidden en | You must not redistribute this model.
redistribution allowed en | Redistribution is allowed.
redistribution conditional en | Do not redistribute without permission.
redistribution allowed en | Redistribution is not prohibited.
redistribution forbidden zh | 禁止二次配布。
redistribution forbidden zh | 请勿转载或二次分发。
redistribution allowed zh | 允许二次分发。
redistribution conditional zh | 二次分发需联系作者。
modification forbidden ja | 改造・改変は禁止します。
modification allowed ja | 改造はご自由にどうぞ。
modification conditional ja | 改変する場合はご一報ください。
modification allowed ja | 改造は禁止していません。
modification forbidden en | Modifying this model is not allowed.
modification allowed en | Feel free to modify the model.
modification conditional en | Please ask me before you edit this model.
modification forbidden zh | 禁止修改模型。
modification allowed zh | 可以随意改造。
modification conditional zh | 修改模型请先联系作者。
commercial forbidden ja | 商用利用は禁止です。
commercial forbidden ja | 非営利目的に限り使用できます。
commercial allowed ja | 商用利用も可能です。
commercial conditional ja | 商用利用は要相談。
commercial allowed ja | 商用・非商用を問いません。
commercial forbidden en | Commercial use is prohibited.
commercial forbidden en | Non-commercial use only.
commercial allowed en | Commercial use is OK.
commercial conditional en | Contact me for commercial use.
commercial forbidden zh | 禁止商用。
commercial allowed zh | 允许商业使用。
commercial conditional zh | 商用需联系作者授权。
adult forbidden ja | R-18作品への使用は禁止します。
adult forbidden ja | 過度な性的表現での使用はお控えください。
adult allowed ja | R-18表現もOKです。
adult conditional ja | エロ用途は要相談。
adult forbidden en | Do not use this model for pornographic content.
adult allowed en | Adult content is allowed.
adult forbidden zh | 禁止用于色情作品。
adult allowed zh | 可以用于R18作品。
violence forbidden ja | 暴力表現やグロ表現での使用は禁止です。
violence allowed ja | グロ表現もOKです。
violence conditional ja | 過度な暴力表現は事前にご相談ください。
violence forbidden en | Violent or gory use is not permitted.
violence allowed en | Violence and gore are fine.
violence forbidden zh | 禁止用于暴力、血腥内容。
violence allowed zh | 可以用于暴力题材。
political_religious forbidden ja | 政治・宗教活動への利用は禁止します。
political_religious forbidden ja | 特定の思想や宗教の宣伝に使用しないでください。
political_religious allowed ja | 政治的な作品での使用も構いません。
political_religious forbidden en | Do not use for political or religious purposes.
political_religious forbidden zh | 禁止用于政治、宗教宣传。
credit conditional ja | 使用の際はクレジットに作者名を記載してください。
credit allowed ja | クレジット表記は不要です。
credit allowed ja | クレジットは任意です。
credit allowed ja | クレジットして頂けると嬉しいです。
credit conditional en | You must credit me when using this model.
credit allowed en | Credit is not required.
credit allowed en | Credit is appreciated but optional.
credit conditional zh | 使用时请注明作者。
credit allowed zh | 无需署名。
"""
# (clause, value, language, sentence): one sentence per readme, every clause and language
SENTENCES = [
    (*row.split(" | ")[0].split(), row.split(" | ", 1)[1])
    for row in SENTENCE_TABLE.strip().splitlines()
]
# A readme (\n: line breaks), then the clauses it states (=> lines): lists, headings,
# marks, licences filling what is unstated, follow-up sentences, and text stating nothing.
STRUCTURED_TABLE = r"""
禁止事項\n---\n* 再配布\n* 商用利用\n
    => redistribution=forbidden commercial=forbidden

【禁止事項】\n・再配布\n・アダルト用途での使用\n
    => redistribution=forbidden adult=forbidden

■許可事項■\n・改造\n・MMD以外での使用\n
    => modification=allowed outside_mmd=allowed

The following are NOT allowed:\n- redistribution\n- commercial use\n
    => redistribution=forbidden commercial=forbidden

You may:\n- modify the model\n- use it in other software\n
    => modification=allowed outside_mmd=allowed

改造：○\n再配布：×\n商用利用：△（要相談）\nAI学習：×\n
    => modification=allowed redistribution=forbidden commercial=conditional
    => ai_training=forbidden

×商用利用\n○改造\n
    => commercial=forbidden modification=allowed

■再配布について■\n上記規約の範囲内であればOKです。\n
    => redistribution=allowed

商用利用は禁止です。\nどうしても必要な場合はご相談ください。\n
    => commercial=conditional

同人レベルでの営利目的については禁止はしませんが、\nご利用の際は必ずご連絡ください。\n
    => commercial=conditional

改造は可能です。ですが、元のデザインを損ねる改造はご遠慮ください。
    => modification=conditional

Redistribution: NG\nModification: OK\n
    => redistribution=forbidden modification=allowed

本データの使用による損害に対して当方は一切責任を負いません。
    => -

2014.10.23 配布開始\n2014.10.26 テクスチャ修正\n
    => -

Please use this Model Data at your own risk.\nI can not be held liable for any damages.
    => -

MikuMikuDance専用モデル「ゴブリン」
    => -

画像・動画を公開する場合には、こちらには連絡や許可申請は必要ありません。
    => -

使用に関して特に制限はもうけませんのでご自由にお使いください。
    => -

CC BY-NC 4.0\n
    => ai_training=allowed outside_mmd=allowed redistribution=allowed modification=allowed
    => commercial=forbidden credit=conditional

This model is released under CC0.\n
    => ai_training=allowed outside_mmd=allowed redistribution=allowed modification=allowed
    => commercial=allowed credit=allowed

CC BY 4.0\nAI学習への利用は禁止します。\n
    => ai_training=forbidden outside_mmd=allowed redistribution=allowed modification=allowed
    => commercial=allowed credit=conditional
"""
STRUCTURED = [
    (text.replace("\\n", "\n"), dict(kv.split("=") for kv in " ".join(want).split() if kv != "-"))
    for text, *want in (pair.split("\n    => ") for pair in STRUCTURED_TABLE.strip().split("\n\n"))
]
LICENCES = [
    ("ピアプロ・キャラクター・ライセンスに基づきご利用ください。", ["Piapro Character License"]),
    ("This model follows the Piapro Character License (PCL).", ["Piapro Character License"]),
    ("VN3ライセンスを採用しています。", ["VN3"]),
    ("ニコニ・コモンズ(nc12345)に登録しています", ["ニコニ・コモンズ"]),
    ("License: CC BY-NC-SA 4.0", ["CC BY-NC-SA 4.0"]),
    ("クリエイティブ・コモンズ・ゼロ", ["CC0"]),
    ("The files are NOT under MIT license.", []),
    ("The MIT License", ["MIT"]),
]
FIELDS = [
    (
        "【モデル名】初音ミク\n【モデラー】あにまさ\n【配布元】https://example.com/miku\n連絡先：foo@example.com\n",
        {
            "title": "初音ミク",
            "author": "あにまさ",
            "url": "https://example.com/miku",
            "contact": "foo@example.com",
        },
    ),
    (
        "Model name: Miku\nAuthor: Someone\nTwitter: @someone\n",
        {"title": "Miku", "author": "Someone", "contact": "@someone"},
    ),
    (
        "模型作者：某某\n主页：https://example.cn/x\n",
        {"author": "某某", "url": "https://example.cn/x"},
    ),
    (
        "製作者 ： Lat\nlat@example.jp\nhttp://example.jp/lat/\n",
        {"author": "Lat", "contact": "lat@example.jp", "url": "http://example.jp/lat/"},
    ),
    (
        "MikuMikuDance Model created by hzeo.\n",
        {"author": "hzeo"},
    ),
    (
        "モデリング：なし\nModeling by Yu Higuchi\n",
        {"author": "Yu Higuchi"},
    ),
]
COPYRIGHT = [
    ("© 2020 Someone", True),
    ("(C) CRYPTON FUTURE MEDIA, INC.", True),
    ("Copyright：CRYPTON FUTURE MEDIA, INC", True),
    ("The above copyright notice and this permission notice shall be included", False),
    ("著作権には特に気をつけて下さい", False),
]
DEFAULTS = [
    ("記載のない事項については禁止とします。", "forbidden"),
    ("Anything not written here is not allowed.", "forbidden"),
    ("規約に記載のない使用方法については作者にご相談ください。", "conditional"),
    ("未提及的用途请联系作者。", "conditional"),
]


def read(text: str, name: str = "readme.txt") -> dict:
    return read_terms([Source(name, text)])


def stated(terms: dict) -> dict[str, str]:
    return {c: v for c, v in terms["clauses"].items() if v != "unstated"}


@pytest.mark.parametrize(("clause", "value", "language", "text"), SENTENCES)
def test_each_clause_in_each_language(clause: str, value: str, language: str, text: str) -> None:
    terms = read(text)
    assert stated(terms) == {clause: value}, language
    (evidence,) = terms["evidence"][clause]
    assert evidence == {"value": value, "file": "readme.txt", "line": 1, "text": text}


@pytest.mark.parametrize(("text", "want"), STRUCTURED)
def test_lists_headings_marks_and_follow_ups(text: str, want: dict) -> None:
    assert stated(read(text)) == want


@pytest.mark.parametrize(("text", "want"), LICENCES)
def test_licences_are_recognised_by_name(text: str, want: list) -> None:
    assert [lic["name"] for lic in read(text)["licences"]] == want


@pytest.mark.parametrize(("text", "want"), FIELDS)
def test_author_title_contact_and_url_fields(text: str, want: dict) -> None:
    assert {k: v["value"] for k, v in read(text)["fields"].items()} == want


@pytest.mark.parametrize(("text", "want"), COPYRIGHT)
def test_copyright_lines(text: str, want: bool) -> None:
    assert is_copyright(text) == want


@pytest.mark.parametrize(("text", "want"), DEFAULTS)
def test_defaults_for_what_is_not_written_are_listed_apart(text: str, want: str) -> None:
    terms = read(text)
    assert [d["value"] for d in terms["default"]] == [want]
    assert stated(terms) == {}  # a default never fills an unstated clause


def test_evidence_names_the_line_a_sentence_starts_on() -> None:
    text = "■利用規約■\n\n改造は自由です。\n商用利用は\n禁止です。\n"
    terms = read(text, "規約.txt")
    assert terms["evidence"]["modification"][0]["line"] == 3
    assert terms["evidence"]["commercial"][0] | {"text": ""} == {
        "value": "forbidden", "file": "規約.txt", "line": 4, "text": "",
    }  # fmt: skip


def test_readings_combine_across_sentences_and_files() -> None:
    allowed = Source("a/readme.txt", "Redistribution is allowed.")
    forbidden = Source("b/readme.txt", "再配布は禁止です。")
    assert read_terms([allowed])["clauses"]["redistribution"] == "allowed"
    both = read_terms([allowed, forbidden])
    assert both["clauses"]["redistribution"] == "conditional"  # allowed, with exceptions
    assert [e["file"] for e in both["evidence"]["redistribution"]] == [
        "a/readme.txt",
        "b/readme.txt",
    ]
    assert summary(both).startswith("redistribution conditional")


def test_html_and_url_files() -> None:
    page = "<html><body>\n<h1>利用規約</h1>\n<p>再配布は<b>禁止</b>です。</p>\n</body></html>\n"
    terms = read(page, "readme.html")
    assert stated(terms) == {"redistribution": "forbidden"}
    assert terms["evidence"]["redistribution"][0]["line"] == 3
    shortcut = "[InternetShortcut]\nURL=https://example.com/model\nIconIndex=0\n"
    assert read(shortcut, "配布元.url")["fields"]["url"]["value"] == "https://example.com/model"


# --- encodings -------------------------------------------------------------------------------

README_JA = "■利用規約■\n改造は自由です。\n再配布は禁止します。\nAI学習への利用は禁止します。\n"
README_ZH = "使用说明\n禁止二次配布。\n禁止用于AI训练。\n可以修改模型。\n"
README_TW = "使用說明\n禁止二次配布。\n禁止用於AI訓練。\n可以修改模型。\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (README_JA.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + README_JA.encode("utf-8"), "utf-8"),
        (README_JA.encode("utf-16"), "utf-16"),  # with BOM
        (codecs.BOM_UTF16_BE + README_JA.encode("utf-16-be"), "utf-16"),
        (README_JA.replace("\n", "\r\n").encode("utf-16-le"), "utf-16-le"),  # no BOM
        (README_JA.replace("\n", "\r\n").encode("utf-16-be"), "utf-16-be"),
        (README_JA.replace("\n", "\r\n").encode("cp932"), "cp932"),
        (README_ZH.encode("gbk"), "gbk"),
        (README_TW.encode("big5"), "big5"),
    ],
)
def test_readmes_in_every_encoding(data: bytes, encoding: str) -> None:
    text, found = decode_text(data)
    assert found == encoding and "AI" in text
    terms = read_terms([Source("readme.txt", text)])
    assert terms["clauses"]["ai_training"] == "forbidden"
    assert terms["clauses"]["redistribution"] == "forbidden"
    assert terms["clauses"]["modification"] == "allowed"


def test_a_declared_html_charset_is_used() -> None:
    page = '<meta charset="shift_jis">\n<p>再配布は禁止です。</p>\n'.encode("cp932")
    # cp932 bytes that also decode as GBK: the declaration decides
    assert decode_text(page) == ('<meta charset="shift_jis">\n<p>再配布は禁止です。</p>\n', "cp932")


# --- which files are terms files, and where they are looked for --------------------------------


@pytest.mark.parametrize(
    "name",
    ["readme.txt", "ReadMe.txt", "Read me in English.txt", "README", "README.md", "りーどみー.txt",
     "読んでください.txt", "利用規約.txt", "規約.md", "terms.html", "Terms of Use.htm", "LICENSE",
     "ライセンス.txt", "使用说明.txt", "使用說明.txt", "配布元_readme.url"],
)  # fmt: skip
def test_terms_files_by_name(name: str) -> None:
    assert is_terms_name(name)


@pytest.mark.parametrize(
    "name", ["SOURCE.txt", "更新履歴.txt", "readme.png", "face.bmp", "model.pmx", "._readme.txt"]
)
def test_other_files_are_not_terms_files(name: str) -> None:
    assert not is_terms_name(name)


def test_a_text_named_after_the_model_counts_in_its_own_folder_only() -> None:
    assert is_companion("miku4.3-jp.txt", "miku4.3.pmx")
    assert not is_companion("miku4.3-jp.txt", None)  # a parent folder's
    assert not is_companion("SOURCE.txt", "miku4.3.pmx")


def test_terms_files_are_found_up_to_the_root_and_no_further(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("outside the root: 再配布は禁止", encoding="utf-8")
    root = tmp_path / "models"
    folder = root / "pack" / "Miku"
    folder.mkdir(parents=True)
    (root / "利用規約.txt").write_text("商用利用は禁止です。", encoding="cp932")
    (root / "pack" / "LICENSE").write_text("CC BY 4.0", encoding="utf-8")
    (folder / "Miku-readme.txt").write_text("改造OKです。", encoding="utf-16")
    (folder / "Miku_jp.txt").write_text("AI学習は禁止です。", encoding="utf-8")
    (folder / "notes.txt").write_text("再配布は禁止です。", encoding="utf-8")
    (folder / "big_readme.txt").write_bytes(b"x" * ((1 << 20) + 1))
    model = folder / "Miku.pmx"
    model.write_bytes(b"PMX ")
    sources, notes = find_sources(model, root)
    assert [s.label for s in sources] == [
        "pack/Miku/Miku-readme.txt",
        "pack/Miku/Miku_jp.txt",
        "pack/LICENSE",
        "利用規約.txt",
    ]
    assert [s.encoding for s in sources] == ["utf-16", "utf-8", "utf-8", "cp932"]
    assert any("big_readme.txt" in note for note in notes)
    terms = read_terms(sources, notes)
    assert stated(terms) == {
        "modification": "allowed",
        "ai_training": "forbidden",
        "outside_mmd": "allowed",
        "redistribution": "allowed",
        "commercial": "forbidden",
        "credit": "conditional",
    }  # CC BY fills what the sentences leave unstated, never overrides them


def test_a_symlink_leading_outside_the_root_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("AI学習は禁止です。", encoding="utf-8")
    root = tmp_path / "models"
    root.mkdir()
    os.symlink(secret, root / "readme.txt")
    model = root / "m.pmx"
    model.write_bytes(b"PMX ")
    sources, notes = find_sources(model, root)
    assert sources == [] and any("symlink" in n for n in notes)


def test_terms_inside_an_archive_and_beside_it(tmp_path: Path) -> None:
    from tests.test_loader import tiny_pmx

    root = tmp_path / "downloads"
    root.mkdir()
    (root / "readme.txt").write_text("This pack: AI training is prohibited.", encoding="utf-8")
    archive = root / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Pack/Tiny.pmx", tiny_pmx())
        zf.writestr("Pack/tex/body.png", b"png")
        zf.writestr("Pack/readme.txt", "改造は自由です。".encode("cp932"))
        zf.writestr("利用規約.txt", "商用利用は禁止です。".encode("cp932"))
        zf.writestr("Pack/unrelated.txt", "再配布は禁止です。".encode("cp932"))
    (report,) = inspect_paths([root])
    terms = report.terms
    assert [f["file"] for f in terms["files"]][1:] == [
        "pack.zip/Pack/readme.txt",
        "pack.zip/利用規約.txt",
        "readme.txt",
    ]  # the first is the model's comment
    assert stated(terms) == {
        "modification": "allowed",
        "commercial": "forbidden",
        "ai_training": "forbidden",
    }


def test_comments_are_read_and_a_model_without_terms_is_unknown(tmp_path: Path) -> None:
    from characters import write_character

    cc0 = write_character(0, tmp_path / "a" / "character.pmx")
    model = load(cc0)
    terms = model_terms(model, cc0)
    assert terms["status"] == "found" and [f["file"] for f in terms["files"]] == ["(comment)"]
    assert terms["clauses"]["ai_training"] == "allowed"  # its CC0 dedication
    assert [lic["name"] for lic in terms["licences"]] == ["CC0"]
    model.comment = "a model with nothing to say"
    unknown = model_terms(model, cc0)
    assert unknown["status"] == "unknown" and set(unknown["clauses"].values()) == {"unstated"}


# --- the readmes of ../shared/mmd, against a hand-checked table ---------------------------------

MMD_BUNDLED = [
    "Dammy_Bone.pmd", "Haku_Yowane.pmd", "KAITO.pmd", "Len_Kagamine.pmd", "MEIKO.pmd",
    "Meiko_Sakine.pmd", "Miku_Hatsune.pmd", "Miku_Hatsune_Ver2.pmd", "Miku_Hatsune_metal.pmd",
    "Neru_Akita.pmd", "Rin_Kagamene_act2.pmd", "Rin_Kagamine.pmd",
]  # fmt: skip
THREE = "threejs_examples_models_mmd_Readme.txt"
# Model → the labels read by hand from its readmes (a clause not named: unstated; two labels where
# the text allows both readings), some of the lines they come from ("file:line", relative to
# ../shared/mmd), the licences named, and the author field.
HAND: dict[str, dict] = {
    "animasa_miku_v2_3/miku_v2.pmd": {
        # three.js's note beside it: "NOT allowed for" redistribution, porn, commercial use
        "clauses": "redistribution=forbidden commercial=forbidden adult=forbidden",
        "lines": f"redistribution=animasa_miku_v2_3/{THREE}:30",
        "licences": {"Crypton character guidelines"},
        "default": f"animasa_miku_v2_3/{THREE}:35",
        "author": "あにまさ",
    },
    "goblin/goblin_v02.pmx": {
        # 改造、再配布は制限なし; MikuMikuOnlineでの使用は制限しません; スプラッタと何でもござれ
        "clauses": "outside_mmd=allowed redistribution=allowed modification=allowed "
        "violence=allowed",
        "lines": "modification=goblin/readme.txt:22 outside_mmd=goblin/readme.txt:26 "
        "violence=goblin/readme.txt:8",
        "licences": set(),
        "author": "キツネツキ",
    },
    "j3_animasa_miku_pmx/index.pmx": {
        # 禁止事項: 公序良俗に反する使用 (read as adult and violent use), 商用利用
        "clauses": "commercial=forbidden adult=forbidden violence=forbidden",
        "lines": "commercial=j3_animasa_miku_pmx/REPO_README.md:78 "
        "adult=j3_animasa_miku_pmx/REPO_README.md:76",
        "licences": {"MIT"},  # the repository's code licence: named, not interpreted
        "author": "あにまさ",
    },
    "lat_miku_v231/Normal.pmd": {
        # commercial: in principle forbidden, doujin-level profit allowed with contact;
        # modification only implied by a section heading ("…での改造利用"): either reading
        "clauses": "redistribution=allowed commercial=conditional adult=forbidden "
        "violence=forbidden credit=conditional modification=unstated|allowed",
        "lines": "redistribution=lat_miku_v231/ReadMe.txt:20 "
        "commercial=lat_miku_v231/ReadMe.txt:14 commercial=lat_miku_v231/ReadMe.txt:15 "
        "credit=lat_miku_v231/ReadMe.txt:21 adult=lat_miku_v231/ReadMe.txt:17",
        "licences": {"Piapro Character License", "Crypton character guidelines"},
        "author": "Lat",
    },
    "miku4_3/miku4.3.pmx": {
        "clauses": "redistribution=allowed modification=allowed commercial=forbidden "
        "credit=conditional",
        "lines": "commercial=miku4_3/miku4.3-en.txt:25 commercial=miku4_3/miku4.3-jp.txt:23 "
        "credit=miku4_3/miku4.3-jp.txt:19",
        "licences": {"Piapro Character License", "Crypton character guidelines"},
        "author": "outro",
    },
    "yw_test_model_cc0/yw_test_model.pmx": {
        # CC0 in its comment; the repository's MIT text beside it asks for its notice
        "clauses": "ai_training=allowed outside_mmd=allowed redistribution=allowed "
        "modification=allowed commercial=allowed credit=conditional|allowed",
        "lines": "ai_training=(comment):1",
        "licences": {"CC0", "MIT"},
    },
}
HAND["lat_miku_v231/Lat式ミクVer2.31_White.pmd"] = HAND["lat_miku_v231/Normal.pmd"]
for _name in ("hzeoV3kaito_F.pmx", "hzeoV3kaito_Fvn.pmx", "hzeoV3kaito_Fvr.pmx"):
    HAND[f"hzeo_kaito_v3/{_name}"] = {
        # allowed, but not in ways that spoil the costume design, nor combined with models that
        # forbid redistribution: conditional
        "clauses": "redistribution=conditional modification=conditional violence=forbidden "
        "credit=conditional",
        "lines": "violence=hzeo_kaito_v3/Readme.txt:36 "
        "credit=hzeo_kaito_v3/Read me in Eiglish.txt:12",
        "licences": {"Crypton character guidelines"},
        "author": "hzeo",
    }
for _name in MMD_BUNDLED:
    HAND[f"mmd_bundled/model/{_name}"] = {
        # three.js's note forbids redistribution, porn and commercial use; MMD.js's README (MIT
        # text, about its code) grants modification and redistribution and asks for its notice
        "clauses": "redistribution=conditional commercial=forbidden adult=forbidden "
        "modification=allowed|unstated credit=conditional|unstated",
        "lines": f"commercial=mmd_bundled/{THREE}:32",
        "licences": {"MIT", "Crypton character guidelines"},
        "default": f"mmd_bundled/{THREE}:35",
    }


def labels(text: str) -> dict[str, set[str]]:
    return {k: set(v.split("|")) for k, v in (kv.split("=", 1) for kv in text.split(" ") if kv)}


def references(text: str) -> list[tuple[str, str, int]]:
    """ "clause=file:line" items (files may hold spaces: items start at a clause name)."""
    items = re.split(rf"\s(?=(?:{'|'.join(CLAUSES)})=)", text)
    out = []
    for item in items:
        clause, where = item.split("=", 1)
        file, line = where.rsplit(":", 1)
        out.append((clause, file, int(line)))
    return out


def test_every_real_model_is_in_the_table(mmd_dir: Path) -> None:
    found = {p.relative_to(mmd_dir).as_posix() for p in mmd_dir.rglob("*.p[mm][dx]")}
    assert found == set(HAND)


@pytest.mark.parametrize("name", sorted(HAND))
def test_real_readmes_against_the_hand_checked_table(name: str, mmd_dir: Path) -> None:
    want = HAND[name]
    path = mmd_dir / name
    try:
        model = load(path)
    except ModelLoadError:  # a model that does not load still has its readmes
        model = None
    terms = model_terms(model, path, mmd_dir)
    assert terms["status"] == "found"
    expected = labels(want["clauses"])
    for clause in CLAUSES:
        assert terms["clauses"][clause] in expected.get(clause, {"unstated"}), clause
    for clause, file, line in references(want["lines"]):
        refs = [(e["file"], e["line"]) for e in terms["evidence"][clause]]
        assert (file, line) in refs, (clause, refs)
    assert {lic["name"] for lic in terms["licences"]} == want["licences"]
    if "author" in want:
        assert terms["fields"]["author"]["value"] == want["author"]
    defaults = [f"{d['file']}:{d['line']}" for d in terms["default"]]
    assert defaults == ([want["default"]] if "default" in want else [])


def test_real_readmes_decode(mmd_dir: Path) -> None:
    encodings = {
        "hzeo_kaito_v3/Read me in Eiglish.txt": "utf-16",
        "hzeo_kaito_v3/Readme.txt": "cp932",
        "lat_miku_v231/ReadMe.txt": "utf-16",
        "goblin/readme.txt": "cp932",
        "miku4_3/miku4.3-jp.txt": "utf-8",
    }
    for name, encoding in encodings.items():
        assert decode_text((mmd_dir / name).read_bytes())[1] == encoding, name
