"""The clause reader's vocabulary: what names each clause, and the words that forbid, allow or
put a condition on it, in Japanese, English and Chinese.

Patterns match text folded by `mmd_loader.terms.text.fold` (NFKC, lower case): full-width
ＯＫ is `ok`, half-width ｶﾀｶﾅ is full-width. A marker's polarity:

- `forbidden`: 禁止, ご遠慮ください, しないでください, NG, ×, not allowed, must not, 不得, 请勿 …
- `allowed`: 可能, OK, ご自由に, 構いません, ○, allowed, may, free to, 可以, 允许 …; and the
  negations of a prohibition, matched before the prohibition itself: 禁止しません,
  禁止はしません, 制限は設けません, 問いません, not prohibited, no restriction, 不禁止, 没有限制 …;
  and "not needed" (不要, 必要ありません, not required, 无需): nothing is asked for.
- `conditional`: the author must be asked or told first: 要相談, 要連絡, ご相談ください, ご連絡
  ください, 許可を得て, 事前に, 条件として, △, with permission, ask me, contact me, 需联系, 经作者
  许可 …
- `required`: an obligation (ください, 必ず, must, please, 必须 …): it makes `credit`
  conditional (credit is asked for) and says nothing about the other clauses.
- `wish`: 嬉しい, 幸いです, appreciate …: a request, not a condition (conditional and required
  markers in the same sentence count as allowed, and a credit only wished for is not required).
An English "no" right before a keyword ("No redistribution") forbids it.
"""

from __future__ import annotations

CLAUSES = (
    "ai_training",
    "outside_mmd",
    "redistribution",
    "modification",
    "commercial",
    "adult",
    "violence",
    "political_religious",
    "credit",
)
VALUES = ("forbidden", "allowed", "conditional", "unstated")

_A = r"(?<![a-z])"  # an ASCII word starts here
_Z = r"(?![a-z])"  # and ends here

