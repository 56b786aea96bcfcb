"""JSON Lines file source: incremental reads, partial lines, bad lines, rotation."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from monitor.core.errors import FetchError
from sources.base import SourceState
from sources.jsonl_file import JsonlFileConfig, JsonlFileSource, parse_time
from sources.registry import SOURCES

FEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"


def make_source(path: Path, **settings) -> JsonlFileSource:
    max_lines = settings.pop("max_lines", None)
    cfg = JsonlFileConfig(name="export", type="jsonl", path=str(path), **settings)
    return JsonlFileSource(cfg, max_lines=max_lines) if max_lines else JsonlFileSource(cfg)


def line(id: str, text: str = "内容", **fields) -> str:
    return json.dumps({"id": id, "text": text, **fields}, ensure_ascii=False) + "\n"


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def offset_of(state: SourceState) -> int:
    return json.loads(state.cursor)["offset"]


def test_sample_file_fields_and_times(tmp_path):
    path = tmp_path / "sample.jsonl"
    shutil.copy(FEEDS / "sample.jsonl", path)
    result = make_source(path).fetch(SourceState())

    assert result.skipped == []
    assert [i.external_id for i in result.items] == ["c1001", "c1002", "1003", "c1004"]
    first, second, reply, html = result.items
    assert first.text == "星河手机X5的续航真的不错，一天一充够用 [赞]"
    assert first.author == "小李" and first.url == "https://example.cn/c/1001"
    assert first.title is None
    assert first.published_at == datetime(2024, 5, 6, 9, 12)  # naive stays naive
    assert second.published_at.utcoffset().total_seconds() == 8 * 3600
    assert second.published_at == datetime(2024, 5, 6, 2, 30, tzinfo=timezone.utc)
    assert reply.published_at == datetime.fromtimestamp(1714963500, tz=timezone.utc)
    assert reply.parent_id == "c1002" and reply.url is None
    assert html.text == "<p>发布会&amp;直播<br>几点开始？</p>"  # raw; normalise cleans
    assert offset_of(result.state) == path.stat().st_size


def test_incremental_reads_leave_partial_line(tmp_path):
    path = tmp_path / "live.jsonl"
    path.write_text(line("a") + line("b"), encoding="utf-8")
    source = make_source(path)

    r1 = source.fetch(SourceState())
    assert [i.external_id for i in r1.items] == ["a", "b"]

    complete = line("c", "第三条")
    partial = line("d", "第四条")
    append(path, complete + partial[:15])
    r2 = source.fetch(r1.state)
    assert [i.external_id for i in r2.items] == ["c"]
    assert offset_of(r2.state) == path.stat().st_size - len(partial[:15].encode())

    r3 = source.fetch(r2.state)  # still partial: nothing new, cursor unchanged
    assert r3.items == [] and r3.state == r2.state

    append(path, partial[15:])
    r4 = source.fetch(r3.state)
    assert [(i.external_id, i.text) for i in r4.items] == [("d", "第四条")]
    assert offset_of(r4.state) == path.stat().st_size

    assert source.fetch(r4.state).items == []


def test_bad_lines_skipped_with_path_and_line_number(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        line("a")
        + "{not json\n"
        + json.dumps({"text": "没有id"}) + "\n"
        + "\n"
        + json.dumps({"id": "x"}) + "\n"
        + "[1, 2]\n"
        + line("t", published_at="明天下午")
        + line("b"),
        encoding="utf-8",
    )
    source = make_source(path)
    result = source.fetch(SourceState())
    assert [i.external_id for i in result.items] == ["a", "b"]
    assert len(result.skipped) == 5
    assert result.skipped[0].startswith(f"{path}:2: invalid JSON")
    assert result.skipped[1] == f"{path}:3: missing id field 'id'"
    assert result.skipped[2] == f"{path}:5: missing text field 'text'"
    assert result.skipped[3] == f"{path}:6: expected a JSON object, got list"
    assert result.skipped[4].startswith(f"{path}:7: unreadable time in 'published_at'")

    # line numbers continue on the next poll
    append(path, "oops\n" + line("c"))
    later = source.fetch(result.state)
    assert [i.external_id for i in later.items] == ["c"]
    assert later.skipped[0].startswith(f"{path}:9: invalid JSON")


def test_truncated_file_is_read_from_start(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(line("a") + line("b") + line("c"), encoding="utf-8")
    source = make_source(path)
    state = source.fetch(SourceState()).state

    path.write_text(line("z"), encoding="utf-8")  # truncate + rewrite (smaller)
    result = source.fetch(state)
    assert [i.external_id for i in result.items] == ["z"]
    assert offset_of(result.state) == path.stat().st_size


def test_replaced_file_is_read_from_start(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(line("a"), encoding="utf-8")
    source = make_source(path)
    state = source.fetch(SourceState()).state

    new = tmp_path / "new.jsonl"
    new.write_text(line("n1") + line("n2") + line("n3"), encoding="utf-8")
    os.replace(new, path)  # logrotate-style: new inode, larger than the old offset
    assert [i.external_id for i in source.fetch(state).items] == ["n1", "n2", "n3"]


def test_rewritten_in_place_with_different_start_is_read_from_start(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(line("a"), encoding="utf-8")
    source = make_source(path)
    state = source.fetch(SourceState()).state

    with open(path, "r+", encoding="utf-8") as f:  # same inode, new content, larger
        f.truncate(0)
        f.write(line("q") + line("r"))
    assert [i.external_id for i in source.fetch(state).items] == ["q", "r"]


def test_missing_file_is_fetch_error(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(FetchError) as info:
        make_source(path).fetch(SourceState())
    assert info.value.reason == f"file not found: {path}"
    assert info.value.source == "export"


def test_poll_is_capped(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(line(str(n)) for n in range(5)), encoding="utf-8")
    source = make_source(path, max_lines=3)
    r1 = source.fetch(SourceState())
    assert [i.external_id for i in r1.items] == ["0", "1", "2"]
    r2 = source.fetch(r1.state)
    assert [i.external_id for i in r2.items] == ["3", "4"]


def test_custom_field_names_and_nested_paths(tmp_path):
    path = tmp_path / "weibo.jsonl"
    record = {
        "mid": 4998877665544332,
        "content": "退钱！",
        "user": {"screen_name": "维权中"},
        "created_at": 1714963500123,  # epoch milliseconds
        "reply_to": 4998877665500000,
    }
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    source = make_source(
        path, id_field="mid", text_field="content", author_field="user.screen_name",
        time_field="created_at", parent_field="reply_to",
    )
    (item,) = source.fetch(SourceState()).items
    assert item.external_id == "4998877665544332"
    assert item.text == "退钱！" and item.author == "维权中"
    assert item.parent_id == "4998877665500000"
    assert item.published_at == datetime(2024, 5, 6, 2, 45, 0, 123000, tzinfo=timezone.utc)


def test_bom_and_crlf_lines(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line("a").replace("\n", "\r\n").encode() + line("b").encode())
    result = make_source(path).fetch(SourceState())
    assert [i.external_id for i in result.items] == ["a", "b"] and result.skipped == []


def test_corrupt_cursor_reads_from_start(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(line("a"), encoding="utf-8")
    for cursor in ("garbage", '{"offset": -5}', "[]"):
        result = make_source(path).fetch(SourceState(cursor=cursor))
        assert [i.external_id for i in result.items] == ["a"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06T10:30:00+08:00", datetime(2024, 5, 6, 2, 30, tzinfo=timezone.utc)),
        ("2024-05-06T02:30:00Z", datetime(2024, 5, 6, 2, 30, tzinfo=timezone.utc)),
        ("2024-05-06 10:30:00", datetime(2024, 5, 6, 10, 30)),
        (1714963500, datetime(2024, 5, 6, 2, 45, tzinfo=timezone.utc)),
        (1714963500.5, datetime(2024, 5, 6, 2, 45, 0, 500000, tzinfo=timezone.utc)),
        ("1714963500", datetime(2024, 5, 6, 2, 45, tzinfo=timezone.utc)),
        (None, None),
        ("", None),
    ],
)
def test_parse_time(value, expected):
    result = parse_time(value)
    assert result == expected
    if expected is not None:
        assert (result.tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize("value", ["yesterday", True, [2024], "2024-13-01"])
def test_parse_time_rejects(value):
    with pytest.raises(ValueError):
        parse_time(value)


def test_registered():
    assert SOURCES.get("jsonl") is JsonlFileSource
