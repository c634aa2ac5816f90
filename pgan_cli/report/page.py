"""The building blocks of the report page: escaping and number formatting, tables, figures and
images as PNG data URIs, section frames with their "how to read this" prose, and the page's style
sheet. The CSS and the prose are files beside this module (``report.css``, ``sections.json``), so
they are edited as what they are; :mod:`pgan_cli.report.html` draws the sections with these."""

from __future__ import annotations

import base64
import html as _html
import io
import math
from typing import Any

import numpy as np


def css() -> str:
    """The page's style sheet (``report.css`` beside this module), inlined into every page."""
    from importlib.resources import files

    return files("pgan_cli.report").joinpath("report.css").read_text(encoding="utf-8")



def _prose() -> dict[str, dict[str, str | None]]:
    """Section titles and their "how to read this" texts (``sections.json`` beside this module)."""
    import json
    from importlib.resources import files

    return json.loads(files("pgan_cli.report").joinpath("sections.json").read_text(encoding="utf-8"))["sections"]


_PROSE = _prose()
HOWTO = {sid: p["howto"] for sid, p in _PROSE.items() if p.get("howto")}
TITLES = {sid: p["title"] for sid, p in _PROSE.items()}


# ---- small helpers ----------------------------------------------------------------------------
def printable(text: str) -> str:
    """``text`` as a UTF-8 page can hold it: the bytes of a file name that is not UTF-8 (which
    ``os.fsdecode`` keeps as lone surrogates) are shown as ``\\xff``; any other lone surrogate (a
    ``\\ud800`` escape in a result JSON) as ``\\ud800``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def esc(x: Any) -> str:
    return _html.escape(printable(str(x)), quote=True)


def fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        return f"{v:.4g}"
    if isinstance(v, list):
        if len(v) == 2 and all(isinstance(a, (int, float)) for a in v):
            return f"{v[0]:.3f}&ndash;{v[1]:.3f}"
        return esc(", ".join(fmt(a) for a in v[:20]) + (" ..." if len(v) > 20 else ""))
    return esc(v)


def figure_png(fig) -> str:
    """A matplotlib Figure as a PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    _printable_texts(fig)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _printable_texts(fig) -> None:
    """Make every text of ``fig`` :func:`printable`: matplotlib cannot measure or draw a lone
    surrogate (a file name that is not UTF-8, in a title or a legend)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_text(printable(text.get_text()))


def tight_layout(fig) -> None:
    """``fig.tight_layout()`` on :func:`printable` texts (the layout measures them)."""
    _printable_texts(fig)
    fig.tight_layout()


def new_figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def image_png(img: np.ndarray) -> str:
    """One image as a PNG data URI at its own resolution (the page scales it up, pixelated)."""
    from PIL import Image

    from pgan_cli.imaging import image_to_uint8

    buf = io.BytesIO()
    Image.fromarray(image_to_uint8(img)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def img_tag(uri: str, alt: str, cls: str = "fig") -> str:
    return f'<img class="{cls}" src="{uri}" alt="{esc(alt)}">'


def table(rows: list[list[Any]], head: list[str], classes: list[list[str]] | None = None) -> str:
    out = ["<table><thead><tr>", "".join(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            cls = classes[i][j] if classes else ("num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "")
            text = v if isinstance(v, Raw) else fmt(v)
            cells.append(f'<td class="{cls}">{text}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


class Raw(str):
    """Trusted HTML inside a table cell."""


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            rows.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        rows.append((prefix, obj))
    return rows


def section(sid: str, body: str) -> str:
    return (f'<section id="{sid}"><h2>{esc(TITLES[sid])}</h2>'
            f'<div class="howto"><b>How to read this</b>{esc(HOWTO[sid])}</div>{body}</section>')


def na(text: str) -> str:
    return f'<p class="na">Not available: {esc(text)}</p>'
