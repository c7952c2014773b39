#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turns one of docs/*.md into scdoc source, so that a man page is built from the same text as
the Markdown reference and cannot drift from it.

  md2scd.py INPUT.md NAME SECTION [--drop HEADING]... [--whatis TEXT] [--see-also TEXT]
            [--output OUTPUT.scd]

Handles the Markdown these documents use: headings, paragraphs, "* " lists, definition lists
("`term`" followed by ": text"), fenced code blocks, pipe tables (written as one entry per row),
`code`, **bold**, *emphasis* and [links](target). The first "# " heading is replaced by the
scdoc header; "## " becomes a section (upper case), "### " a subsection. Sections named with
--drop are left out (e.g. notes for programmers)."""
import argparse
import re
import sys


def inline(text):
    """Markdown inline markup to scdoc: `code` and **bold** become *bold*, *em* becomes _em_;
    links keep their text (and a file target in parentheses). Everything else is escaped."""
    out, i = [], 0
    pat = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])|\[([^\]]+)\]\(([^)]+)\)")
    for m in pat.finditer(text):
        out.append(esc(text[i:m.start()]))
        if m.group(1) is not None:
            out.append("*" + esc(m.group(1)) + "*")
        elif m.group(2) is not None:
            out.append("*" + inline(m.group(2)).replace("*", "") + "*")
        elif m.group(3) is not None:
            out.append("_" + esc(m.group(3)) + "_")
        else:
            label, target = m.group(4), m.group(5)
            out.append(inline(label))
            if not target.startswith("#") and not target.startswith("http"):
                out.append(" (" + esc("docs/" + target.split("#")[0].split("/")[-1]) + ")")
        i = m.end()
    out.append(esc(text[i:]))
    return "".join(out)


def esc(text):
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


def line_start(text):
    """scdoc gives a meaning to some characters at the start of a line."""
    if text[:1] in ("[", "|", ":", "-", "#"):
        return "\\" + text
    return text


def cells(row):
    row = row.strip()
    assert row.startswith("|") and row.endswith("|"), row
    parts, cur, tick = [], "", False
    for c in row[1:-1]:
        if c == "`":
            tick = not tick
        if c == "|" and not tick:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    parts.append(cur.strip())
    return parts


def convert(lines, name, section, title, drop, whatis=None):
    out = [f'{name}({section})' + (f' "" "{title}"' if title else ""), ""]
    if whatis:
        out += ["# NAME", "", inline(whatis), "", "# DESCRIPTION", ""]
    i, n = 0, len(lines)
    skipping = False
    para = []

    def flush():
        if para:
            text = " ".join(p.strip() for p in para)
            if in_name:
                # whatis(1) wants "name - description".
                text = text.replace(" — ", " - ")
            out.append(line_start(inline(text)))
            out.append("")
            para.clear()

    first_heading = True
    in_name = False
    while i < n:
        line = lines[i].rstrip("\n")
        if line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            text = line[level:].strip()
            if level == 1 and first_heading:
                first_heading = False
                i += 1
                continue
            if level == 2:
                skipping = text in drop
                in_name = text.upper() == "NAME"
            if not skipping:
                if level <= 2:
                    out += ["# " + text.upper(), ""]
                else:
                    out += ["## " + inline(text).replace("*", ""), ""]
            i += 1
            continue
        if skipping:
            i += 1
            continue
        if line.startswith("```"):
            flush()
            block = []
            i += 1
            while i < n and not lines[i].startswith("```"):
                block.append(lines[i].rstrip("\n").replace("\t", "        "))
                i += 1
            i += 1
            out += ["```"] + block + ["```", ""]
            continue
        if line.startswith("|"):
            flush()
            rows = []
            while i < n and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            for r in body:
                out.append(inline(r[0]))
                rest = []
                for h, c in zip(head[1:], r[1:]):
                    if h.lower() in ("meaning", "description", "what"):
                        rest.append(inline(c))
                    else:
                        rest.append(inline(h[:1].upper() + h[1:]) + ": " + inline(c) + ".")
                out.append("\t" + " ".join(rest))
                out.append("")
            continue
        if re.match(r"^\* ", line) or (i + 1 < n and lines[i + 1].startswith(": ") and line.strip()):
            flush()
            if line.startswith("* "):
                item, i = [line[2:]], i + 1
                prefix = "- "
            else:
                out.append(inline(line.strip()))
                item, i = [lines[i + 1][2:]], i + 2
                prefix = "\t"
            while i < n and lines[i].startswith("  ") and not lines[i].lstrip().startswith("```"):
                item.append(lines[i])
                i += 1
            out.append(prefix + inline(" ".join(p.strip() for p in item)))
            # Further paragraphs and code blocks of the item, indented by two spaces.
            while i + 1 < n and lines[i].strip() == "" and lines[i + 1].startswith("  "):
                i += 1
                out.append("")
                if lines[i].lstrip().startswith("```"):
                    i += 1
                    out.append("\t```")
                    while i < n and not lines[i].lstrip().startswith("```"):
                        out.append("\t" + lines[i].rstrip("\n")[2:])
                        i += 1
                    i += 1
                    out.append("\t```")
                else:
                    more = []
                    while i < n and lines[i].startswith("  ") and not lines[i].lstrip().startswith("```"):
                        more.append(lines[i])
                        i += 1
                    out.append("\t" + inline(" ".join(p.strip() for p in more)))
            if not (prefix == "- " and i < n and lines[i].startswith("* ")):
                out.append("")
            continue
        if not line.strip():
            flush()
            i += 1
            continue
        para.append(line)
        i += 1
    flush()
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("name")
    ap.add_argument("section")
    ap.add_argument("--title", default="")
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--whatis", help="NAME section text when the document has none "
                    "(its introduction then becomes DESCRIPTION)")
    ap.add_argument("--see-also", help="SEE ALSO section text to append")
    ap.add_argument("--output")
    a = ap.parse_args()
    with open(a.input) as f:
        text = convert(f.readlines(), a.name, a.section, a.title, a.drop, a.whatis)
    if a.see_also:
        text += "\n# SEE ALSO\n\n" + inline(a.see_also) + "\n"
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