KEYWORDS: dict[str, list[str]] = {
    "ai_training": [
        _A + r"ai" + _Z + r"\s*(?:の|への|に|による|での|を|に対する|用の?)?\s*"
        r"(?:学習|訓練|训练|学习|トレーニング|training|learning|生成|利用|使用|用途|関連|開発|"
        r"开发|素材|データ|モデル|models?|art|images?|generat\w*|datasets?|tools?|services?)",
        r"(?:学習|訓練|训练|學習|training)\s*(?:用)?\s*(?:データ|素材|data|数据|資料|材料)",
        r"機械学習|machine\s*learning|deep\s*learning|ディープラーニング|深層学習|深度学习|深度學習|"
        r"机器学习|機器學習|人工知能|人工智能|画像生成|生成\s*ai|generative\s*ai|"
        r"text\s*(?:and|&)\s*data\s*mining|data\s*mining|データマイニング|数据挖掘|データセット|数据集",
        _A + r"(?:train|training)\s+(?:an?\s+|any\s+|the\s+|your\s+)?"
        r"(?:ai|models?|neural|networks?|algorithms?)" + _Z,
        _A + r"(?:for|in|with|by|into|to)\s+(?:any\s+|an\s+)?ai" + _Z,
    ],
    "outside_mmd": [
        r"(?:mmd|mikumikudance|ミクミクダンス)\s*(?:以外|外で|の外|之外|以外的)",
        _A + r"(?:other|another)\s+(?:than\s+mmd\s+)?"
        r"(?:software|programs?|applications?|apps?|tools?|games?|platforms?|engines?)",
        _A + r"(?:software|programs?|applications?|tools?)\s+other\s+than",
        _A + r"outside\s+(?:of\s+)?(?:mmd|mikumikudance)",
        r"他の?\s*(?:ソフト|ツール|アプリ|プログラム|ゲーム|3d\s*ソフト|3dcg\s*ソフト|エンジン)",
        r"外部\s*(?:ソフト|ツール|アプリ)",
        r"mikumikumoving|mikumikuonline|" + _A + r"(?:mmm|vrchat|vrc|unity|unreal|blender|cluster|"
        r"virtual\s*cast|second\s*life|vroid|live2d|vtuber?|vrm)" + _Z + r"|バーチャルキャスト",
        r"3d\s*(?:プリント|プリンタ|print)|フィギュア化|ゲーム(?:での|への|に|内|制作|素材)|"
        + _A
        + r"(?:video\s*)?games?"
        + _Z,
        r"其他(?:软件|軟體|软体|程序|程式|平台|游戏|遊戲)|游戏|遊戲",
    ],
    "redistribution": [
        r"再配布|二次配布|再頒布|再配信|転載|譲渡|無断配布|"
        r"(?<!再)(?<!二次)配布(?=\s*(?:は|を|する|して|しない|や|、|・|/|可|不可|禁止|ok|ng|について|"
        r"の際|に関して|も|しても|すること))",
        _A + r"(?:re-?distribut\w*|re-?upload\w*|distribut\w*|sublicens\w*|share\s+(?:this|the)\s+"
        r"(?:model|data|files?))",
        r"二次分发|二次分發|二次发布|二次發布|再分发|再分發|转载|轉載|分发|分發|散布|二次上传|二次上傳|"
        r"转发|轉發|转售|轉售|二传|二傳",
    ],
    "modification": [
        r"改造|改変|加工|改修|流用|改变|改變|修改|改模|魔改|二次創作|二次创作|パーツ\s*(?:の)?\s*(?:使用|利用)",
        _A + r"(?:remodel\w*|modif\w*|alter\w*|derivative\w*|remix\w*)",
        _A + r"edit(?:ing|ed|s)?(?=(?:\W+\w+){0,3}?\W+(?:model|data|it|this|them|files?|mesh|"
        r"textures?)" + _Z + r")",
    ],
    "commercial": [
        r"商用|商業|営利|有償|有料|販売|売買|収益|商品化|商业|盈利|營利|营利|贩卖|販賣|出售|收费|收費",
        _A + r"(?:commerc\w*|for[\s-]profit|profit\w*|monetiz\w*|monetis\w*|sell\w*|sales?|"
        r"paid|money)" + _Z,
    ],
    "adult": [
        r"r-?18g?|r-?15|18禁|15禁|アダルト|エロ|えっち|エッチ|性的|性表現|性行為|わいせつ|猥褻|卑猥|"
        r"ヌード|裸|成人向け|ポルノ|色情|成人|裸露|淫秽|淫穢|猥亵|工口|擦边|擦邊|性暗示",
        _A + r"(?:sexual\w*|sexy|porn\w*|adult|obscen\w*|nude|nudity|nsfw|hentai|erotic\w*|"
        r"explicit|lewd)" + _Z,
    ],
    "violence": [
        r"暴力|殺人|殺害|殺傷|犯罪|グロテスク|グロ(?=\s|表現|い|な|系|描写|$|、|。|・)|残虐|残酷|"
        r"流血|スプラッタ|猟奇|虐待|暴行|傷害|血腥|猎奇|獵奇|杀人|恐怖主义",
        _A + r"(?:violen\w*|gore|gory|murder\w*|kill\w*|crime|crimes|criminal\w*|cruel\w*|"
        r"bloody|abus\w*|terror\w*|splatter)" + _Z,
    ],
    "political_religious": [
        r"政治|宗教|思想|選挙|政党|信仰|布教|宣传|宣傳|选举|選舉|意识形态|意識形態|政黨",
        _A + r"(?:politic\w*|religio\w*|propaganda|election\w*|ideolog\w*)" + _Z,
    ],
    "credit": [
        r"クレジット|表記|明記|作者名|製作者名|制作者名|作者表示|著作者表示|名前の記載|"
        r"(?:私|作者|製作者|制作者|モデラー|わたし|僕|ぼく)の?名前|"
        r"署名|标注|標註|注明|註明|标明|標明|出处|出處|鸣谢|鳴謝",
        _A + r"(?:credit\w*|attribut\w*|inscribe|copyright\s+notice|my\s+name|"
        r"mention\s+(?:me|my|the\s+author))" + _Z,
    ],
}

