#!/usr/bin/env python
"""Generate calibkit's sample data: logits + labels from small MLPs on noisy digits.

Run from anywhere (offline, CPU only, deterministic):

    python sample_data/make_sample_data.py

What it does
------------
1. Loads scikit-learn's bundled ``load_digits`` (1797 x 64, 10 classes), scales the
   pixels to [0, 1] (divide by 16) and adds fixed-seed Gaussian pixel noise
   (sigma = NOISE_SIGMA, no clipping) so that the models make errors.
2. Splits the rows, stratified and with a fixed seed, into train / validation / test
   (50% / 25% / 25%: 898 / 449 / 450 rows).
3. Trains the same MLP (64-128-128-10, ReLU) with the same initialisation (seed),
   optimiser (full-batch Adam, no weight decay) and schedule for four targets:
   ``hard`` (plain cross-entropy) and label smoothing alpha = 0.05 / 0.10 / 0.20
   (``ls05`` / ``ls10`` / ``ls20``; targets (1 - alpha) * onehot + alpha / K).
   Training runs long enough that the hard-label model over-fits
   (train accuracy 100%, test NLL well above its minimum during training).
4. Saves validation and test logits (float32, (N, 10)) and labels (int64, (N,)) as
   ``digits_{model}_{split}.npz`` (keys ``logits``, ``labels``; byte-deterministic:
   zip member timestamps are normalised) and ``digits_{model}_{split}.parquet``
   (columns ``logit_0`` ... ``logit_9`` float32 and ``label`` int64), plus
   ``MANIFEST.json`` with SHA-256 hashes and the generating settings.
5. Prints accuracy, NLL, top-label ECE (15 equal-width bins) and mean max-confidence
   for every model and split. These numbers are for orientation only; calibkit
   computes the real ones.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

# --------------------------------------------------------------------------- settings
SEED = 0                 # noise, split and weight-initialisation seed
NOISE_SIGMA = 0.2        # std of Gaussian pixel noise, pixels scaled to [0, 1]
HIDDEN = (128, 128)      # MLP hidden widths
EPOCHS = 1000            # full-batch Adam steps
LR = 1e-3                # Adam learning rate (betas default, weight_decay=0)
N_BINS = 15              # ECE bins (orientation only)
MODELS = {"hard": 0.0, "ls05": 0.05, "ls10": 0.10, "ls20": 0.20}  # name -> alpha
SPLITS = ("val", "test")
FEATURE_SPLITS = ("train", "test")  # penultimate activations + final layer are saved for these
N_AUG = 8                # views per test example in the augmentation files
N_ANNOTATORS = 10        # synthetic annotators per test example in the vote files
ANNOTATOR_K = 5          # their k-nearest-neighbour classifier's k
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed zip member timestamp for npz files

OUT_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- data
def make_data():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64) / 16.0
    clean = X.copy()
    rng = np.random.default_rng(SEED)
    X = (X + rng.normal(0.0, NOISE_SIGMA, size=X.shape)).astype(np.float32)
    y = y.astype(np.int64)
    idx = np.arange(len(y))
    train_idx, rest_idx = train_test_split(
        idx, test_size=0.5, stratify=y, random_state=SEED)
    val_idx, test_idx = train_test_split(
        rest_idx, test_size=0.5, stratify=y[rest_idx], random_state=SEED)
    return X, y, clean, {"train": train_idx, "val": val_idx, "test": test_idx}


def augmented_views(clean: np.ndarray) -> np.ndarray:
    """(N_AUG, N, 64) views of clean images, each with its own draw of the pixel noise
    (sigma = NOISE_SIGMA, default_rng([SEED, 1])): the input variation the models were trained
    under (pixel shifts, which they never saw, drop their accuracy to about 35%)."""
    rng = np.random.default_rng([SEED, 1])
    views = [clean + rng.normal(0.0, NOISE_SIGMA, size=clean.shape) for _ in range(N_AUG)]
    return np.stack(views).astype(np.float32)


def annotator_votes(Xtr: np.ndarray, ytr: np.ndarray, clean: np.ndarray,
                    n_classes: int) -> np.ndarray:
    """(N, K) int64 vote counts of N_ANNOTATORS synthetic annotators: each is a
    ANNOTATOR_K-nearest-neighbour classifier fitted on the noisy training rows, looking at its
    own noise draw (sigma = NOISE_SIGMA, default_rng([SEED, 2])) of the clean test image. Not
    human labels: clearly synthetic stand-ins for annotator vote shares."""
    from sklearn.neighbors import KNeighborsClassifier
    knn = KNeighborsClassifier(n_neighbors=ANNOTATOR_K).fit(Xtr, ytr)
    rng = np.random.default_rng([SEED, 2])
    votes = np.zeros((clean.shape[0], n_classes), dtype=np.int64)
    for _ in range(N_ANNOTATORS):
        seen = clean + rng.normal(0.0, NOISE_SIGMA, size=clean.shape)
        pred = knn.predict(seen.astype(np.float32))
        votes[np.arange(clean.shape[0]), pred] += 1
    return votes


def make_model(n_in: int, n_classes: int) -> nn.Module:
    layers, prev = [], n_in
    for h in HIDDEN:
        layers += [nn.Linear(prev, h), nn.ReLU()]
        prev = h
    layers.append(nn.Linear(prev, n_classes))
    return nn.Sequential(*layers)


def train(alpha: float, Xtr: torch.Tensor, ytr: torch.Tensor, Xmon: torch.Tensor,
          ymon: torch.Tensor, n_classes: int):
    """Full-batch Adam. Returns the model and (min monitored NLL, its epoch)."""
    torch.manual_seed(SEED)  # identical initialisation for every model
    model = make_model(Xtr.shape[1], n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=0.0)
    best = (float("inf"), 0)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(Xtr), ytr, label_smoothing=alpha)
        loss.backward()
        opt.step()
        if epoch % 10 == 0:  # monitoring only; does not influence training
            model.eval()
            with torch.no_grad():
                nll = F.cross_entropy(model(Xmon), ymon).item()
            if nll < best[0]:
                best = (nll, epoch)
    model.eval()
    return model, best


# --------------------------------------------------------------------------- metrics
def metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Orientation metrics from float32 logits, computed in float64."""
    lg = torch.from_numpy(logits.astype(np.float64))
    logp = torch.log_softmax(lg, dim=1)
    nll = float(-logp[torch.arange(len(labels)), torch.from_numpy(labels)].mean())
    p = logp.exp().numpy()
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    # bins ((b-1)/B, b/B], b = 1..B  -> 0-based index = first upper edge >= conf
    upper = np.linspace(0.0, 1.0, N_BINS + 1)[1:]
    b = np.clip(np.searchsorted(upper, conf, side="left"), 0, N_BINS - 1)
    ece = 0.0
    for k in range(N_BINS):
        m = b == k
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return {
        "acc": float(correct.mean()),
        "nll": nll,
        "ece15": float(ece),
        "mean_conf": float(conf.mean()),
        "mean_logit_norm": float(np.linalg.norm(logits.astype(np.float64), axis=1).mean()),
    }


