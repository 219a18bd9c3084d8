"""Charts as inline SVG, drawn on the server: no script, font or image to load.

Every chart carries `data-total` and every bar `data-key`/`data-value`, so tests and assistive
technology read the figures from the markup rather than the drawing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Narrow enough that 13-unit text stays legible when a phone scales the chart to ~340 px.
WIDTH = 420
ROW = 30
LABEL = 140
VALUE = 96  # room right of the bars for the figure
FIT = 20  # longest label drawn in full (the whole one is in the bar's <title>)
COLORS = ("#a4161a", "#1f5f8b", "#2b7a0b", "#b8860b", "#6a3d9a", "#5b6770")


@dataclass(frozen=True)
class Bar:
    """One bar: key (machine), label (shown), value, and the list behind it (or none)."""

    key: str
    label: str
    value: int
    href: str | None = None


def _number(value: int, lang: str) -> str:
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "vi" else text


def bars(*, name: str, title: str, items: Sequence[Bar], lang: str, funnel: bool = False,
         total: bool = True) -> Markup:
    """A horizontal bar chart (or, `funnel`, centred bars narrowing stage by stage); its
    `data-total` is the sum of the bars, a funnel's first stage, or (`total=False`, bars that
    do not add up) the largest bar."""
    top = max((i.value for i in items), default=0)
    whole = (items[0].value if funnel and items else sum(i.value for i in items) if total
             else top)
    top = top or 1
    height = ROW * max(len(items), 1) + 8
    span = WIDTH - LABEL - VALUE - 6
    out = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
           f'preserveAspectRatio="xMinYMin meet" data-chart="{escape(name)}" '
           f'data-total="{whole}" aria-label="{escape(title)}: {_number(whole, lang)}">',
           f"<title>{escape(title)}</title>"]
    if not items:
        out.append('<text x="0" y="22" font-size="14" fill="#5b6770">—</text>')
    for n, item in enumerate(items):
        y = 4 + n * ROW
        w = max(round(span * item.value / top), 2 if item.value else 0)
        x = LABEL + (span - w) / 2 if funnel else LABEL
        color = COLORS[n % len(COLORS)]
        value = _number(item.value, lang)
        label = item.label if len(item.label) <= FIT else item.label[:FIT - 1] + "…"
        bar = (f'<g class="bar" data-key="{escape(item.key)}" data-value="{item.value}">'
               f"<title>{escape(item.label)}: {value}</title>"
               f'<text x="{LABEL - 6}" y="{y + 19}" font-size="13" text-anchor="end" '
               f'fill="#1d2327">{escape(label)}</text>'
               f'<rect x="{x:g}" y="{y + 5}" width="{w}" height="{ROW - 10}" rx="3" '
               f'fill="{color}"/>'
               f'<text x="{(x + w + 5) if not funnel else LABEL + span + 5:g}" y="{y + 19}" '
               f'font-size="13" font-weight="600" fill="#1d2327">{value}</text></g>')
        if item.href:
            bar = (f'<a href="{escape(item.href)}" aria-label="{escape(item.label)}: {value}">'
                   f"{bar}</a>")
        out.append(bar)
    out.append("</svg>")
    return Markup("".join(out))
