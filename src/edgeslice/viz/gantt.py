"""Timeline pictures: one row per device and per link, bars coloured by segment.

``draw(timelines, path)`` writes a PNG (matplotlib) or, for ``.html``, a
self-contained page with an SVG whose bars show their task, times, bytes and
FLOPs on hover.  Several timelines (e.g. measured above predicted) are drawn
as stacked panels on one time axis.
"""

from __future__ import annotations

import html
from pathlib import Path

from edgeslice.sim.simulate import Timeline

_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def _color(segment: int) -> str:
    return "#999999" if segment < 0 else _PALETTE[segment % len(_PALETTE)]


def _rows(tl: Timeline) -> list[str]:
    used = {e.resource for e in tl.events}
    return [d for d in tl.devices] + [l for l in tl.links if l in used]


CHART_SUFFIXES = (".png", ".svg", ".pdf", ".html", ".htm")


def check_chart(path: str | Path) -> Path:
    """Refuse now (one line) a chart path :func:`draw` could not write, so a long run is never lost to it."""
    from edgeslice.errors import EdgesliceError
    from edgeslice.viz.trace import check_writable

    path = Path(path)
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise EdgesliceError(f"--gantt {str(path)!r}: a chart is .png, .svg or .pdf (a picture) or .html (a page with "
                             f"details on hover); name the file with one of those")
    return check_writable(path, "chart")


def draw(timelines: list[tuple[str, Timeline]], path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(_html(timelines))
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    heights = [max(2, len(_rows(tl))) for _, tl in timelines]
    fig, axes = plt.subplots(len(timelines), 1, figsize=(12, 0.45 * sum(heights) + 1.2 * len(timelines)),
                             sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights})
    segs = set()
    t_end = max(max(tl.finishes) for _, tl in timelines)
    for ax, (title, tl) in zip(axes[:, 0], timelines):
        rows = _rows(tl)
        y = {r: i for i, r in enumerate(rows)}
        for e in tl.events:
            segs.add(e.segment)
            ax.barh(y[e.resource], e.busy_end - e.start, left=e.start, height=0.7, color=_color(e.segment),
                    edgecolor="black", linewidth=0.3, hatch="//" if e.kind == "transfer" else None)
            if e.kind == "transfer" and e.end > e.busy_end:  # latency in flight
                ax.plot([e.busy_end, e.end], [y[e.resource]] * 2, color=_color(e.segment), linewidth=1)
        for a, f in zip(tl.arrivals, tl.finishes):
            ax.axvline(f, color="black", linestyle=":", linewidth=0.8)
        ax.set_yticks(range(len(rows)), rows)
        ax.invert_yaxis()
        ax.set_title(f"{title}: {_which(tl)} {tl.latency_s * 1e3:.1f} ms", loc="left", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, t_end * 1.02)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [Patch(color=_color(s), label="input" if s < 0 else f"segment {s}") for s in sorted(segs)]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="transfer"))
    fig.legend(handles=handles, loc="lower center", fontsize=8, ncol=min(8, len(handles)), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _html(timelines: list[tuple[str, Timeline]]) -> str:
    width, left, row_h = 1100, 120, 22
    t_end = max(max(tl.finishes) for _, tl in timelines) * 1.02 or 1.0
    sx = (width - left - 20) / t_end
    parts = ["<!doctype html><meta charset='utf-8'><title>edgeslice timeline</title>",
             "<style>body{font:13px sans-serif} rect:hover{stroke:#000;stroke-width:2}</style>"]
    for title, tl in timelines:
        rows = _rows(tl)
        h = row_h * len(rows) + 40
        parts.append(f"<h3>{html.escape(title)} — {_which(tl)} {tl.latency_s * 1e3:.1f} ms</h3>")
        parts.append(f"<svg width='{width}' height='{h}' xmlns='http://www.w3.org/2000/svg'>")
        for i, r in enumerate(rows):
            parts.append(f"<text x='4' y='{i * row_h + 15}'>{html.escape(r)}</text>")
            parts.append(f"<line x1='{left}' x2='{width - 10}' y1='{(i + 1) * row_h}' y2='{(i + 1) * row_h}' stroke='#eee'/>")
        y = {r: i for i, r in enumerate(rows)}
        for e in tl.events:
            x = left + e.start * sx
            w = max(1.0, (e.busy_end - e.start) * sx)
            tip = (f"{e.task} ({e.kind}, request {e.request}, segment {e.segment}) on {e.resource}: "
                   f"{e.start * 1e3:.2f}–{e.end * 1e3:.2f} ms" + (f", {e.nbytes:,} B" if e.nbytes else "") +
                   (f", {e.flops / 1e6:.1f} MFLOP" if e.flops else ""))
            op = "0.6" if e.kind == "transfer" else "1"
            parts.append(f"<rect x='{x:.1f}' y='{y[e.resource] * row_h + 3}' width='{w:.1f}' height='{row_h - 6}' "
                         f"fill='{_color(e.segment)}' fill-opacity='{op}'><title>{html.escape(tip)}</title></rect>")
        for k in range(6):
            t = t_end * k / 5
            parts.append(f"<text x='{left + t * sx:.0f}' y='{h - 8}' font-size='11'>{t * 1e3:.0f} ms</text>")
        parts.append("</svg>")
    return "\n".join(parts)


def _which(tl) -> str:
    """What a panel's figure is: the latency of its one request, or the median over its requests."""
    return "latency" if len(tl.arrivals) <= 1 else f"median latency of {len(tl.arrivals)} requests"
