"""Write calibkit's SYNTHETIC LLM-evaluation samples (sample_data/llm/): nothing here is a real
model's output.

No public data set of LLM evaluation outputs ships inside a pip package that calibkit could
depend on, so these files are made up, deterministically (numpy ``default_rng`` with fixed
seeds; the same bytes on every run), in the layouts the real tools write:

* ``llm/lm_eval_synthetic/samples_mmlu_<subject>_2026-01-01T00-00-00.000000.jsonl``: the
  per-sample logs of lm-evaluation-harness (``lm_eval --log_samples``; the name is lm-eval's
  ``samples_<task>_<date>.jsonl``), one file per MMLU-like subject. Each record has lm-eval's
  fields (``doc_id``, ``doc``, ``target`` written as text, ``arguments`` as ``gen_args_i`` /
  ``arg_0`` / ``arg_1``, ``resps`` ``[[[ll, is_greedy]]]`` and ``filtered_resps``
  ``[[ll, is_greedy]]`` as text, ``filter``, ``metrics``, the hashes, ``acc``, ``acc_norm``).
  Unlike real MMLU, the questions have 2 to 5 choices (ragged K). The subjects differ in size
  (some below HELM's 300-example guideline for a 10-bin ECE, some above) and in calibration:
  each subject's log-likelihoods are a calibrated model's logits times a subject's factor
  (above 1: over-confident; below 1: under-confident), minus a length penalty per character
  of the choice (so ``--length-normalize char`` changes the numbers).
* ``llm/verbalized_confidence.jsonl``: "how sure are you?" answers: ``confidence`` as text
  ("80%", "0.9", "9/10", ".6", "70 %") piling on a few values, ``correct`` (JSON booleans),
  ``subject`` and ``source``. Over-confident. Read with ``--parse-confidence``.
* ``llm/topk_logprobs.jsonl``: OpenAI chat-completions responses with ``logprobs`` (the
  first answer token's ``top_logprobs``, 5 of an 8-token distribution: the rest is the tail),
  a ``target`` letter; about one record in ten has vLLM's ``-9999.0`` sentinel in a top-k
  entry (never in the answer's own log-probability).

``llm/MANIFEST.json`` lists every file with its SHA-256, its rows and its generating setting.
Run: ``python sample_data/make_llm_samples.py`` (offline, a second or two).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "llm"
LM_EVAL = HERE / "lm_eval_synthetic"
DATE = "2026-01-01T00-00-00.000000"

#: subject -> (questions, confidence factor: > 1 over-confident, < 1 under-confident)
SUBJECTS = {
    "abstract_algebra": (100, 2.0),
    "anatomy": (160, 0.6),
    "college_physics": (305, 1.5),
    "high_school_geography": (320, 1.0),
    "philosophy": (180, 0.75),
}
#: choice counts and how often each occurs
N_CHOICES = ((2, 0.15), (3, 0.2), (4, 0.5), (5, 0.15))
LENGTH_PENALTY = 0.04  # nats per character of a choice
WORDS = (
    "axiom group ring field bone nerve muscle force mass energy river delta plateau "
    "virtue reason ethics proof lemma orbit tissue valve wave charge border climate "
    "justice mind truth"
).split()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(rng: np.random.Generator, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(low, high + 1))))


def _write(path: Path, records: list[dict]) -> dict:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"file": str(path.relative_to(HERE.parent)), "rows": len(records), "sha256": _sha(data)}


def lm_eval_subject(subject: str, n: int, factor: float, seed: int) -> list[dict]:
    rng = np.random.default_rng([18, seed])
    ks, weights = zip(*N_CHOICES, strict=True)
    records = []
    for doc_id in range(n):
        k = int(rng.choice(ks, p=weights))
        t = rng.normal(0.0, 1.0, size=k)
        t[int(rng.integers(k))] += rng.gamma(2.0, 0.9)  # one choice the model leans to
        p = np.exp(t - t.max())
        p /= p.sum()
        gold = int(rng.choice(k, p=p))  # t is calibrated: the gold answer is drawn from it
        choices = [_text(rng, 1, 3) for _ in range(k)]
        question = _text(rng, 3, 6) + "?"
        z = factor * t
        z -= z.max() + math.log(np.exp(z - z.max()).sum())  # a log-probability per choice
        lls = [float(v - LENGTH_PENALTY * len(c) - 0.5) for v, c in zip(z, choices, strict=True)]
        lls = [round(v, 6) for v in lls]
        letters = "ABCDE"[:k]
        context = (
            f"{question}\n"
            + "".join(f"{letter}. {c}\n" for letter, c in zip(letters, choices, strict=True))
            + "Answer:"
        )
        norm = [v / len(c) for v, c in zip(lls, choices, strict=True)]
        greedy = int(np.argmax(lls))
        doc = {"question": question, "subject": subject, "choices": choices, "answer": gold}
        records.append(
            {
                "doc_id": doc_id,
                "doc": doc,
                "target": str(gold),  # lm-eval writes str(target)
                "arguments": {
                    f"gen_args_{i}": {"arg_0": context, "arg_1": f" {c}"}
                    for i, c in enumerate(choices)
                },
                "resps": [[[str(v), str(i == greedy)]] for i, v in enumerate(lls)],
                "filtered_resps": [[str(v), str(i == greedy)] for i, v in enumerate(lls)],
                "filter": "none",
                "metrics": ["acc", "acc_norm"],
                "doc_hash": _sha(json.dumps(doc, indent=2, ensure_ascii=False).encode()),
                "prompt_hash": _sha(context.encode()),
                "target_hash": _sha(str(gold).encode()),
                "acc": float(greedy == gold),
                "acc_norm": float(int(np.argmax(norm)) == gold),
            }
        )
    return records


VERBAL = (  # (value, how it is written)
    (0.6, ".6"),
    (0.7, "70 %"),
    (0.8, "80%"),
    (0.9, "0.9"),
    (0.9, "9/10"),
    (0.95, "95%"),
    (1.0, "100%"),
)


def verbalized(n: int = 400) -> list[dict]:
    rng = np.random.default_rng([18, 100])
    subjects = ("history", "biology", "geometry", "law")
    sources = ("trivia_qa", "sci_q")
    records = []
    for i in range(n):
        j = int(rng.choice(len(VERBAL), p=(0.08, 0.12, 0.25, 0.2, 0.1, 0.15, 0.1)))
        stated, written = VERBAL[j]
        true_p = 0.35 + 0.5 * stated  # over-confident: 0.8 said, 0.75 right
        records.append(
            {
                "id": f"q{i:04d}",
                "subject": subjects[i % len(subjects)],
                "source": sources[int(rng.integers(2))],
                "question": _text(rng, 4, 8) + "?",
                "answer": _text(rng, 1, 3),
                "confidence": written,
                "correct": bool(rng.random() < true_p),
            }
        )
    return records


def topk(n: int = 300) -> list[dict]:
    rng = np.random.default_rng([18, 200])
    vocab = ["A", "B", "C", "D", " A", " B", "The", "\n"]
    records = []
    for i in range(n):
        t = rng.normal(0.0, 1.0, size=4)
        t[int(rng.integers(4))] += rng.gamma(2.0, 1.2)
        p4 = np.exp(t - t.max())
        p4 /= p4.sum()
        target = "ABCD"[int(rng.choice(4, p=p4 ** (1 / 1.6) / (p4 ** (1 / 1.6)).sum()))]
        leak = rng.uniform(0.0, 0.15)  # mass on tokens other than the four letters
        p = np.concatenate([p4 * (1 - leak), rng.dirichlet(np.ones(4)) * leak])
        order = np.argsort(-p, kind="stable")
        top = order[:5]
        lps = [round(float(np.log(p[j])), 6) for j in top]
        if i % 10 == 3:
            lps[-1] = -9999.0  # vLLM's -inf sentinel: probability 0
        entries = [
            {"token": vocab[j], "logprob": lp, "bytes": list(vocab[j].encode())}
            for j, lp in zip(top, lps, strict=True)
        ]
        answer = entries[0]
        records.append(
            {
                "id": f"chatcmpl-synthetic-{i:05d}",
                "object": "chat.completion",
                "model": "synthetic-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer["token"]},
                        "logprobs": {"content": [{**answer, "top_logprobs": entries}]},
                        "finish_reason": "stop",
                    }
                ],
                "target": target,
                "subject": ("chemistry", "economics")[i % 2],
            }
        )
    return records


def main() -> None:
    files = []
    for seed, (subject, (n, factor)) in enumerate(SUBJECTS.items()):
        entry = _write(
            LM_EVAL / f"samples_mmlu_{subject}_{DATE}.jsonl",
            lm_eval_subject(subject, n, factor, seed),
        )
        files.append(
            {
                **entry,
                "layout": "lm-eval samples",
                "task": f"mmlu_{subject}",
                "confidence_factor": factor,
            }
        )
    files.append(
        {
            **_write(HERE / "verbalized_confidence.jsonl", verbalized()),
            "layout": "confidence rows (text)",
        }
    )
    files.append(
        {
            **_write(HERE / "topk_logprobs.jsonl", topk()),
            "layout": "top-k logprobs (OpenAI chat completions)",
        }
    )
    manifest = {
        "description": "SYNTHETIC LLM-evaluation outputs for calibkit (no real model's output)",
        "command": "python sample_data/make_llm_samples.py",
        "settings": {
            "subjects": {
                s: {"questions": n, "confidence_factor": f} for s, (n, f) in SUBJECTS.items()
            },
            "n_choices": dict(N_CHOICES),
            "length_penalty_per_char": LENGTH_PENALTY,
        },
        "files": files,
    }
    (HERE / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