# --------------------------------------------------------------------------- writers
def save_npz(path: Path, logits: np.ndarray, labels: np.ndarray) -> None:
    save_arrays(path, logits=logits, labels=labels)


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed, then rewrite the zip with fixed member timestamps."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zi.create_system = 3
            zout.writestr(zi, zin.read(info.filename))


def save_parquet(path: Path, logits: np.ndarray, labels: np.ndarray) -> None:
    cols = {f"logit_{j}": pa.array(logits[:, j], type=pa.float32())
            for j in range(logits.shape[1])}
    cols["label"] = pa.array(labels, type=pa.int64())
    pq.write_table(pa.table(cols), path, compression="zstd")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    # --diagnostics-only: train as always, but keep the logits files that exist and write only
    # the diagnostics files (penultimate, augmentations, votes) and MANIFEST.json's
    # "diagnostics" section. Training is bit-reproducible only on the same CPU type and library
    # versions; this keeps the headline files (and every number computed from them) as they are.
    diagnostics_only = "--diagnostics-only" in argv
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)

    X, y, clean, split = make_data()
    n_classes = int(y.max()) + 1
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    print(f"digits: {X.shape[0]} x {X.shape[1]}, K={n_classes}, noise sigma={NOISE_SIGMA}; "
          + ", ".join(f"{k}={len(v)}" for k, v in split.items()))

    results, files, diag_files = {}, [], []
    views = augmented_views(clean[split["test"]])
    votes = annotator_votes(X[split["train"]], y[split["train"]], clean[split["test"]], n_classes)
    for name, alpha in MODELS.items():
        ts = time.perf_counter()
        model, (best_nll, best_ep) = train(
            alpha, Xt[split["train"]], yt[split["train"]],
            Xt[split["test"]], yt[split["test"]], n_classes)
        with torch.no_grad():
            train_acc = float((model(Xt[split["train"]]).argmax(1) == yt[split["train"]])
                              .double().mean())
        results[name] = {"alpha": alpha, "train_acc": train_acc,
                         "min_test_nll_during_training": best_nll,
                         "min_test_nll_epoch": best_ep}
        print(f"[{name}] alpha={alpha:.2f} trained in {time.perf_counter() - ts:.1f}s; "
              f"train acc={train_acc:.4f}; min test NLL during training "
              f"{best_nll:.4f} @ epoch {best_ep} (monitor only)")
        headline = {}
        for s in SPLITS:
            if diagnostics_only:
                with np.load(OUT_DIR / f"digits_{name}_{s}.npz") as kept:
                    logits, labels = kept["logits"], kept["labels"]
                assert np.array_equal(labels, y[split[s]])
            else:
                with torch.no_grad():
                    logits = model(Xt[split[s]]).numpy().astype(np.float32)
                labels = y[split[s]].astype(np.int64)
            headline[s] = logits
            assert logits.shape == (len(split[s]), n_classes) and labels.ndim == 1
            results[name][s] = metrics(logits, labels)
            if diagnostics_only:
                continue
            for ext, writer in (("npz", save_npz), ("parquet", save_parquet)):
                path = OUT_DIR / f"digits_{name}_{s}.{ext}"
                writer(path, logits, labels)
                files.append({
                    "file": path.name, "format": ext, "model": name, "alpha": alpha,
                    "split": s, "N": int(logits.shape[0]), "K": int(n_classes),
                    "sha256": sha256(path),
                    "logits_sha256": hashlib.sha256(logits.tobytes()).hexdigest(),
                    "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                })
        extra = {}
        with torch.no_grad():
            for s in FEATURE_SPLITS:
                feats = model[:-1](Xt[split[s]])
                extra[f"penultimate_{s}"] = {
                    "features": feats.numpy().astype(np.float32),
                    "weight": model[-1].weight.numpy().astype(np.float32),
                    "bias": model[-1].bias.numpy().astype(np.float32),
                    "logits": model(Xt[split[s]]).numpy().astype(np.float32),
                    "labels": y[split[s]].astype(np.int64),
                }
            aug = np.stack([model(torch.from_numpy(v)).numpy() for v in views], axis=1)
            extra["test_augment"] = {"logits": aug.astype(np.float32),
                                     "labels": y[split["test"]].astype(np.int64)}
            # the headline test logits (the kept file's with --diagnostics-only)
            extra["test_votes"] = {"logits": headline["test"], "labels": votes}
        for suffix, arrays in extra.items():
            path = OUT_DIR / f"digits_{name}_{suffix}.npz"
            save_arrays(path, **arrays)
            diag_files.append({
                "file": path.name, "format": "npz", "model": name, "alpha": alpha,
                "content": suffix, "keys": {k: [str(v.dtype), list(v.shape)]
                                            for k, v in arrays.items()},
                "sha256": sha256(path),
            })

    # ------------------------------------------------------------------ report
    hdr = f"{'model':<6} {'alpha':>5} {'split':<5} {'N':>4} {'acc':>7} {'NLL':>7} " \
          f"{'ECE15':>7} {'conf':>7} {'conf-acc':>8} {'|logit|':>8}"
    print("\norientation metrics (calibkit computes the real ones)")
    print(hdr)
    print("-" * len(hdr))
    for s in SPLITS:
        for name, alpha in MODELS.items():
            m = results[name][s]
            print(f"{name:<6} {alpha:>5.2f} {s:<5} {len(split[s]):>4} {m['acc']:>7.4f} "
                  f"{m['nll']:>7.4f} {m['ece15']:>7.4f} {m['mean_conf']:>7.4f} "
                  f"{m['mean_conf'] - m['acc']:>+8.4f} {m['mean_logit_norm']:>8.3f}")

    manifest = {
        "description": "calibkit sample data: validation/test logits of small MLPs "
                       "trained on noisy sklearn digits (hard labels vs label smoothing)",
        "command": "python sample_data/make_sample_data.py",
        "settings": {
            "dataset": "sklearn.datasets.load_digits (1797 x 64, K=10), pixels / 16",
            "seed": SEED,
            "noise": f"additive Gaussian pixel noise N(0, sigma^2), numpy default_rng({SEED}), "
                     "applied once to all rows before splitting, no clipping",
            "noise_sigma": NOISE_SIGMA,
            "split": "stratified train_test_split(random_state=seed): 50% train, then the "
                     "rest 50/50 into val/test",
            "split_sizes": {k: int(len(v)) for k, v in split.items()},
            "architecture": "MLP " + "-".join(str(d) for d in (X.shape[1], *HIDDEN, n_classes))
                            + ", ReLU, PyTorch default init, torch.manual_seed(seed) per model",
            "optimizer": "Adam (full batch), betas=(0.9, 0.999), weight_decay=0",
            "lr": LR,
            "epochs": EPOCHS,
            "loss": "F.cross_entropy(logits, y, label_smoothing=alpha)",
            "alpha": dict(MODELS),
            "ece_bins_for_orientation": N_BINS,
        },
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "pyarrow": pa.__version__,
        },
        "files": files,
        "orientation_metrics": results,
    }
    diagnostics = {
        "command": "python sample_data/make_sample_data.py"
                   + (" --diagnostics-only" if diagnostics_only else ""),
        "note": "penultimate activations, final-layer weights, logits under augmentations and "
                "synthetic annotator votes of the same four models; the votes files carry the "
                "headline test logits. With --diagnostics-only the models were re-trained on "
                "another machine than the headline files: their weights differ in the last "
                "bits, amplified by 1000 Adam steps, so the penultimate and augmentation files' "
                "logits are close to, not equal to, the headline logits",
        "settings": {
            "penultimate": "model[:-1](X) (the last ReLU's output, D=128) and the last "
                           "Linear's weight (K, D) and bias (K,), for splits "
                           + ", ".join(FEATURE_SPLITS),
            "augmentations": f"{N_AUG} views per test example: the clean image plus a fresh "
                             f"draw of N(0, {NOISE_SIGMA}^2) pixel noise per view, from "
                             "default_rng([seed, 1]); logits shape (N, L, K)",
            "votes": f"synthetic annotators: {N_ANNOTATORS} per test example, each a "
                     f"{ANNOTATOR_K}-NN classifier on the noisy training rows looking at its "
                     "own noise draw of the clean image (default_rng([seed, 2])); labels are "
                     "(N, K) int64 vote counts",
        },
        "versions": manifest["versions"],
        "files": diag_files,
    }
    if diagnostics_only:
        manifest = json.loads((OUT_DIR / "MANIFEST.json").read_text())
    manifest["diagnostics"] = diagnostics
    (OUT_DIR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")

    print("\nmanifest (sample_data/MANIFEST.json)")
    for f in files:
        print(f"  {f['file']:<28} N={f['N']:<4} K={f['K']:<3} sha256={f['sha256'][:16]}…")
    for f in diag_files:
        print(f"  {f['file']:<36} {f['content']:<18} sha256={f['sha256'][:16]}…")
    print(f"\ndone in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
