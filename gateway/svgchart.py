"""Server-rendered SVG charts for the console (issue 18 item 2): a stacked bar chart of a time series.

Why SVG from the server instead of a chart library: the console has no build step and serves everything
itself; one stacked bar chart is ~60 lines here, needs no script (the image works with JavaScript off and
under the strict CSP), and renders the same in every browser and in the tests. Values are numbers and
labels are escaped, so nothing from a request reaches the markup unescaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

# (key, label, colour): stacked bottom to top; colours also distinguishable in grey and for common colour
# blindness (blue / orange / grey), with a legend in words.
SERIES = (("delivered", "Delivered", "#1f6fb4"), ("failed", "Failed", "#d9730d"), ("pending", "Pending", "#9aa3ad"))


def _nice(top: int) -> int:
    """A round axis maximum ≥ ``top`` that four grid steps divide into whole round numbers (4, 8, 20, 40,
    80, 200…)."""
    step = 1
    while 4 * step < top:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2  # 1, 2, 5, 10, 20, 50…
    return 4 * step


def _label(t: float, bucket_seconds: float) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return d.strftime("%H:%M") if bucket_seconds < 6 * 3600 else d.strftime("%d %b %H:%M")


def stacked_bars(series: Sequence[dict[str, float]], bucket_seconds: float, title: str,
                 width: int = 720, height: int = 240) -> str:
    """An SVG document: one bar per bucket, its parts stacked as :data:`SERIES`, a y axis, time labels and
    a legend; ``title`` becomes the accessible name."""
    left, right, top, bottom = 44, 8, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((sum(b.get(k, 0) for k, _, _ in SERIES) for b in series), default=0)
    ymax = _nice(int(peak))
    n = max(len(series), 1)
    slot = plot_w / n
    bar = max(slot * 0.72, 1.0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
           f' role="img" aria-label="{escape(title)}" font-family="system-ui, sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>", f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    for i in range(5):  # grid and y labels
        v = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">{v:g}</text>')
    every = max(1, n // 6)
    for i, b in enumerate(series):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for key, label, colour in SERIES:
            v = b.get(key, 0)
            if v:
                h = plot_h * v / ymax
                y -= h
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                           f"<title>{escape(label)}: {v:g}</title></rect>")
        if i % every == 0:
            out.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" fill="#4b5563">'
                       f"{escape(_label(b['t'], bucket_seconds))}</text>")
    lx = left
    for _, label, colour in SERIES:  # legend, in words
        out.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="15" fill="#1d2430">{escape(label)}</text>')
        lx += 14 + 8 * len(label) + 14
    out.append("</svg>")
    return "".join(out)
