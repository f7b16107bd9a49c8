"""Writing matplotlib figures: one place for layout, resolution and folders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

FIGURE_DPI = 110
"""Resolution of the report and docs figures (PNG)."""


def save_figure(fig: Any, path: str | Path, dpi: int = FIGURE_DPI,
                rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay out ``fig`` (within ``rect`` of the figure, e.g. to leave room for a legend below), write it to
    ``path`` (parent folders made) and close it; return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout(rect=rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
