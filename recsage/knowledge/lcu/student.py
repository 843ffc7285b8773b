"""Student: a classifier over frozen MiniLM embeddings that imitates the teacher LLM's labels.

The LLM labels a few thousand comments (what fits two CPU cores); the student labels every
comment in milliseconds. Inputs are the comment's embedding, the post's, and their product (the
relevance field is about the pair). One logistic-regression head per categorical field and one
per topic (scikit-learn fits them; the weights are stored as safetensors, so loading a student
never unpickles anything). `agreement` reports, per field, how often the student matches the
teacher on held-out labels next to always guessing the teacher's most common value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.config import read_saved_meta
from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.knowledge.lcu.labels import CATEGORICAL, LabelLayout

FORMAT_VERSION = 1


def student_inputs(comment_vecs: np.ndarray, post_vecs: np.ndarray) -> np.ndarray:
    return np.concatenate([comment_vecs, post_vecs, comment_vecs * post_vecs], axis=1).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@dataclass
class CommentLabelStudent:
    """`fit(X, labels)` then `predict_proba(X)` → (n, layout.width) label probabilities."""

    layout: LabelLayout = field(default_factory=LabelLayout)
    c: float = 1.0
    seed: int = 0
    heads_: dict[str, tuple[np.ndarray, np.ndarray, list[str]]] | None = None  # field → (W, b, classes)

    def fit(self, x: np.ndarray, labels: pd.DataFrame) -> CommentLabelStudent:
        from sklearn.linear_model import LogisticRegression

        if len(x) != len(labels):
            raise InvalidInputError(f"{len(x)} inputs but {len(labels)} labels", field="labels")
        if len(labels) < 10:
            raise InvalidInputError(f"only {len(labels)} teacher labels: the student needs at least 10", field="labels")
        heads: dict[str, tuple[np.ndarray, np.ndarray, list[str]]] = {}
        targets: dict[str, np.ndarray] = {f: labels[f].astype(str).to_numpy() for f in CATEGORICAL}
        topic_lists = labels["topics"].tolist()
        for t in self.layout.topics:
            targets[f"topic={t}"] = np.array(["1" if t in list(ts) else "0" for ts in topic_lists])
        for name, y in targets.items():
            classes = sorted(set(y))
            if len(classes) == 1:  # the teacher never varied: a constant head
                heads[name] = (np.zeros((1, x.shape[1]), np.float32), np.array([0.0], np.float32), classes)
                continue
            clf = LogisticRegression(C=self.c, max_iter=300, random_state=self.seed).fit(x, y)
            heads[name] = (clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32), [str(c) for c in clf.classes_])
        self.heads_ = heads
        return self

    def _class_proba(self, x: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
        w, b, classes = self.heads_[name]
        if len(classes) == 1:
            return np.ones((len(x), 1), np.float32), classes
        z = x @ w.T + b
        if len(classes) == 2:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1 - p1, p1], 1), classes
        return _softmax(z), classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.heads_ is None:
            raise NotFittedError("CommentLabelStudent is not fitted: call fit or from_pretrained first")
        out = np.zeros((len(x), self.layout.width), np.float32)
        blocks = self.layout.blocks()
        for f, vals in CATEGORICAL.items():
            p, classes = self._class_proba(x, f)
            for j, c in enumerate(classes):
                out[:, blocks[f].start + vals.index(c)] = p[:, j]
        for j, t in enumerate(self.layout.topics):
            p, classes = self._class_proba(x, f"topic={t}")
            if "1" in classes:
                out[:, blocks["topics"].start + j] = p[:, classes.index("1")]
        return out

    def predict(self, x: np.ndarray) -> list[dict[str, Any]]:
        """Hard labels (argmax per field; the topics above .5, at least the most likely one)."""
        return self.labels_from_proba(self.predict_proba(x))

    def labels_from_proba(self, p: np.ndarray) -> list[dict[str, Any]]:
        """`predict`'s hard labels from probabilities already computed by `predict_proba`."""
        blocks = self.layout.blocks()
        rows = []
        for row in p:
            lab: dict[str, Any] = {f: vals[int(np.argmax(row[blocks[f]]))] for f, vals in CATEGORICAL.items()}
            tp = row[blocks["topics"]]
            picked = [self.layout.topics[j] for j in np.argsort(-tp)[:2] if tp[j] > 0.5] or [self.layout.topics[int(np.argmax(tp))]]
            lab["topics"] = picked
            rows.append(lab)
        return rows

    def agreement(self, x: np.ndarray, labels: pd.DataFrame) -> dict[str, dict[str, float]]:
        """Per field: student accuracy vs the teacher, and the majority-value baseline; topics: micro-F1."""
        pred = self.predict(x)
        out: dict[str, dict[str, float]] = {}
        for f in CATEGORICAL:
            truth = labels[f].astype(str).to_numpy()
            guess = np.array([p[f] for p in pred])
            values, counts = np.unique(truth, return_counts=True)
            out[f] = {"accuracy": round(float((guess == truth).mean()), 4), "majority": round(float(counts.max() / len(truth)), 4)}
        tp = fp = fn = 0
        for p, t in zip(pred, labels["topics"].tolist()):
            ps, ts = set(p["topics"]), set(list(t))
            tp, fp, fn = tp + len(ps & ts), fp + len(ps - ts), fn + len(ts - ps)
        out["topics"] = {"micro_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4)}
        return out

    # ---- persistence: config.json + heads.safetensors ----
    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        if self.heads_ is None:
            raise NotFittedError("nothing to save: the student is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for name, (w, b, _) in self.heads_.items():
            tensors[f"{name}.weight"], tensors[f"{name}.bias"] = np.ascontiguousarray(w), np.ascontiguousarray(b)
        save_file(tensors, str(d / "heads.safetensors"))
        cfg = {"class": "CommentLabelStudent", "format_version": FORMAT_VERSION, "c": self.c, "seed": self.seed,
               "topics": list(self.layout.topics), "topics_version": self.layout.topics_version, "layout": self.layout.version,
               "classes": {n: c for n, (_, _, c) in self.heads_.items()}}
        (d / "config.json").write_text(json.dumps(cfg, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> CommentLabelStudent:
        from safetensors.numpy import load_file

        d = Path(directory)
        cfg = read_saved_meta(d, "CommentLabelStudent", FORMAT_VERSION, what="student")
        tensors = load_file(str(d / "heads.safetensors"))
        student = cls(LabelLayout(tuple(cfg["topics"]), cfg["topics_version"]), c=cfg["c"], seed=cfg["seed"])
        student.heads_ = {n: (tensors[f"{n}.weight"], tensors[f"{n}.bias"], list(c)) for n, c in cfg["classes"].items()}
        return student
