"""The sentiment scorer: behaviour of the default model, training on the project's fixtures,
the model file format, batch scoring in the process pool, and the `monitor nlp` commands."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.app.config import parse_config
from nlp.datasets import Example, parse_lines, read_examples
from monitor.core.errors import ModelError
from nlp.model import FORMAT_VERSION, SentimentModel
from nlp.sentiment import BayesScorer, scorer_from_config
from nlp.train import default_model, default_model_path, evaluate, train

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nlp"


@pytest.fixture(scope="module")
def scorer(tmp_path_factory) -> BayesScorer:
    """The pipeline's default scorer (the default model, built into a fresh data dir)."""
    return scorer_from_config(parse_config(f"data_dir: {tmp_path_factory.mktemp('data')}"))


@pytest.fixture(scope="module")
def fixture_model() -> SentimentModel:
    return train(read_examples(FIXTURES / "reviews.csv") + read_examples(FIXTURES / "weibo.txt"), workers=1)


def test_negation_flips_the_label(scorer):
    for plain, negated in [("好吃", "不好吃"), ("满意", "很不满意"), ("这家店的服务很好", "这家店的服务不好")]:
        assert scorer.score(plain) > 0.5 > scorer.score(negated), (plain, negated)


def test_emoticons_count(scorer):
    base = "今天去了鲜丰奶茶"
    assert scorer.score(base + "[怒]") < scorer.score(base) < scorer.score(base + "[赞]")
    assert scorer.score("[泪]") < 0.4 < 0.6 < scorer.score("[哈哈]")  # emoticon-only posts have a sentiment


def test_degree_words_strengthen(scorer):
    assert scorer.score("非常好吃") > scorer.score("好吃") > 0.5
    assert scorer.score("非常难吃") < scorer.score("有点难吃") < 0.5


def test_traditional_and_simplified_score_alike(scorer):
    assert scorer.score("服務態度很差，要求退款") == scorer.score("服务态度很差，要求退款")


def test_the_authors_words_decide_not_the_reposted_chain(scorer):
    assert scorer.score("太好喝了，推荐//@小王:难喝死了，差评") > 0.5
    assert scorer.score("难喝死了，差评//@小王:太好喝了，推荐") < 0.5


def test_degenerate_input_has_defined_scores(scorer):
    assert scorer.score("") == 0.5 and scorer.score(None) == 0.5 and scorer.score("   ") == 0.5
    assert scorer.score("😀🎉") == scorer.score("[哈哈]🎉")  # emoji map to emoticons; unknown ones are ignored
    assert scorer.score("xqzv") == 0.5  # nothing known: neutral
    for odd in [b"\xff\xfe\xfa", "ab\ud800cd", "差评" * 50_000, "\x00" * 10]:
        assert 0.0 <= scorer.score(odd) <= 1.0


def test_batch_scores_equal_single_scores_and_use_the_pool(scorer, tmp_path):
    texts = ["好吃", "不好吃", "", "送餐太慢了，差评[怒]", "鲜丰奶茶的杨枝甘露性价比很高，满意[赞]"] * 60
    pooled = BayesScorer(scorer.model, model_path=scorer.model_path, workers=2, batch_min=100)
    try:
        assert pooled.score_many(texts) == [scorer.score(t) for t in texts]
        assert pooled._pool is not None and pooled._pool._executor is not None  # the pool did the work
        assert pooled.score_many(texts[:3]) == [scorer.score(t) for t in texts[:3]]  # small batches in-process
    finally:
        pooled.close()


def test_default_model_is_cached_in_the_data_dir(scorer, tmp_path):
    path = default_model_path(tmp_path)
    model, where = default_model(tmp_path)
    assert where == path and path.exists()
    assert SentimentModel.load(path).version == model.version == scorer.version
    assert model.version.startswith("default-nb-")


