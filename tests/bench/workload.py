"""The realistic workload shared by bench_workload.py and bench_restart.py (not a benchmark itself).

* 20 topics (fictional brands) and 100 RSSHub-style Weibo keyword feeds (5 per brand), served by
  :class:`FeedServer` on 127.0.0.1: every request brings ``new`` fresh posts (plus the last
  ``overlap`` ones again, as a real feed does), a fifth of them reposts of earlier posts.
* :func:`config` — every rule type (negative_spike, negative_share, frequency, influencer, keyword;
  source_health by default) and one webhook channel pointing at a local :func:`receiver`.
* ``--tree DIR`` support (:func:`select_tree`): measure another checkout (e.g. a git worktree of the
  commit before a change) with this checkout's benchmark code; the daemon subprocess runs from it too.

Nothing from the product is imported at module level, so :func:`select_tree` decides which tree
the product modules come from.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections import deque
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
CACHE = Path(os.environ.get("YUQING_BENCH_CACHE", Path(os.environ.get("TMPDIR", "/tmp")) / "yuqing-bench-cache"))
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_ENV = "MONITOR_TEST_DATABASE_URL"

BRANDS = ["星河手机", "鲜丰奶茶", "云帆快递", "青禾超市", "极光汽车", "蓝鲸外卖", "木棉酒店", "北辰银行", "松果电器",
          "白鹭航空", "橙子影院", "海盐咖啡", "竹影家居", "远山保险", "小鹿母婴", "银杏诊所", "火山游戏", "晴空宽带",
          "麦田面包", "金橘健身"]
ASPECTS = ["", "投诉", "售后", "新品", "门店"]  # 5 keyword feeds per brand: 100 sources
NEGATIVE = ["充电半小时就烫手", "客服电话打了三次都没人接", "退款一周了还没到账", "包装破损还不给换", "吃完肚子疼了一晚上",
            "售后说是正常现象", "价格比上周贵了一倍", "送货员态度很差", "会员积分突然清零了", "发票到现在都没开",
            "排队排了一个多小时", "APP一直闪退登不上", "优惠券用不了", "说好的赠品没有送", "隔音太差一晚没睡",
            "审批拖了一个月", "质量太差用两天就坏", "虚假宣传骗人"]
POSITIVE = ["新品很好喝，推荐", "拍照效果很好，夜景清晰", "物流很快，第二天就到了", "店员很热情，点赞", "性价比很高",
            "环境干净舒服", "服务周到，下次还来", "活动力度很大，划算"]
PLACES = ["杭州", "成都", "北京朝阳", "上海浦东", "广州天河", "武汉光谷", "西安", "南京新街口", "深圳南山", "重庆"]
NEG_ENDINGS = ["大家评评理", "再也不来了", "希望官方给个说法", "已经投诉到12315", "气死我了", "有同样遭遇的吗",
               "准备维权了", "必须曝光一下"]
POS_ENDINGS = ["体验还不错", "总体满意", "下次还会买", "先记录一下"]
REPOST_PREFIX = ["同感", "转发", "顶", "太真实了", "我也是"]


def select_tree(argv: list[str]) -> Path:
    """The checkout to measure (``--tree DIR``, default this one), put first on ``sys.path``."""
    tree = PROJECT
    for i, arg in enumerate(argv):
        if arg == "--tree" and i + 1 < len(argv):
            tree = Path(argv[i + 1]).resolve()
        elif arg.startswith("--tree="):
            tree = Path(arg.split("=", 1)[1]).resolve()
    if not (tree / "monitor" / "__init__.py").exists():
        raise SystemExit(f"--tree {tree}: not a checkout of the project (no monitor/__init__.py)")
    sys.path.insert(0, str(tree))
    return tree


def tree_label(tree: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(tree)
    return f"{tree} @ {rev}{' + uncommitted changes' if dirty else ''}"


# -- posts ------------------------------------------------------------------------------
def source_keyword(i: int) -> str:
    return BRANDS[i // len(ASPECTS) % len(BRANDS)] + ASPECTS[i % len(ASPECTS)]


def source_name(i: int) -> str:
    return f"微博搜索·{source_keyword(i)}"


class PostMaker:
    """Deterministic Weibo-like posts for one source: mostly about its brand, ~45% negative."""

    def __init__(self, index: int, seed: int = 11):
        self.index = index
        self.rng = random.Random(seed * 1_000_003 + index)
        self.brand = BRANDS[index // len(ASPECTS) % len(BRANDS)]
        self.count = 0
        self.recent: deque[tuple[str, str]] = deque(maxlen=50)  # (author, text) for reposts

    def text(self) -> tuple[str, str]:
        """(author, text) of the next post."""
        rng = self.rng
        self.count += 1
        author = f"用户{self.index:03d}{rng.randrange(100000):05d}"
        if self.recent and rng.random() < 0.2:
            orig_author, orig = rng.choice(self.recent)
            text = f"{rng.choice(REPOST_PREFIX)} //@{orig_author}:{orig}"
        else:
            brand = self.brand if rng.random() < 0.9 else f"{self.brand}和{rng.choice(BRANDS)}"
            if rng.random() < 0.45:
                body, ending = "，".join(rng.sample(NEGATIVE, 2)), rng.choice(NEG_ENDINGS)
            else:
                body, ending = "，".join(rng.sample(POSITIVE, 2)), rng.choice(POS_ENDINGS)
            text = f"{rng.choice(PLACES)}的{brand}，{body}，{ending}[{rng.choice(['怒', '哈哈', '泪', '赞'])}]"
        self.recent.append((author, text))
        return author, text


def scorer_texts(count: int, seed: int = 11) -> list[str]:
    """The texts the feeds carry (same generator), for the scorer-only baseline."""
    makers = [PostMaker(i, seed) for i in range(100)]
    return [makers[k % 100].text()[1] for k in range(count)]


class _Feed:
    def __init__(self, index: int, keep: int, seed: int):
        self.maker = PostMaker(index, seed)
        self.items: deque[bytes] = deque(maxlen=keep)
        self.lock = threading.Lock()

    def next_body(self, new: int, now: datetime) -> bytes:
        with self.lock:
            for _ in range(new):
                author, text = self.maker.text()
                n = self.maker.count
                i = self.maker.index
                link = f"https://weibo.com/{5500000000 + i * 10_000_000 + n}/Oc{i:03d}{n:08d}"
                at = format_datetime(now - timedelta(seconds=self.maker.rng.random() * 30))
                self.items.append((f"<item><title><![CDATA[{text[:40]}]]></title><description><![CDATA[{text}"
                                   f"<br><img src=\"https://wx1.sinaimg.cn/large/{n}.jpg\">]]></description>"
                                   f"<pubDate>{at}</pubDate><guid isPermaLink=\"false\">{escape(link)}</guid>"
                                   f"<link>{escape(link)}</link><author><![CDATA[{author}]]></author></item>"
                                   ).encode("utf-8"))
            items = list(reversed(self.items))
        return (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>'
                + f"微博关键词 {source_keyword(self.maker.index)}".encode("utf-8")
                + b"</title><link>https://s.weibo.com</link>" + b"".join(items) + b"</channel></rss>")


class FeedServer:
    """RSSHub's ``/weibo/keyword/{keyword}`` for the 100 workload keywords on 127.0.0.1.

    Each request of a feed brings ``new`` posts nobody saw before (published within the last
    30 s) and repeats the previous ``overlap`` ones. ``stop()`` makes feeds return no new posts.
    """

    def __init__(self, sources: int = 100, new: int = 20, overlap: int = 10, seed: int = 11):
        from tests.servers import LocalServer, Response

        self._response = Response
        self.new = new
        self.feeds = {f"/weibo/keyword/{quote(source_keyword(i))}": _Feed(i, new + overlap, seed)
                      for i in range(sources)}
        self.requests = 0
        self.served_new = 0
        self.paused = False
        self._count_lock = threading.Lock()
        self.server = LocalServer(self._handle)
        self.server.requests = _Discard()  # LocalServer records every request; not for hours of polling

    def _handle(self, req):
        feed = self.feeds.get(req.path.split("?")[0]) or self.feeds.get(quote(unquote(req.path.split("?")[0])))
        if feed is None:
            return self._response(404, b"not found")
        new = 0 if self.paused else self.new
        body = feed.next_body(new, datetime.now(timezone.utc))
        with self._count_lock:
            self.requests += 1
            self.served_new += new
        return self._response(200, body, {"Content-Type": "application/rss+xml; charset=utf-8"})

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> "FeedServer":
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)


class _Discard(list):
    def append(self, _item) -> None:
        pass


@contextmanager
def receiver() -> Iterator:
    """The webhook channel's endpoint: answers 200 to everything; ``len(server.requests)`` pages."""
    from tests.servers import LocalServer, Response

    with LocalServer(lambda req: Response(200, b'{"errcode":0}', {"Content-Type": "application/json"})) as server:
        yield server


