"""A report as a list of blocks, written as Markdown (figures beside it) and as one HTML file that
a browser opens offline (figures inlined as base64 PNG, the style in the file)."""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}
.reproduced,.holds{color:#176b1d}.not-reproduced,.does-not-hold{color:#b00000}.not-run,.reduced-set-up{color:#777}"""


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, its value: a kind's own type)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("bullets", list(items)))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def image(self, path: Path, caption: str) -> None:
        self.blocks.append(("image", (Path(path), caption)))

    def markdown(self, out: Path) -> str:
        lines = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                lines += ["#" * value[0] + " " + value[1], ""]
            elif kind == "text":
                lines += [value, ""]
            elif kind == "bullets":
                lines += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                shown = value.astype(object).where(value.notna(), "")
                lines += [shown.to_markdown(index=False), ""]
            elif kind == "image":
                lines += [f"![{value[1]}]({value[0].relative_to(out).as_posix()})", ""]
        return "\n".join(lines)

    def html(self) -> str:
        parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title.replace('`', ''))}</title>"
                 f"<style>{_STYLE}</style></head><body><h1>{_inline(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                parts.append(f"<h{value[0]}>{_inline(value[1])}</h{value[0]}>")
            elif kind == "text":
                parts.append(f"<p>{_inline(value)}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in value) + "</ul>")
            elif kind == "table":
                parts.append(_html_table(value))
            elif kind == "image":
                data = base64.b64encode(value[0].read_bytes()).decode()
                parts.append(f"<figure><img alt='{html.escape(value[1])}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{html.escape(value[1])}</figcaption></figure>")
        return "\n".join(parts) + "\n</body></html>\n"


def _inline(text: str) -> str:
    """Markdown's `code` and **bold**, escaped for HTML."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.astype(object).where(frame.notna(), "").iterrows():
        cells = []
        for value in row:
            text = str(value)
            css = re.sub(r"[^a-z]+", "-", text.lower()).strip("-")
            cells.append(f"<td class='{css}'>{_inline(text)}</td>" if css in _VERDICT_CLASSES else f"<td>{_inline(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_VERDICT_CLASSES = {"reproduced", "not-reproduced", "not-run", "reduced-set-up", "holds", "does-not-hold"}