def test_training_on_the_projects_fixtures(fixture_model):
    m = fixture_model
    assert m.algorithm == "nblr" and m.meta["n_examples"] == 60 and m.meta["seed_lexicon"]
    assert m.chars and any(k.startswith("~") for k in m.weights)  # words and characters, two views in one
    report = evaluate(m, read_examples(FIXTURES / "reviews.csv"))
    assert set(report) >= {"accuracy", "macro_f1", "n", "docs_per_s", "model"}
    assert report["n"] == 30 and report["model"] == m.version
    assert evaluate(train([Example("好", 1)] * 3 + [Example("坏", 0)] * 3, algorithm="nb", workers=1),
                    [Example("好", 1), Example("坏", 0)])["accuracy"] == 1.0


def test_both_file_formats_are_read():
    csv_rows = list(parse_lines(['label,review\n', '1,"好,吃"\n', '0,难吃\n', 'x,skipped\n']))
    assert csv_rows == [Example("好,吃", 1), Example("难吃", 0)]
    weibo = list(parse_lines(["4231,1,第一,第二,第三\n", "4232,0,差\n", "broken line\n"]))
    assert weibo == [Example("第一,第二,第三", 1), Example("差", 0)]


def test_model_round_trip_and_format_errors(fixture_model, tmp_path):
    path = fixture_model.save(tmp_path / "m.json.gz")
    loaded = SentimentModel.load(path)
    assert loaded.version == fixture_model.version and loaded.chars == fixture_model.chars
    assert loaded.probability({"好吃": 1.0}) == pytest.approx(fixture_model.probability({"好吃": 1.0}), abs=1e-4)

    doc = json.loads(gzip.decompress(path.read_bytes()))
    doc["format_version"] = FORMAT_VERSION + 1
    other = tmp_path / "other.json.gz"
    other.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(ModelError, match=r"model format version 2.*retrain"):
        SentimentModel.load(other)
    (tmp_path / "junk").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a sentiment model file"):
        SentimentModel.load(tmp_path / "junk")
    with pytest.raises(ModelError, match="not found"):
        SentimentModel.load(tmp_path / "missing.json.gz")


def test_cli_train_eval_score(tmp_path):
    runner = CliRunner()
    env = {"MONITOR_DATA_DIR": str(tmp_path / "data")}
    model = tmp_path / "fixtures.json.gz"
    result = runner.invoke(app, ["nlp", "train", str(FIXTURES / "reviews.csv"), str(FIXTURES / "weibo.txt"),
                                 "--out", str(model), "--workers", "1"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"].startswith("fixtures-nblr-") and model.exists()

    result = runner.invoke(app, ["nlp", "eval", str(FIXTURES / "weibo.txt"), "--model", str(model)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # exactly one JSON object
    assert report["n"] == 30 and report["model"] == summary["model"] and 0 <= report["macro_f1"] <= 1

    result = runner.invoke(app, ["nlp", "score", "--json", "--model", str(model), "服務太差，已投訴到１２３１５[怒]"],
                           env=env)
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["label"] == "negative" and scored["crisis_words"] == ["投诉", "12315"]
    assert scored["cleaned"] == "服务太差,已投诉到12315[怒]"

    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(gzip.compress(json.dumps({"format": "yuqing-sentiment", "format_version": 99}).encode()))
    result = runner.invoke(app, ["nlp", "score", "--model", str(bad), "好"], env=env)
    assert result.exit_code == 1 and "model format version 99" in result.output
    result = runner.invoke(app, ["nlp", "train", "--out", str(tmp_path / "x.json.gz")], env=env)
    assert result.exit_code == 1 and "give labelled FILEs" in result.output


def test_config_chooses_the_model(fixture_model, tmp_path):
    data = tmp_path / "data"
    fixture_model.save(data / "models" / "mine.json.gz")
    chosen = scorer_from_config(parse_config(f"data_dir: {data}\nsentiment: {{model: models/mine.json.gz}}"))
    assert chosen.version == fixture_model.version  # relative paths are in the data dir
    with pytest.raises(ModelError, match="not found"):
        scorer_from_config(parse_config(f"data_dir: {data}\nsentiment: {{model: {tmp_path / 'nope.json.gz'}}}"))
