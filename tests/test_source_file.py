"""The file source: JSONL and CSV (UTF-8 or GBK), one file or a directory, incremental."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest

from monitor.core.errors import FetchError
from sources.base import SourceState
from sources.file import FileSource, FileSourceConfig
from sources.registry import SOURCES


def source(path, **settings) -> FileSource:
    return FileSource(FileSourceConfig(name="import", type="file", path=str(path), **settings))


def line(**record) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def test_jsonl_new_complete_lines_each_poll_partial_line_waits(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_text(line(id=1, text="第一条") + '{"id": 2, "text": "写到一半', encoding="utf-8")
    src = source(path)
    first = src.fetch(SourceState())
    assert [i.external_id for i in first.items] == ["1"]
    with open(path, "a", encoding="utf-8") as f:
        f.write('"}\n' + line(id=3, text="第三条"))
    second = src.fetch(first.state)
    assert [(i.external_id, i.text) for i in second.items] == [("2", "写到一半"), ("3", "第三条")]
    assert src.fetch(second.state).items == []


def test_csv_in_gbk_with_chinese_headers_and_a_quoted_newline(tmp_path):
    path = tmp_path / "工单.csv"
    rows = ("编号,内容,客户,时间,点赞\r\n"
            "A1,\"充电发烫，\n要求退款\",王女士,2024-05-06 12:00:00,1.2万\r\n"
            "A2,客服态度差,李先生,2024-05-06 12:05:00,3\r\n")
    path.write_bytes(rows.encode("gbk"))
    src = source(path, fields={"id": "编号", "text": "内容", "author": "客户", "published_at": "时间", "likes": "点赞"})
    result = src.fetch(SourceState())
    assert result.skipped == []
    first, second = result.items
    assert (first.external_id, first.text, first.author, first.likes) == ("A1", "充电发烫，\n要求退款", "王女士", 12000)
    assert first.published_at == datetime(2024, 5, 6, 12, 0)
    assert second.text == "客服态度差"
    assert json.loads(result.state.cursor)["files"][str(path)]["encoding"] == "gb18030"
    with open(path, "ab") as f:
        f.write("A3,又坏了,赵先生,2024-05-06 13:00:00,0\r\n".encode("gbk"))
    assert [i.external_id for i in src.fetch(result.state).items] == ["A3"]


def test_directory_reads_matching_files_in_name_order_and_picks_up_new_ones(tmp_path):
    (tmp_path / "b.jsonl").write_text(line(id="b1", text="乙"), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(line(id="a1", text="甲"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not an export", encoding="utf-8")
    src = source(tmp_path, pattern="*.jsonl")
    first = src.fetch(SourceState())
    assert [i.external_id for i in first.items] == ["a1", "b1"]
    (tmp_path / "c.jsonl").write_text(line(id="c1", text="丙"), encoding="utf-8")
    with open(tmp_path / "a.jsonl", "a", encoding="utf-8") as f:
        f.write(line(id="a2", text="甲二"))
    assert [i.external_id for i in src.fetch(first.state).items] == ["a2", "c1"]


def test_bad_records_are_skipped_with_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(line(id=1, text="好") + "{broken\n" + line(text="no id") + line(id=4, text="好", likes="很多"),
                    encoding="utf-8")
    result = source(path).fetch(SourceState())
    assert [i.external_id for i in result.items] == ["1"]
    assert result.skipped == [f"{path}:2: invalid JSON: Expecting property name enclosed in double quotes at column 2",
                              f"{path}:3: missing id ('id')",
                              f"{path}:4: item '4': unreadable count in 'likes': '很多'"]


def test_replaced_file_is_read_from_the_start(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(line(id=1, text="旧"), encoding="utf-8")
    src = source(path)
    first = src.fetch(SourceState())
    tmp = tmp_path / "new.jsonl"
    tmp.write_text(line(id=7, text="新文件") + line(id=8, text="新文件二"), encoding="utf-8")
    os.replace(tmp, path)
    assert [i.external_id for i in src.fetch(first.state).items] == ["7", "8"]


def test_missing_path_is_a_fetch_error_and_cap_per_poll(tmp_path):
    with pytest.raises(FetchError, match="file not found"):
        source(tmp_path / "nope.jsonl").fetch(SourceState())
    path = tmp_path / "big.jsonl"
    path.write_text("".join(line(id=i, text=f"第{i}条") for i in range(10)), encoding="utf-8")
    src = source(path, max_records=4)
    first = src.fetch(SourceState())
    second = src.fetch(first.state)
    assert [len(first.items), len(second.items)] == [4, 4]
    assert SOURCES.get("file") is FileSource