# Keywords that carry their own polarity: (clause, pattern, polarity)
SPECIAL_KEYWORDS: list[tuple[str, str, str]] = [
    (
        "commercial",  # "non-commercial only": commercial use is what is left out
        r"非営利|非商用|非商業|非商业|非盈利|非營利|" + _A + r"non[\s-]?commercial|non[\s-]?profit|"
        r"not\s+for\s+profit",
        "forbidden",
    ),
    (
        "outside_mmd",  # "only in MMD"
        r"(?:mmd|mikumikudance)\s*(?:で|での|上で|上での|内で|内での)?\s*(?:の)?\s*(?:使用|利用)?\s*"
        r"(?:のみ|に限り|に限定|限定)|" + _A + r"(?:only|exclusively)\s+(?:in|with|for)\s+"
        r"(?:mmd|mikumikudance)|"
        + _A
        + r"(?:in|with|for)\s+(?:mmd|mikumikudance)\s+only"
        + _Z
        + r"|仅限\s*mmd|僅限\s*mmd|只能(?:在)?\s*mmd",
        "forbidden",
    ),
]
# 公序良俗に反する (against public order and morals): read as adult and violent use.
PUBLIC_ORDER = r"公序良俗"

# Markers, most specific first; a later pattern never matches inside an earlier one's match.
MARKERS: list[tuple[str, str]] = [
    (
        "wish",
        r"嬉しい|うれしい|幸いです|助かります|喜びます|" + _A + r"(?:appreciated?|happy\s+if)",
    ),
    (
        "allowed",  # negated prohibitions and restrictions
        r"禁止(?:は|も)?(?:いた|致)?(?:しません|していません|しておりません|しない|しておらず)|"
        r"制限(?:は|を|も)?(?:特に|一切)?(?:設けません|もうけません|設けていません|設けておりません|"
        r"しません|しておりません|ありません|なし|無し)|特に(?:制限|規制|制約)(?:は|を)?(?:ありません|"
        r"なし|無し|しません|設けません)|問いません|"
        + _A
        + r"(?:not\s+(?:prohibited|forbidden|restricted|banned)|no\s+restrictions?|"
        r"without\s+(?:any\s+)?restrictions?)"
        + _Z
        + r"|不(?:禁止|限制|做限制|作限制)|没有限制|沒有限制|无限制|無限制",
    ),
    (
        "allowed",  # nothing is asked for
        r"不要(?=\s*(?:です|でしょう|。|、|\)|）|$|!|！|と|な|で|\s))|いりません|必要(?:は)?(?:ありません|ない|なし|無し)|なくても(?:構|大丈夫|"
        r"いい|良)|任意|"
        + _A
        + r"(?:not\s+(?:required|necessary|needed|mandatory)|optional|no\s+need|unnecessary)"
        + _Z
        + r"|不需要|无需|無需|不必",
    ),
    (
        "conditional",
        r"要相談|要連絡|要許可|要報告|要確認|要問い合わせ|要申請|"
        r"ご?相談(?:ください|下さい|の上|して|を|いただ|頂|願)|ご?連絡(?:ください|下さい|を|いただ|頂|"
        r"して|の上|願)|一報|事前に|許可を(?:得|取|とっ|もら|頂|いただ|お願|求)|許可が必要|許可制|"
        r"申請(?:して|が必要|を)|条件として|条件付き|"
        + _A
        + r"(?:(?:with|without)\s+(?:my\s+|the\s+author'?s?\s+|prior\s+|written\s+|explicit\s+)*"
        r"(?:permission|consent|approval)|ask\s+(?:me|the\s+author|for\s+permission)|"
        r"contact\s+(?:me|the\s+author|us)|permission\s+(?:is\s+)?(?:required|needed)|"
        r"need\s+(?:my\s+)?permission|case[\s-]by[\s-]case|on\s+condition)"
        + _Z
        + r"|需要?(?:联系|聯繫|联络|聯絡|授权|授權|许可|許可|同意)|请?先?联系|請?先?聯繫|"
        r"经过?(?:作者)?(?:许可|同意|授权)|經過?(?:作者)?(?:許可|同意|授權)|征得|徵得|事先",
    ),
    (
        "forbidden",
        r"禁止|禁じ|厳禁|不可能|不可(?!欠|避)|" + _A + r"ng" + _Z + r"|ダメ|だめ|駄目|"
        r"ご?遠慮(?:ください|下さい|願|いただ|頂|して)|お控え|控えて|ないで(?:ください|下さい|くださ|ね)|"
        r"ないようにお願い|しないこと|認め(?:ません|ておりません|られません|ない)|"
        r"許可(?:しません|していません|しておりません|できません)|許され(?:ません|ない)|できません|"
        r"出来ません|お断り|"
        + _A
        + r"(?:not\s+(?:be\s+)?(?:allowed|permitted|ok|okay|authori[sz]ed)|must\s+not|mustn't|"
        r"may\s+not|(?:do|does)\s+not|don't|doesn't|cannot|can't|can\s+not|never|prohibit\w*|"
        r"forbid\w*|refrain\w*|not\s+for)"
        + _Z
        + r"|严禁|嚴禁|不得|不允许|不允許|不准|请勿|請勿|切勿|不能|不可以|不要|谢绝|謝絕|拒绝|拒絕",
    ),
    (
        "allowed",
        _A
        + r"ok"
        + _Z
        + r"|okay|可能|(?<!不)可(?![愛哀])|ご?自由|構いません|かまいません|大丈夫|許可します|"
        r"許可しています|認めます|歓迎|どうぞ|お好きに|好きな(?:よう|だけ)|何でもござれ|なんでもござれ|"
        r"してもいい|しても良い|して良い|して下さって|ご?利用(?:いただけます|頂けます|できます)|"
        r"使用(?:できます|可)|"
        + _A
        + r"(?:allow(?:ed|s)?|permitted|permission\s+is\s+(?:hereby\s+)?granted|may|can|"
        r"free(?:ly)?|welcome|fine|granted|admits?)"
        + _Z
        + r"|可以|允许|允許|欢迎|歡迎|随意|隨意|没问题|沒問題|无妨|無妨",
    ),
    (
        "required",
        r"必須|必要|必ず|ください|下さい|お願いします|お願い致します|お願いいたします|すること|"
        + _A
        + r"(?:must|please|required|requires?|need\s+to|have\s+to|shall)"
        + _Z
        + r"|请|請|需要|必须|务必|務必",
    ),
]
MARKS = {"○": "allowed", "◯": "allowed", "〇": "allowed", "×": "forbidden", "✕": "forbidden",
         "✖": "forbidden", "△": "conditional"}  # fmt: skip
