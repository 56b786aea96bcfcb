"""The sentiment model: a linear model over sparse features, and its file format.

Both algorithms the project trains (:mod:`nlp.train`) end as the same thing —
one weight per feature plus a bias — so scoring is a few dictionary look-ups:

* ``nb`` — multinomial naive Bayes over binary features (SnowNLP's family):
  the weight is the log ratio of the feature's smoothed class likelihoods;
* ``nblr`` — logistic regression on NB-scaled features (NBSVM-style, Wang &
  Manning 2012), the folded weight is ``lr_weight × nb_ratio``; trained on the word view
  and the character view (``chars``) and averaged into one set of weights.

The score is ``sigmoid(bias + Σ weight × value)`` in [0, 1] (0 = very negative).
A negated word never seen negated in training counts as its plain form with the
sign flipped (``!好`` ≈ −0.8 × ``好``). A text with no known feature scores 0.5.

File: gzip-compressed JSON with ``format`` / ``format_version``; a file of
another format version is refused with a :class:`ModelError` that says what
to do, never half-read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.core.errors import ModelError

FORMAT = "yuqing-sentiment"
FORMAT_VERSION = 1
NEG_FLIP = 0.8


@dataclass
class SentimentModel:
    weights: dict[str, float]
    bias: float = 0.0
    algorithm: str = "nb"
    name: str = "model"
    meta: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    chars: bool = False  # the character view (nlp.tokens.char_features) is part of the model

    def __post_init__(self) -> None:
        if not self.version:
            self.version = f"{self.name}-{self.algorithm}-{self.digest()}"[:100]

    def digest(self) -> str:
        h = hashlib.sha256(f"{FORMAT_VERSION}:{self.algorithm}:{self.chars}:{self.bias:.6f}".encode())
        for key in sorted(self.weights):
            h.update(f"{key}\t{self.weights[key]:.6f}\n".encode())
        return h.hexdigest()[:10]

    # -- scoring --------------------------------------------------------------------
    def decision(self, feats: dict[str, float]) -> float | None:
        """``bias + Σ weight × value`` over known features; None when no feature is known."""
        w = self.weights
        total = 0.0
        known = False
        for name, value in feats.items():
            weight = w.get(name)
            if weight is None:
                if name[0] != "!" or len(name) == 1:
                    continue
                plain = w.get(name[1:])
                if plain is None:
                    continue
                weight = -NEG_FLIP * plain
            total += weight * value
            known = True
        return self.bias + total if known else None

    def probability(self, feats: dict[str, float]) -> float:
        s = self.decision(feats)
        if s is None:
            return 0.5
        if s >= 0:
            return 1.0 / (1.0 + math.exp(-min(s, 60.0)))
        e = math.exp(max(s, -60.0))
        return e / (1.0 + e)

    # -- files ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "version": self.version, "name": self.name,
            "algorithm": self.algorithm, "bias": round(self.bias, 6), "meta": self.meta, "chars": self.chars,
            "weights": {k: round(v, 5) for k, v in self.weights.items() if round(v, 5)},
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=6) as gz:
                gz.write(data)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is not a secret
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SentimentModel":
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {path} not found (train one with `monitor nlp train`)") from None
        except OSError as exc:
            raise ModelError(f"cannot read model file {path}: {exc}") from exc
        try:
            doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except (OSError, EOFError, ValueError) as exc:
            raise ModelError(f"{path} is not a sentiment model file ({exc.__class__.__name__})") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelError(f"{path} is not a sentiment model file (no {FORMAT!r} header)")
        version = doc.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(f"{path}: model format version {version!r}, but this program reads version "
                             f"{FORMAT_VERSION}; retrain it with `monitor nlp train` "
                             "(or delete a cached default model)")
        try:
            return cls(weights={str(k): float(v) for k, v in doc["weights"].items()}, bias=float(doc["bias"]),
                       algorithm=str(doc["algorithm"]), name=str(doc.get("name", "model")),
                       meta=dict(doc.get("meta") or {}), version=str(doc["version"]), chars=bool(doc.get("chars")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"{path}: damaged model file ({exc.__class__.__name__}: {exc})") from exc
