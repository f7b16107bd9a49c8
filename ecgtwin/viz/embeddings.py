"""2-D t-SNE picture of base vectors, coloured by patient (van der Maaten & Hinton 2008)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_embeddings(
    embeddings: Any, patient_ids: Any, path: str | Path, max_patients: int = 20, seed: int = 0,
    title: str = "IBE base vectors (t-SNE, cosine)",
) -> Path:
    """Save a t-SNE scatter of ``embeddings`` (N, D) for up to ``max_patients`` patients as PNG; return the path.

    The patients with the most records (at least two) are shown, one colour each;
    records of other patients are left out. Uses the Agg canvas (no display needed).
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.manifold import TSNE

    x = embeddings.detach().cpu().numpy() if hasattr(embeddings, "detach") else np.asarray(embeddings)
    p = patient_ids.detach().cpu().numpy() if hasattr(patient_ids, "detach") else np.asarray(patient_ids)
    if x.ndim != 2 or p.ndim != 1 or len(x) != len(p):
        raise ValueError(f"plot_embeddings needs embeddings (N, D) and patient_ids (N,), got {x.shape} and {p.shape}")
    values, counts = np.unique(p, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    chosen = values[order][counts[order] >= 2][:max_patients]
    keep = np.isin(p, chosen)
    if keep.sum() < 3:
        raise ValueError("plot_embeddings needs at least 3 records from patients with >= 2 records each")
    x, p = x[keep], p[keep]
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    # exact gradients for the few hundred points shown: fast and free of OpenMP stalls of Barnes-Hut on busy CPUs
    method = "exact" if len(x) <= 1000 else "barnes_hut"
    tsne = TSNE(n_components=2, metric="cosine", perplexity=perplexity, init="pca", method=method, random_state=seed)
    xy = tsne.fit_transform(x)  # (n, 2)

    fig = Figure(figsize=(6, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps["tab20"]
    for i, patient in enumerate(chosen):
        sel = p == patient
        ax.scatter(xy[sel, 0], xy[sel, 1], s=28, color=cmap(i % 20), label=str(patient), alpha=0.85)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(chosen) <= 20:
        ax.legend(title="patient", fontsize=6, title_fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
