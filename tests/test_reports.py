"""复盘 reports: built from a real database, rendered, written and opened again — through the CLI."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from rich.console import Console
from typer.testing import CliRunner

from alerts.escalation import IncidentsConfig
from alerts.incidents import IncidentManager
from alerts.plans import PlanConfig
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.cli import app
from monitor.app.reports import build_incident_report, build_summary, progress_bar
from monitor.app.reports.chart import volume_chart
from monitor.app.reports.model import Series
from monitor.app.reports.render import format_duration
from monitor.storage import repo
from monitor.storage.models import NotificationRow
from tests.factories import make_mention

runner = CliRunner()
T0 = datetime(2026, 3, 15, 4, 0, tzinfo=timezone.utc)  # 12:00 in Asia/Shanghai
MIN = timedelta(minutes=1)
TOPIC, OTHER = "鲜丰奶茶", "别的品牌"
PLANS = (PlanConfig(name="一般舆情预案", severities=("IV", "III", "II", "I"), steps=[
    {"title": "核实信息来源", "owner": "舆情专员", "due": "30m"},
    {"title": "发布客服回复", "owner": "客服主管", "due": "1h"}]),)


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def write_config(db, tmp_path, tz: str | None = None):
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"storage:\n  url: {json.dumps(db.url)}\n" + (f"timezone: {tz}\n" if tz else "")
        + f"topics:\n  - name: {TOPIC}\n    keywords: [鲜丰]\n  - name: 新品牌\n    keywords: [新品]\n",
        encoding="utf-8")
    return path


@pytest.fixture
def config_file(db, tmp_path):
    return write_config(db, tmp_path)


def store(db, mentions):
    with db.session() as s:
        return repo.insert_mentions(s, mentions)


def seed(db) -> dict:
    """Two calm hours of 鲜丰奶茶 (3 mentions every 10 min), a burst of complaints from T0, an incident worked and resolved."""
    calm = [make_mention(published_at=T0 - 2 * 60 * MIN + k * 10 * MIN, topics=(TOPIC,), label="positive",
                         score=0.8, author=f"路人{k}", text=f"鲜丰奶茶真好喝{k}-{j}")
            for k in range(12) for j in range(3)]
    burst, n = [], 0
    for k in range(6):
        at = T0 + k * 10 * MIN
        for j in range(4):
            n += 1
            burst.append(make_mention(published_at=at, topics=(TOPIC,), label="negative", score=0.01 * n,
                                      author="愤怒的顾客" if j == 0 else f"网友{k}{j}", text=f"鲜丰奶茶喝坏肚子{k}-{j}"))
        burst.append(make_mention(published_at=at, topics=(TOPIC,), label="neutral", score=0.5,
                                  author="愤怒的顾客", text=f"鲜丰奶茶怎么回事{k}"))
    stored = store(db, calm + burst)
    worst = burst[0]
    copy = make_mention(published_at=T0 + 2 * MIN, topics=(TOPIC,), label="negative", score=0.001, author="搬运工",
                        text="转发：" + worst.text, duplicate_of=(worst.source, worst.external_id), dup_kind="near")
    other = [make_mention(published_at=T0 + 5 * MIN, topics=(OTHER,), label="negative", score=0.002,
                          author="别家顾客", text=f"别的品牌也不行{j}") for j in range(10)]
    store(db, [copy, *other])
    by_text = {m.text: m for m in stored}

    # one incident per topic and rule: the day also has a second, older incident on the same topic
    manager = IncidentManager(db, plans=PLANS, settings=IncidentsConfig(group_by="topic_rule"))
    evidence = tuple(by_text[m.text] for m in burst[:2])
    match = Match("firing", "负面激增", "negative_spike", TOPIC, T0 + 10 * MIN, Severity.III,
                  "「鲜丰奶茶」负面声量激增：近10m负面 8 条", {"current_negative": 8, "window": "10m", "ratio": 9.5},
                  evidence)
    [alert] = manager.handle([match], T0 + 10 * MIN)
    iid = alert.incident_id
    manager.acknowledge(iid, "小王", T0 + 15 * MIN)
    manager.set_step(iid, 1, "done", "小王", T0 + 20 * MIN)
    manager.add_note(iid, "小王", T0 + 30 * MIN, "已联系门店核实 <批次>")
    manager.set_step(iid, 2, "done", "客服小李", T0 + 75 * MIN)  # due at +70m: late
    manager.resolve(iid, "李经理", T0 + 80 * MIN, "已发声明")
    with db.session() as s:
        s.add(NotificationRow(incident_id=iid, channel="值班群", alert_kind="firing", dedup_key="k", status="sent",
                              attempt=1, at=T0 + 10 * MIN))
        s.add(NotificationRow(incident_id=iid, channel="短信", alert_kind="firing", dedup_key="k", status="failed",
                              attempt=1, at=T0 + 10 * MIN, error="timeout"))
    return {"incident": iid, "manager": manager, "worst": by_text[worst.text]}


def second_incidents(manager) -> tuple[int, int]:
    """One more incident that day (acked after 15 min, still open) and one carried over from the day before."""
    [a] = manager.handle([Match("firing", "负面激增", "negative_spike", OTHER, T0 + 20 * MIN, Severity.II,
                                "「别的品牌」负面声量激增", {"window": "10m"})], T0 + 20 * MIN)
    manager.acknowledge(a.incident_id, "小张", T0 + 35 * MIN)
    before = T0 - 18 * 60 * MIN  # 03-14 18:00 local
    [b] = manager.handle([Match("firing", "负面占比", "negative_share", TOPIC, before, Severity.IV, "「鲜丰奶茶」负面占比偏高",
                                {"window": "1h"})], before)
    return a.incident_id, b.incident_id


# -- a small DOM for opening the generated HTML ------------------------------------------------------------
VOID = {"meta", "br", "hr", "img", "link", "input"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None"):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], ""

    def iter(self, tag: str | None = None):
        for c in self.children:
            if tag is None or c.tag == tag:
                yield c
            yield from c.iter(tag)

    def find(self, tag: str, **attrs) -> "Node | None":
        return next((n for n in self.iter(tag) if all(n.attrs.get(k) == v for k, v in attrs.items())), None)

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class Tree(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.root = self.cur = Node("#root", {}, None)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"unbalanced </{tag}>"
        self.cur = node.parent

    def handle_data(self, data):
        self.cur.text += data


def rows(table: Node) -> list[list[str]]:
    body = table.find("tbody")
    return [[" ".join(td.all_text().split()) for td in tr.iter("td")] for tr in body.iter("tr")]


def path_points(d: str) -> list[list[tuple[float, float]]]:
    """The segments of an SVG path (``M x y L x y ...``) as lists of points."""
    segments: list[list[tuple[float, float]]] = []
    for cmd, x, y in re.findall(r"([ML])\s*([-\d.]+)\s+([-\d.]+)", d):
        if cmd == "M":
            segments.append([])
        segments[-1].append((float(x), float(y)))
    return segments


# -- incident report ----------------------------------------------------------------------------------------
def test_incident_report_collects_times_curve_mentions_and_steps(db):
    s = seed(db)
    report = build_incident_report(db, s["incident"], tz="Asia/Shanghai", now=T0 + 3 * 60 * MIN)
    i = report.incident
    assert (i.tta, i.ttr, i.acked_by, i.resolved_by) == (5 * MIN, 70 * MIN, "小王", "李经理")
    # chart: 2h before opening (T0+10m) .. 1h after the resolution (T0+80m), 5-minute buckets, local-aligned
    assert report.series.step == 5 * MIN
    assert report.series.start == T0 - 110 * MIN and report.series.end == T0 + 145 * MIN
    by_time = dict(zip(report.series.times, zip(report.series.totals, report.series.negatives)))
    assert by_time[T0 - 110 * MIN] == (3, 0)  # calm; the first calm bucket (T0-2h) is outside the chart
    assert by_time[T0] == (6, 5)  # 4 negative + 1 neutral + the copy; 别的品牌 is another topic
    assert by_time[T0 + 50 * MIN] == (5, 4) and by_time[T0 + 5 * MIN] == (0, 0)
    assert (sum(report.series.totals), sum(report.series.negatives)) == (33 + 31, 25)
    # top negatives: from one rule window (10m) before opening until resolved; story roots only
    assert (report.span_start, report.span_end) == (T0, T0 + 80 * MIN)
    assert (report.total, report.negative) == (31, 25)
    assert [m.score for m in report.top_negative] == pytest.approx([0.01 * k for k in range(1, 11)])
    assert report.top_negative[0].id == s["worst"].id and report.top_negative[0].reposts == 1
    assert (report.top_authors[0].author, report.top_authors[0].negative, report.top_authors[0].total) == ("愤怒的顾客", 6, 12)
    assert [(st.position, st.status, st.done_by, st.late) for st in report.steps] == [
        (1, "done", "小王", False), (2, "done", "客服小李", True)]
    assert [e.kind for e in report.timeline] == ["opened", "plan", "acknowledged", "step", "note", "step", "resolved"]
    assert [m.id for m in report.evidence][:1] == [s["worst"].id]
    assert [(c.channel, c.sent, c.failed) for c in report.notifications] == [("值班群", 1, 0), ("短信", 0, 1)]
    assert [m.label for m in report.markers] == ["opened", "acked", "resolved"]


def test_an_ongoing_incident_is_charted_until_now(db):
    store(db, [make_mention(published_at=T0 + k * MIN, topics=(TOPIC,)) for k in range(10)])
    [alert] = IncidentManager(db).handle([Match("firing", "负面激增", "negative_spike", TOPIC, T0 + 5 * MIN,
                                                Severity.IV, "「鲜丰奶茶」负面声量激增", {"window": "5m"})], T0 + 5 * MIN)
    report = build_incident_report(db, alert.incident_id, tz="Asia/Shanghai", now=T0 + 20 * MIN)
    assert report.incident.status == "open" and report.incident.ttr is None
    assert report.series.end == T0 + 20 * MIN + report.series.step  # the bucket holding "now" is the last
    assert (report.span_start, report.total, report.negative) == (T0, 10, 10)
    assert [m.label for m in report.markers] == ["opened"]


def test_incident_report_html_opens_with_chart_and_timeline(db, config_file, tmp_path):
    s = seed(db)
    out = tmp_path / "report.html"
    result = cli("report", "incident", str(s["incident"]), "--out", str(out), "--config", str(config_file))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "7 timeline entries" in result.output
    assert "━" not in result.output  # not a terminal: no progress bar
    doc = Tree(out.read_text(encoding="utf-8")).root

    figure = doc.find("figure", id="chart")
    svg = figure.find("svg")
    assert svg is not None and "viewbox" in svg.attrs  # html.parser lower-cases names
    share = svg.find("g", id="negative-share").find("path")
    segments = path_points(share.attrs["d"])
    # one vertex per bucket with mentions (every other 5-min bucket): 11 calm ones, then the 6 of the burst
    [points] = segments
    assert len(points) == 17 and [x for x, _ in points] == sorted(x for x, _ in points)
    calm_y = {y for _, y in points[:11]}
    burst_y = [y for _, y in points[11:]]
    assert len(calm_y) == 1  # 0 % throughout
    assert all(y < min(calm_y) for y in burst_y)  # SVG y grows downwards: a higher share is higher up
    assert burst_y[0] < burst_y[1]  # 5/6 negative (the copy) above 4/5
    assert svg.find("g", id="marker-opened") is not None and svg.find("g", id="marker-resolved") is not None

    view = s["manager"].view(s["incident"])
    timeline = rows(doc.find("table", id="timeline"))
    assert len(timeline) == len(view.events) == 7
    assert timeline[0][0] == "2026-03-15 12:10:00" and timeline[0][1] == "触发"
    assert timeline[2][1:3] == ["确认", "小王"] and timeline[-1][1:] == ["解决", "李经理", "已发声明"]
    assert timeline[4][3] == "已联系门店核实 <批次>"  # escaped, shown as written
    assert "5分00秒" in doc.find("div", id="tta").all_text()
    assert "1小时10分" in doc.find("div", id="ttr").all_text()
    steps = rows(doc.find("table", id="steps"))
    assert [r[5] for r in steps] == ["小王", "客服小李"] and "超时" in steps[1][6] and "超时" not in steps[0][6]
    assert doc.find("title").all_text() == f"复盘 #{s['incident']} 「鲜丰奶茶」负面激增"
    text = doc.all_text()
    assert "愤怒的顾客" in text and "鲜丰奶茶喝坏肚子0-0" in text and "别的品牌也不行" not in text


def test_incident_report_markdown_with_chart_beside_it(db, config_file, tmp_path):
    s = seed(db)
    out = tmp_path / "复盘.md"
    result = cli("report", "incident", str(s["incident"]), "-o", str(out), "--config", str(config_file), "--top", "3")
    assert result.exit_code == 0, result.output
    md = out.read_text(encoding="utf-8")
    chart = tmp_path / "复盘.svg"
    assert "![话题「鲜丰奶茶」声量与负面占比](复盘.svg)" in md
    assert chart.read_text(encoding="utf-8").startswith("<svg") and 'id="negative-share"' in chart.read_text()
    assert "| 2026-03-15 12:15:00 | 确认 | 小王 | 已确认，处理中 |" in md
    assert "| 2026-03-15 13:20:00 | 解决 | 李经理 | 已发声明 |" in md
    negatives = md.split("## 最负面的内容")[1].split("##")[0]
    assert negatives.count("| 0.0") == 3  # --top 3


def test_times_follow_the_config_timezone(db, tmp_path):
    s = seed(db)
    out = tmp_path / "utc.html"
    result = cli("report", "incident", str(s["incident"]), "--out", str(out),
                 "--config", str(write_config(db, tmp_path, tz="UTC")))
    assert result.exit_code == 0, result.output
    timeline = rows(Tree(out.read_text(encoding="utf-8")).root.find("table", id="timeline"))
    assert timeline[0][0] == "2026-03-15 04:10:00"


# -- daily and period ---------------------------------------------------------------------------------------
def test_daily_report_incidents_mtta_mttr_and_topics(db, config_file, tmp_path):
    s = seed(db)
    other_id, carried_id = second_incidents(s["manager"])
    out = tmp_path / "daily.html"
    result = cli("report", "daily", "--date", "2026-03-15", "--out", str(out), "--config", str(config_file))
    assert result.exit_code == 0, result.output
    doc = Tree(out.read_text(encoding="utf-8")).root
    assert doc.find("h1").all_text() == "舆情日报 · 2026-03-15"
    incidents = rows(doc.find("table", id="incidents"))
    assert [int(r[0]) for r in incidents] == [other_id, s["incident"], carried_id]
    assert "此前开始" in incidents[2][4] and "此前开始" not in incidents[0][4]
    assert incidents[1][5:7] == ["5分00秒", "1小时10分"]
    assert "10分00秒" in doc.find("div", id="mtta").all_text()  # (5 + 15) / 2; the carried-over one not counted
    assert "1小时10分" in doc.find("div", id="mttr").all_text()
    topics = {r[0]: r[1:] for r in rows(doc.find("table", id="topics"))}
    assert topics == {TOPIC: ["67", "25", "37.3%"], OTHER: ["10", "10", "100.0%"], "新品牌": ["0", "0", "—"]}
    assert doc.find("table", id="days") is None
    share = doc.find("figure", id="chart").find("svg").find("g", id="negative-share").find("path")
    assert sum(len(seg) for seg in path_points(share.attrs["d"])) == 3  # hours with mentions: 10, 11, 12 local
    text = doc.all_text()
    assert "别家顾客" in text and "别的品牌也不行0" in text  # top negatives and authors cover every topic


def test_period_report_per_day_and_per_severity(db, config_file, tmp_path):
    s = seed(db)
    second_incidents(s["manager"])
    out = tmp_path / "week.md"
    result = cli("report", "period", "--since", "2026-03-14", "--until", "2026-03-16", "--out", str(out),
                 "--config", str(config_file))
    assert result.exit_code == 0, result.output
    assert "3 day(s), 3 incidents, 77 mentions (35 negative)" in result.output
    md = out.read_text(encoding="utf-8")
    assert "# 舆情报告 · 2026-03-14 – 2026-03-16" in md
    assert "| 2026-03-14 | 0 | 0 | — | 1 | — | — |" in md
    assert "| 2026-03-15 | 77 | 35 | 45.5% | 2 | 10分00秒 | 1小时10分 |" in md
    assert "| 2026-03-16 | 0 | 0 | — | 0 | — | — |" in md
    assert "| 较大（III级） | 1 | 5分00秒 | 1小时10分 |" in md and "| 一般（IV级） | 1 | — | — |" in md
    assert (tmp_path / "week.svg").exists()
    # the same three days through `daily --days 3`
    again = cli("report", "daily", "--date", "2026-03-16", "--days", "3", "--out", str(tmp_path / "d3.md"),
                "--config", str(config_file))
    assert again.exit_code == 0, again.output
    def body(text: str) -> str:  # without the "generated at" footer
        return text.split("\n---\n")[0]

    assert body((tmp_path / "d3.md").read_text(encoding="utf-8")) == body(md).replace("week.svg", "d3.svg")


def test_summary_mtta_counts_only_incidents_opened_in_the_period(db):
    s = seed(db)
    second_incidents(s["manager"])
    day = build_summary(db, date(2026, 3, 15), date(2026, 3, 15), tz="Asia/Shanghai", now=T0)
    assert [i.carried_over for i in day.incidents] == [False, False, True]
    assert (day.mtta, day.mttr, day.acked, day.resolved) == (10 * MIN, 70 * MIN, 2, 1)
    assert day.series.step == timedelta(hours=1) and len(day.series.totals) == 24
    assert (day.total, day.negative) == (77, 35)
    assert day.top_negative[0].score == pytest.approx(0.002)  # 别的品牌; the copy (0.001) is not a story root
    assert [(a.author, a.negative) for a in day.top_authors[:2]] == [("别家顾客", 10), ("愤怒的顾客", 6)]
    utc = build_summary(db, date(2026, 3, 15), date(2026, 3, 15), tz="UTC", now=T0)
    assert utc.start == datetime(2026, 3, 15, tzinfo=timezone.utc) and utc.total == 77


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_1(db, config_file, tmp_path):
    seed(db)
    c = ("--config", str(config_file))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (("report", "incident", "999", "--out", str(tmp_path / "r.html")), "error: no incident #999"),
        (("report", "daily", "--date", "2026-03-01", "--out", str(tmp_path / "r.html")),
         "error: no data for 2026-03-01 (Asia/Shanghai): no mentions and no incidents"),
        (("report", "incident", "1", "--out", str(blocker / "r.html")),
         f"error: --out {blocker / 'r.html'}: directory {blocker} does not exist"),
        (("report", "incident", "1", "--out", str(tmp_path / "missing" / "r.html")),
         f"error: --out {tmp_path / 'missing' / 'r.html'}: directory {tmp_path / 'missing'} does not exist"),
        (("report", "incident", "1", "--out", str(tmp_path)), f"error: --out {tmp_path}: expected a file name ending in .html or .md"),
        (("report", "incident", "1", "--out", str(tmp_path / "r.pdf")),
         f"error: --out {tmp_path / 'r.pdf'}: expected a file name ending in .html or .md"),
        (("report", "daily", "--date", "15/03/2026", "--out", str(tmp_path / "r.md")),
         "error: --date: expected a date like 2026-03-15, got '15/03/2026'"),
        (("report", "period", "--since", "2026-03-16", "--until", "2026-03-14", "--out", str(tmp_path / "r.md")),
         "error: the period ends (2026-03-14) before it starts (2026-03-16)"),
        (("report", "incident", "1", "--before", "soon", "--out", str(tmp_path / "r.md")),
         "error: --before: expected a duration like \"2h\", got 'soon'"),
    ]
    for args, message in cases:
        result = cli(*args, *c)
        assert (result.exit_code, result.output.strip()) == (1, message), args
    assert not list(tmp_path.glob("r.*"))


def test_unwritable_out_file_is_reported(db, config_file, tmp_path):
    s = seed(db)
    out = tmp_path / "report.html"
    out.mkdir()  # a directory where the file should go
    result = cli("report", "incident", str(s["incident"]), "--out", str(out), "--config", str(config_file))
    assert (result.exit_code, result.output.strip()) == (1, f"error: --out {out}: is a directory")


# -- pieces -------------------------------------------------------------------------------------------------
def test_progress_bar_only_on_a_terminal_and_not_when_quiet():
    def run(console, quiet=False):
        with progress_bar(console, quiet=quiet) as track:
            return list(track([1, 2, 3], "2026-03 mentions"))

    tty = io.StringIO()
    assert run(Console(file=tty, force_terminal=True, width=100)) == [1, 2, 3]
    assert "2026-03 mentions" in tty.getvalue() and "3/3" in tty.getvalue()
    for console, quiet in ((Console(file=io.StringIO(), force_terminal=True), True),
                           (Console(file=io.StringIO(), force_terminal=False), False)):
        assert run(console, quiet) == [1, 2, 3]
        assert console.file.getvalue() == ""


def test_month_long_scan_advances_the_bar_once_per_day(db):
    seen: list[tuple[int, str]] = []

    def track(items, description):
        seen.append((len(items), description))
        return items

    store(db, [make_mention(published_at=datetime(2026, 2, 10, 4, tzinfo=timezone.utc), topics=(TOPIC,))])
    report = build_summary(db, date(2026, 2, 1), date(2026, 2, 28), tz="Asia/Shanghai", now=T0, track=track)
    assert seen == [(28, "2026-02-01 – 2026-02-28: mentions")]
    assert report.total == 1 and [d.total for d in report.days if d.total] == [1] and report.days[9].total == 1


def test_chart_line_follows_the_share():
    series = Series(T0, 10 * MIN, (4, 0, 2, 10, 5), (1, 0, 2, 10, 0))
    svg = volume_chart(series, tz="Asia/Shanghai")
    d = re.search(r'<g id="negative-share">\s*<path d="([^"]+)"', svg).group(1)
    [points] = path_points(d)  # no share for the empty bucket nor for 2 mentions: the line joins the others
    [(x0, y25), (x2, y100), (x3, y0)] = points
    assert x0 < x2 < x3 and y100 < y25 < y0
    assert abs((y0 - y25) / (y0 - y100) - 0.25) < 1e-3  # linear: 25 % is a quarter of the way up


def test_durations_read_naturally():
    assert [format_duration(timedelta(seconds=s)) for s in (0, 42, 300, 4200, 90000)] == [
        "0秒", "42秒", "5分00秒", "1小时10分", "1天1小时"]
    assert format_duration(None) == "—"
