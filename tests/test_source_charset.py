"""Charset handling for Chinese pages: declared when it fits, else detected; GBK read as GB18030."""

from __future__ import annotations

import codecs

import pytest

from sources.charset import decode, declared_in_document, normalise_name

TEXT = "星河手机X5充电发烫，客服说正常？我们要求退款并公开道歉。"
TRAD = "星河手機X5充電發燙，客服說正常？我們要求退款並公開道歉。"


@pytest.mark.parametrize(("body", "declared", "expected_codec"), [
    (TEXT.encode("utf-8"), None, "utf-8"),
    (TEXT.encode("gbk"), "gbk", "gb18030"),
    (TEXT.encode("gbk"), "utf-8", "gb18030"),  # mislabelled: detected
    (TEXT.encode("gb18030"), None, "gb18030"),
    (TRAD.encode("big5"), None, "big5hkscs"),
    (TRAD.encode("big5"), "utf-8", "big5hkscs"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "gbk", "utf-8-sig"),  # a BOM beats the header
    (TEXT.encode("utf-16"), None, "utf-16"),
], ids=["utf8", "gbk", "gbk-labelled-utf8", "gb18030", "big5", "big5-labelled-utf8", "bom", "utf16"])
def test_decodes_to_the_right_text(body, declared, expected_codec):
    text, codec = decode(body, declared)
    assert codec == expected_codec
    assert text.lstrip("\ufeff") in (TEXT, TRAD)


def test_gb2312_label_on_a_gbk_only_character_still_decodes():
    body = "𠮷野家的喆字".encode("gb18030")
    assert decode(body, "gb2312")[0] == "𠮷野家的喆字"


def test_document_declarations_and_names():
    assert declared_in_document(b'<?xml version="1.0" encoding="GBK"?><rss/>') == "GBK"
    assert declared_in_document(b'<html><head><meta charset="big5"></head>') == "big5"
    assert declared_in_document(b"<rss/>") is None
    assert normalise_name("GB2312") == "gb18030" and normalise_name("no-such-codec") is None
    xml = '<?xml version="1.0" encoding="gb2312"?><rss><title>星河</title></rss>'.encode("gbk")
    assert decode(xml, None) == ('<?xml version="1.0" encoding="gb2312"?><rss><title>星河</title></rss>', "gb18030")


def test_undecodable_garbage_never_raises():
    text, codec = decode(bytes(range(128, 256)) * 3, "utf-8")
    assert isinstance(text, str) and codec
