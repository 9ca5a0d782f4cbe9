"""Inline SVG charts built on the server: pure functions from numbers and labels to SVG text.

Every label is escaped; colours come from CSS classes (``series-N``, ``bar``, ...) in
``dashboard.css``, so the charts follow the page's colour scheme and need no inline style (the
Content-Security-Policy forbids it). Each chart has ``role="img"`` and a ``<title>`` and
``<desc>`` it is labelled by; the pages add a table of the same numbers for screen readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

__all__ = ["rubric_chart", "share_bar", "stacked_columns", "vertical_bars"]

SERIES = 8
"""Distinct series colours in the stylesheet (``series-0`` ... ``series-7``)."""
LEGEND_CHARS = 40
"""Longest legend name drawn in full (longer ones end in an ellipsis, the full name in a
tooltip)."""


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _open(chart_id: str, width: int, height: int, title: str, desc: str, cls: str) -> str:
    i = _e(chart_id)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {_e(cls)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'preserveAspectRatio="xMinYMin meet" aria-labelledby="{i}-title {i}-desc">'
        f'<title id="{i}-title">{_e(title)}</title><desc id="{i}-desc">{_e(desc)}</desc>'
    )


def rubric_chart(chart_id: str, title: str, rubric: Mapping[str, int]) -> Markup:
    """Horizontal bars, one per rubric criterion, on a 1-5 scale."""
    label_w, bar_w, row_h = 170, 200, 22
    height = max(1, len(rubric)) * row_h + 24
    width = label_w + bar_w + 40
    desc = "; ".join(f"{name}: {score} of 5" for name, score in rubric.items()) or "no rubric"
    out = [_open(chart_id, width, height, title, desc, "rubric")]
    for tick in range(1, 6):
        x = label_w + bar_w * tick / 5
        out.append(
            f'<line class="grid" x1="{_num(x)}" x2="{_num(x)}" y1="0" y2="{height - 18}"/>'
            f'<text class="tick" x="{_num(x)}" y="{height - 4}" text-anchor="middle">{tick}</text>'
        )
    for row, (name, score) in enumerate(rubric.items()):
        y = row * row_h + 4
        value = max(0, min(5, int(score)))
        out.append(
            f'<text class="label" x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
            f"{_e(name.replace('_', ' '))}</text>"
            f'<rect class="bar score-{value}" x="{label_w}" y="{y}" '
            f'width="{_num(bar_w * value / 5)}" height="{row_h - 6}"/>'
            f'<text class="value" x="{_num(label_w + bar_w * value / 5 + 4)}" y="{y + 14}">'
            f"{value}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def vertical_bars(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, int]],
    classes: Sequence[str] = (),
) -> Markup:
    """One column per (label, count), with the count above it; the i-th column gets the CSS
    class ``classes[i]`` (e.g. ``score-3``, an ordinal colour), else a series colour."""
    col_w, gap, plot_h = 48, 14, 150
    width = max(1, len(bars)) * (col_w + gap) + gap
    height = plot_h + 46
    top = max((n for _, n in bars), default=0) or 1
    desc = "; ".join(f"{label}: {n}" for label, n in bars) or "no data"
    out = [_open(chart_id, width, height, title, desc, "columns")]
    out.append(f'<line class="axis" x1="0" x2="{width}" y1="{plot_h + 18}" y2="{plot_h + 18}"/>')
    for i, (label, n) in enumerate(bars):
        x = gap + i * (col_w + gap)
        h = plot_h * n / top
        y = plot_h + 18 - h
        out.append(
            f'<rect class="bar {_class(classes, i)}" x="{x}" y="{_num(y)}" width="{col_w}" '
            f'height="{_num(h)}"/>'
            f'<text class="value" x="{x + col_w / 2}" y="{_num(y - 4)}" text-anchor="middle">'
            f"{n}</text>"
            f'<text class="label" x="{x + col_w / 2}" y="{plot_h + 36}" text-anchor="middle">'
            f"{_e(label)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def _class(classes: Sequence[str], i: int) -> str:
    return _e(classes[i]) if i < len(classes) else f"series-{i % SERIES}"


def share_bar(
    chart_id: str,
    title: str,
    parts: Sequence[tuple[str, int]],
    classes: Sequence[str] = (),
) -> Markup:
    """One horizontal bar split into the parts' shares, with a legend giving count and percent;
    part i gets the CSS class ``classes[i]`` (e.g. ``v-validated``), else a series colour."""
    width, bar_h = 480, 28
    total = sum(n for _, n in parts)
    height = bar_h + 12 + 20 * len(parts)
    desc = (
        "; ".join(f"{label}: {n} ({_pct(n, total)})" for label, n in parts)
        if total
        else "no traces"
    )
    out = [_open(chart_id, width, height, title, desc, "share")]
    x = 0.0
    for i, (_, n) in enumerate(parts):
        w = width * n / total if total else 0
        if w:
            out.append(
                f'<rect class="bar {_class(classes, i)}" x="{_num(x)}" y="0" width="{_num(w)}" '
                f'height="{bar_h}"/>'
            )
        x += w
    if not total:
        out.append(f'<rect class="empty" x="0" y="0" width="{width}" height="{bar_h}"/>')
    for i, (label, n) in enumerate(parts):
        y = bar_h + 12 + 20 * i
        out.append(
            f'<rect class="swatch {_class(classes, i)}" x="0.5" y="{y}" width="12" height="12"/>'
            f'<text class="label" x="18" y="{y + 11}">{_e(label)}: {n} ({_pct(n, total)})</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}%" if total else "0%"


def stacked_columns(
    chart_id: str,
    title: str,
    columns: Sequence[str],
    series: Mapping[str, Sequence[int]],
) -> Markup:
    """Columns (e.g. weeks) stacked by series (e.g. developers), with a legend of the series."""
    col_w, gap, plot_h = 28, 8, 160
    names = {name: _short(name, LEGEND_CHARS) for name in series}
    # Wide enough for the longest (shortened) name at ~7.5 px a character: never cut off.
    legend_w = 40 + round(7.5 * max((len(n) for n in names.values()), default=0))
    n_cols = max(1, len(columns))
    plot_w = n_cols * (col_w + gap) + gap
    width = plot_w + legend_w
    height = max(plot_h + 48, 20 * len(series) + 10)
    totals = [sum(values[i] for values in series.values()) for i in range(len(columns))]
    top = max(totals, default=0) or 1
    desc = (
        "; ".join(
            f"{col}: "
            + ", ".join(f"{name} {values[i]}" for name, values in series.items() if values[i])
            for i, col in enumerate(columns)
            if totals[i]
        )
        or "no traces"
    )
    out = [_open(chart_id, width, height, title, desc, "stacked")]
    base = plot_h + 10
    out.append(f'<line class="axis" x1="0" x2="{plot_w}" y1="{base}" y2="{base}"/>')
    out.append(f'<text class="tick" x="2" y="10">{top}</text>')
    for i, col in enumerate(columns):
        x = gap + i * (col_w + gap)
        y = float(base)
        for s, (name, values) in enumerate(series.items()):
            n = values[i]
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            out.append(
                f'<rect class="bar series-{s % SERIES}" x="{x}" y="{_num(y)}" width="{col_w}" '
                f'height="{_num(h)}"><title>{_e(name)}, {_e(col)}: {n}</title></rect>'
            )
        if i == 0 or i == len(columns) - 1 or i % 4 == 0:
            out.append(
                f'<text class="tick" x="{x + col_w / 2}" y="{base + 14}" text-anchor="middle">'
                f"{_e(col[5:] if len(col) > 5 else col)}</text>"
            )
    for s, name in enumerate(series):
        y = 4 + 20 * s
        out.append(
            f'<rect class="swatch series-{s % SERIES}" x="{plot_w + 10}" y="{y}" width="12" '
            f'height="12"/><text class="label" x="{plot_w + 28}" y="{y + 11}">'
            f"{_e(names[name])}<title>{_e(name)}</title></text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