MARK_AFTER = r"\s*[:：=]?\s*([○◯〇×✕✖△])"  # "改造：○"
MARK_LINE = r"^\s*[-・*]?\s*([○◯〇×✕✖△])"  # "×商用利用"
# Where a sentence splits into parts that take their own markers: "…ですが、…", "…; but …".
BOUNDARY = (
    r"(?:(?:です|ます|ません|した)が|けど|けれど|けれども|ただし|但し|しかし|なお)、?|[;；]|"
    + _A
    + r"(?:but|however|except)"
    + _Z
    + r"|但是|不过|不過|，但"
)
# "What is not written here is not allowed": a default for everything unstated, recorded apart.
DEFAULT = (
    r"(?:記載|明記|記述)(?:の|され)?(?:ない|無い|ていない|ていない|てない)|書かれていない|"
    r"規約に(?:ない|無い)|上記以外|"
    + _A
    + r"(?:not\s+(?:written|mentioned|listed|stated|covered|specified)|anything\s+else|"
    r"any\s+other\s+use)" + _Z + r"|未(?:提及|说明|說明|注明|註明|列出)|其他(?:用途|使用|情况|情況)"
)
REACH = 80  # characters between a keyword and its marker, at most
NO_BEFORE = _A + r"no\s+(?:[a-z]+\s+)?$"  # "No redistribution", "no commercial use"
