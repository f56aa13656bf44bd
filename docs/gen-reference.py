#!/usr/bin/env python3
"""gen-reference.py — docs/reference.md from the doc-comments of the headers.

    python3 docs/gen-reference.py            rewrite docs/reference.md
    python3 docs/gen-reference.py --check [--library libobjmem.so]
        exit 1 if a public name has no doc-comment, reference.md is stale,
        a public name is missing from docs/api.md (the hand-written
        reference, which the house rules require too), or the library
        exports an om_ symbol that no header declares

How it reads a header (include/objmem.h, then the parts it includes, in
that order). A doc-comment is /** … */ above a declaration, or /**< … */
after it on the same line. A doc-comment above covers the declarations
that follow it up to the next blank line or comment, so one comment may
document a family (om_gc_enable / om_gc_disable). A plain /* … */ comment
is prose: a banner such as "/* 2. Errors */" or "/* ---- Tuples ---- */"
starts a section, anything longer is printed as it stands. Declarations
are #define, typedef, enum and struct definitions, OM_API prototypes and
variables, and static inline functions; a public name is one that starts
with om_ or OM_, and each constant of an enum and each field of a
struct needs a doc-comment of its own too.

The output is deterministic (same headers, same bytes), so the --check
run in CTest (test docs-reference) can compare it with the checked-in
file; `make docs` regenerates it.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_HEADER = "include/objmem.h"
OUTPUT = "docs/reference.md"
API_PAGE = "docs/api.md"
PUBLIC = re.compile(r"^(om_|OM_)")
IDENT = re.compile(r"\b(?:om|OM)_[A-Za-z0-9_]+\b")


class Entry:
    """One group of declarations that share a doc-comment."""

    def __init__(self, section, doc):
        self.section = section
        self.doc = doc              # list of lines, or None
        self.names = []             # (name, kind)
        self.code = []              # declaration text shown in the block
        self.undocumented = []      # names or fields lacking a doc-comment


class Section:
    def __init__(self, header, title):
        self.header = header
        self.title = title
        self.items = []             # ("prose", lines) or ("entry", Entry)


def strip_comment(text):
    """The text of a comment without its /* */ and leading stars, as lines."""
    text = re.sub(r"^/\*\*?<?", "", text.strip())
    text = re.sub(r"\*/$", "", text)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"^\s*\*(?!/)", "", line) if lines else line
        lines.append(line.rstrip())
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return lines
    # The first line follows the opening "/**"; the others set the margin.
    indents = [len(l) - len(l.lstrip()) for l in lines[1:] if l.strip()]
    cut = min(indents) if indents else 0
    return [lines[0].strip()] + [l[cut:] for l in lines[1:]]


def read_comment(lines, i):
    """The comment starting at lines[i]: (text, index after it)."""
    text = lines[i]
    while "*/" not in text[text.index("/*") + 2:]:
        i += 1
        text += "\n" + lines[i]
    return text, i + 1


def banner_title(body):
    """The title of a banner comment, or None if it is prose."""
    words = [l.strip("- ").strip() for l in body if l.strip("- ").strip()]
    if len(body) == 1 and len(words) == 1 and ("----" in body[0] or re.match(r"^\d+\. ", words[0])):
        return words[0]
    return None


def split_statement(lines, i):
    """The declaration starting at lines[i]: (text, trailing doc, index after)."""
    first = lines[i]
    if first.startswith("#"):
        text = first
        while text.endswith("\\"):
            i += 1
            text += "\n" + lines[i]
        return text, None, i + 1
    text, depth, braces = "", 0, 0
    while True:
        line = lines[i]
        i += 1
        code = line.split("/**<")[0].split("//")[0]
        text += ("\n" if text else "") + line
        depth += code.count("(") - code.count(")")
        braces += code.count("{") - code.count("}")
        stripped = code.strip()
        ends = stripped.endswith(";") or (stripped.endswith("}") and "inline" in text)
        if depth == 0 and braces == 0 and ends:
            break
        if i >= len(lines):
            break
    trailing = None
    if "/**<" in text:
        # A trailing comment may go on over the following lines.
        start = text.index("/**<")
        rest = text[start:]
        while "*/" not in rest and i < len(lines):
            rest += "\n" + lines[i]
            i += 1
        trailing = strip_comment(rest)
        text = text[:start].rstrip()
    return text, trailing, i


def decl_name(text):
    """The name a declaration (not a definition with a body) declares."""
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    m = re.match(r"\s*#\s*define\s+(\w+)", code)
    if m:
        return m.group(1), "macro"
    m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", code)
    if code.lstrip().startswith("typedef") and m:
        return m.group(1), "type"
    m = re.match(r"\s*typedef\s+(?:struct|enum|union)\s+\w+\s+(\w+)\s*;", code)
    if m:
        return m.group(1), "type"
    head = code.split("{")[0]
    m = re.search(r"(\w+)\s*\(", head)
    if m and not head.lstrip().startswith("typedef"):
        return m.group(1), "function"
    m = re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", code)
    if m:
        kind = "variable" if "extern" in code else "type"
        return m.group(1), kind
    return None, None


def parse_members(body_lines, enum):
    """Names in a struct or enum body and whether each has a doc-comment."""
    members, pending, i = [], False, 0
    while i < len(body_lines):
        line = body_lines[i].strip()
        if not line:
            pending = False
            i += 1
            continue
        if line.startswith("/*"):
            text, i = read_comment(body_lines, i)
            pending = text.lstrip().startswith("/**")
            continue
        text, trailing, i = split_statement_member(body_lines, i, enum)
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        if enum:
            m = re.match(r"\s*(\w+)", code)
        else:
            m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", code) or \
                re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", code)
        if m:
            members.append((m.group(1), pending or trailing is not None))
        pending = False
    return members


def split_statement_member(lines, i, enum):
    """One member of a struct (up to ';') or enum (up to ',' or the end)."""
    text, depth = "", 0
    while i < len(lines):
        line = lines[i]
        i += 1
        code = line.split("/**<")[0]
        text += ("\n" if text else "") + line
        depth += code.count("(") - code.count(")")
        stripped = code.strip()
        if depth == 0 and (stripped.endswith(";") or enum):
            break
    trailing = None
    if "/**<" in text:
        rest = text[text.index("/**<"):]
        while "*/" not in rest and i < len(lines):
            rest += "\n" + lines[i]
            i += 1
        trailing = rest
    return text, trailing, i


def parse_block(lines, i):
    """A struct, union or enum definition starting at lines[i]: (text, index after)."""
    text, braces = "", 0
    while True:
        line = lines[i]
        i += 1
        text += ("\n" if text else "") + line
        code = re.sub(r"/\*.*?\*/", "", line)
        braces += code.count("{") - code.count("}")
        if braces == 0 and code.strip().endswith(";"):
            return text, i


def parse_header(path, sections):
    rel = os.path.relpath(path, ROOT)
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    section = Section(rel, rel)
    sections.append(section)
    guard = None
    group = None            # the Entry declarations join while no blank line intervenes
    pending = None          # a doc-comment waiting for its declaration
    top = True              # the file's first comment
    i = 0
    while i < len(lines):
        raw = lines[i]
        line = raw.strip()
        if not line:
            group = pending = None
            i += 1
            continue
        if line.startswith("/*"):
            text, i = read_comment(lines, i)
            body = strip_comment(text)
            group = None
            if line.startswith("/**") and not line.startswith("/**<"):
                pending = body
                continue
            pending = None
            if top:
                top = False
                # Drop the first paragraph ("objmem/x.h — part of …").
                while body and body[0].strip():
                    body.pop(0)
                while body and not body[0].strip():
                    body.pop(0)
                if body and re.match(r"^\d+\. ", body[0].strip()):
                    section.title = body.pop(0).strip()
                    while body and not body[0].strip():
                        body.pop(0)
                if body:
                    section.items.append(("prose", body))
                continue
            title = banner_title(body)
            if not "".join(body).strip("- "):
                continue        # the rule above and below a banner
            if title is not None:
                if re.match(r"^\d+\. ", title) or "----" not in text:
                    section = Section(rel, title)
                    sections.append(section)
                else:
                    section.items.append(("subhead", title))
            else:
                section.items.append(("prose", body))
            continue
        top = False
        if re.match(r"#\s*(ifndef|define)\s+OBJMEM_\w*H\b", line):
            guard = True
            i += 1
            continue
        if re.match(r"#\s*(if|ifdef|ifndef|else|elif|endif|include|undef)\b", line) \
                or line in ('extern "C" {', "}"):
            i += 1
            continue
        if re.match(r"(typedef\s+)?(struct|enum|union)\b[^;(]*\{", line) or line.startswith("enum {"):
            text, i = parse_block(lines, i)
            entry = new_entry(section, pending, group)
            kind = "enum" if re.match(r"(typedef\s+)?enum", line) else "struct"
            m = re.search(r"\}\s*(\w+)\s*;\s*$", re.sub(r"/\*.*?\*/", "", text, flags=re.S))
            tag = re.match(r"(?:typedef\s+)?(?:struct|enum|union)\s+(\w+)", line)
            name = m.group(1) if m else (tag.group(1) if tag else None)
            inner = text.split("\n")[1:-1]
            members = parse_members(inner, kind == "enum")
            if name:
                entry.names.append((name, kind))
                if entry.doc is None:
                    entry.undocumented.append(name)
            for member, documented in members:
                if kind == "enum":
                    entry.names.append((member, "constant"))
                    if not documented:
                        entry.undocumented.append(member)
                elif not documented:
                    entry.undocumented.append("%s.%s" % (name, member))
            entry.code.append(text)
            group, pending = entry, None
            continue
        text, trailing, i = split_statement(lines, i)
        name, kind = decl_name(text)
        if name is None or not PUBLIC.match(name):
            group = pending = None
            continue
        if trailing is not None:
            entry = new_entry(section, trailing, None)
        else:
            entry = new_entry(section, pending, group)
        entry.names.append((name, kind))
        entry.code.append(display(text, kind))
        if entry.doc is None:
            entry.undocumented.append(name)
        group, pending = (entry if trailing is None else None), None
    return guard


def new_entry(section, doc, group):
    if group is not None:
        return group
    entry = Entry(section, doc)
    section.items.append(("entry", entry))
    return entry


def display(text, kind):
    """How a declaration is shown: one line per declaration, bodies left out."""
    text = re.sub(r"^\s*OM_API\s+", "", text)
    if kind == "macro":
        first = text.split("\n")[0].rstrip("\\ ").rstrip()
        if "\n" in text:
            m = re.match(r"(#\s*define\s+\w+(\([^)]*\))?)", first)
            return m.group(1) + " …"
        return first
    if kind == "function" and "{" in text:
        return " ".join(text.split("{")[0].split()) + ";"
    return " ".join(text.split())


def included_parts(main_path):
    with open(main_path, encoding="utf-8") as f:
        return re.findall(r'^#include "(objmem/[\w.]+)"', f.read(), flags=re.M)


def anchor(name):
    return name.lower()


def render_doc(lines, known):
    """Doc-comment lines as Markdown: prose escaped, names linked, indented code kept."""
    out, in_code = [], False
    for line in lines:
        if line.startswith("    ") and line.strip():
            if not in_code:
                if out and out[-1] != "":
                    out.append("")
                out.append("```c")
                in_code = True
            out.append(line[4:])
            continue
        if in_code:
            out.append("```")
            in_code = False
            if line.strip():
                out.append("")
        out.append(render_prose_line(line, known))
    if in_code:
        out.append("```")
    return out


def render_prose_line(line, known):
    """One line of a doc-comment: `code` spans kept, names linked, the rest escaped."""
    pieces, last = [], 0
    for m in re.finditer(r"`[^`]+`", line):
        pieces.append(render_text(line[last:m.start()], known))
        pieces.append(m.group(0))
        last = m.end()
    pieces.append(render_text(line[last:], known))
    return "".join(pieces)


def render_text(line, known):
    pieces, last = [], 0
    for m in IDENT.finditer(line):
        pieces.append(escape(line[last:m.start()]))
        name = m.group(0)
        if name in known:
            pieces.append("[`%s`](#%s)" % (name, anchor(name)))
        else:
            pieces.append("`%s`" % name)
        last = m.end()
    pieces.append(escape(line[last:]))
    return "".join(pieces)


def escape(text):
    for ch in "\\`*_[]":
        text = text.replace(ch, "\\" + ch)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def slug(title):
    s = re.sub(r"[^\w\- ]", "", title.lower()).strip()
    return re.sub(r" ", "-", s)


def generate():
    main = os.path.join(ROOT, MAIN_HEADER)
    sections = []
    parse_header(main, sections)
    for part in included_parts(main):
        parse_header(os.path.join(ROOT, "include", part), sections)
    entries = [e for s in sections for kind, e in s.items if kind == "entry"]
    documented = {n for e in entries for n, _ in e.names if n not in e.undocumented}
    known = {}
    for e in entries:
        for name, kind in e.names:
            # A name declared twice (a forward typedef, an #else branch) is
            # listed where its doc-comment is.
            if name not in known or (name in documented and name in known[name][1].undocumented):
                known[name] = (kind, e)
    undocumented = list(dict.fromkeys(n for e in entries for n in e.undocumented
                                      if n not in documented))

    out = ["# objmem API reference",
           "",
           "<!-- Generated by docs/gen-reference.py from the doc-comments of",
           "     include/objmem.h and include/objmem/*.h: do not edit; run `make docs`. -->",
           "",
           "Every public name of `#include <objmem.h>`, as its header documents it,",
           "section by section in the header's order. Guides and design notes:",
           "[api.md](api.md) (the same API in more words), [guide-embedding.md](guide-embedding.md),",
           "[guide-gc.md](guide-gc.md), [guide-leaks.md](guide-leaks.md),",
           "[guide-containers.md](guide-containers.md).",
           "",
           "## Contents",
           ""]
    for s in sections:
        if any(k == "entry" for k, _ in s.items):
            out.append("- [%s](#%s) (`%s`)" % (s.title, slug(s.title), s.header))
    out += ["- [Index of names](#index-of-names)", ""]

    for s in sections:
        if not s.items:
            continue
        out += ["## %s" % s.title, "", "`%s`" % s.header, ""]
        for kind, item in s.items:
            if kind == "prose":
                out += ["```text"] + item + ["```", ""]
            elif kind == "subhead":
                out += ["### %s" % item, ""]
            elif item.doc is not None or any(known[n][1] is item for n, _ in item.names):
                # (A bare forward typedef of a type documented below is left out.)
                out += render_entry(item, known)
    out += ["## Index of names", "", "| name | kind | section |", "|---|---|---|"]
    for name in sorted(known, key=lambda n: (n.lower(), n)):
        kind, e = known[name]
        out.append("| [`%s`](#%s) | %s | %s |" % (name, anchor(name), kind, e.section.title))
    out.append("")
    return "\n".join(out), undocumented, known


def render_entry(entry, known):
    seen = set()
    ids = []
    for name, _ in entry.names:
        if name not in seen and known[name][1] is entry:
            ids.append('<a id="%s"></a>' % anchor(name))
        seen.add(name)
    title_names = [n for n, k in entry.names if k != "constant"] or [n for n, _ in entry.names]
    title = ", ".join("`%s`" % n for n in dict.fromkeys(title_names))
    out = ["#### %s %s" % ("".join(ids), title), "", "```c"]
    out += "\n".join(entry.code).split("\n")
    out += ["```", ""]
    if entry.doc:
        out += render_doc(entry.doc, known) + [""]
    return out


def exported_symbols(library):
    """The om_ functions and variables the shared library exports (nm -D)."""
    result = subprocess.run(["nm", "-D", "--defined-only", library],
                            capture_output=True, text=True, check=True)
    return sorted({line.split()[-1] for line in result.stdout.splitlines()
                   if line.split() and PUBLIC.match(line.split()[-1])})


def main():
    args = sys.argv[1:]
    check = "--check" in args
    library = args[args.index("--library") + 1] if "--library" in args else None
    text, undocumented, known = generate()
    count = len(known)
    path = os.path.join(ROOT, OUTPUT)
    if not check:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print("%s: %d public names, %d undocumented" % (OUTPUT, count, len(undocumented)))
        for name in undocumented:
            print("  undocumented: %s" % name)
        return 1 if undocumented else 0
    passed = failed = 0
    if undocumented:
        failed += 1
        print("FAILED: %d public names have no doc-comment:" % len(undocumented))
        for name in undocumented:
            print("  %s" % name)
    else:
        passed += 1
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except OSError:
        current = None
    if current != text:
        failed += 1
        print("FAILED: %s is not up to date with the headers: run `make docs`" % OUTPUT)
    else:
        passed += 1
    with open(os.path.join(ROOT, API_PAGE), encoding="utf-8") as f:
        api = f.read()
    unmentioned = [n for n in known if not re.search(r"(?<![\w])%s(?![\w])" % re.escape(n), api)]
    if unmentioned:
        failed += 1
        print("FAILED: %s does not mention %d public names: %s"
              % (API_PAGE, len(unmentioned), " ".join(unmentioned)))
    else:
        passed += 1
    if library is not None:
        undeclared = [s for s in exported_symbols(library) if s not in known]
        if undeclared:
            failed += 1
            print("FAILED: %s exports names no header declares: %s"
                  % (os.path.basename(library), " ".join(undeclared)))
        else:
            passed += 1
    print("%d public names documented" % (count - len(undocumented)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