# -- config -----------------------------------------------------------------------------
RULES = [
    {"name": "负面激增", "type": "negative_spike"},
    {"name": "负面占比", "type": "negative_share", "window": "30m", "min_share": 0.6, "min_total": 20},
    {"name": "危机词", "type": "keyword", "terms": {"爆炸": "I", "中毒": "II", "维权": "IV"}, "crisis_words": True,
     "crisis_severity": "III", "labels": ["negative", "neutral"]},
    {"name": "退款投诉", "type": "frequency", "count": 5, "window": "10m", "labels": ["negative"],
     "terms": ["退款", "投诉", "12315"]},
    {"name": "大V负面", "type": "influencer", "min_followers": 100000},
]  # no source-scoped rule: every source gets the default source_health rule (数据源异常)


def config(data_dir: Path, *, feed_url: str, hook_url: str, database_url: str | None, sources: int = 100,
           interval: str = "500ms", rules_interval: str = "30s") -> dict:
    return {
        "data_dir": str(data_dir),
        "storage": {"url": database_url or f"sqlite:///{data_dir / 'monitor.db'}"},
        "sources": [{"name": source_name(i), "type": "rss", "preset": "weibo_keyword", "rsshub": feed_url,
                     "args": {"keyword": source_keyword(i)}, "interval": interval} for i in range(sources)],
        "topics": [{"name": b, "keywords": [b], "exclude": ["招聘"]} for b in BRANDS],
        "rules": RULES,
        "channels": [{"name": "值班机器人", "type": "webhook", "url": hook_url + "/hook", "secret": "bench-secret",
                      "min_severity": "IV"}],
        "scheduler": {"rules_interval": rules_interval, "shutdown_grace": "10s"},
    }


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg, ensure_ascii=False, indent=1), encoding="utf-8")  # JSON is YAML
    return path


def provide_default_model(data_dir: Path) -> None:
    """Put the tree's default sentiment model into ``data_dir/models`` (built once, cached in CACHE)."""
    from nlp.train import default_model, default_model_path

    default_model(CACHE)  # built on first use: the recipe follows the tree's code
    src = default_model_path(CACHE)
    dst = default_model_path(data_dir)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


# -- databases ----------------------------------------------------------------------------
def postgres_url(explicit: str | None = None) -> str | None:
    """The PostgreSQL server to use: ``explicit``, $MONITOR_TEST_DATABASE_URL, or 127.0.0.1:5432 if it answers."""
    url = explicit or os.environ.get(PG_ENV)
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        return None
    return PG_DEFAULT


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A private, empty schema on ``base_url`` (dropped afterwards): the URL selecting it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, future=True)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def simple_url(url: str) -> str:
    """What to print for a database URL (no password, no options)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.get_backend_name() if u.get_backend_name() == "sqlite" else "postgresql"


# -- processes ----------------------------------------------------------------------------
def daemon_command(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "monitor", "run", "--config", str(config_path)]


def tree_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("MONITOR_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) in kB of a process, {} once it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_seconds() -> float:
    """CPU seconds all processes of the machine have used so far (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} cores"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
