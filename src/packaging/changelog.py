#!/usr/bin/env python3
"""The packages' Debian changelog, made from CHANGELOG.md (Keep a Changelog).

    changelog.py CHANGELOG.md VERSION MAINTAINER

prints a Debian changelog (debian/changelog format) with one entry per released version of
CHANGELOG.md, newest first, the top one VERSION-1, each bullet of its sections as one "*" item
("Added: ...", wrapped at 76 columns), dated at 00:00 UTC of the version's release date and signed
by MAINTAINER. Fails when CHANGELOG.md has no dated section for VERSION, or when VERSION is not
its newest one: the version is Directory.Build.props', the notes are CHANGELOG.md's.
"""
import datetime
import re
import sys
import textwrap

RELEASE = re.compile(r"^## \[([^\]]+)\] - (\d{4}-\d{2}-\d{2})\s*$")


def releases(text):
    """[(version, date, [(section, item text)])] in the file's order (newest first)."""
    out, current, section, item = [], None, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            m = RELEASE.match(line)
            current = (m.group(1), m.group(2), []) if m else None
            if current:
                out.append(current)
            section = item = None
        elif current is None:
            continue
        elif line.startswith("### "):
            section, item = line[4:].strip(), None
        elif line.startswith("- "):
            item = [line[2:].strip()]
            current[2].append((section, item))
        elif item is not None and line.startswith("  ") and line.strip():
            item.append(line.strip())
        elif not line.strip():
            item = None
    return [(v, d, [(s, " ".join(i)) for s, i in items]) for v, d, items in out]


def plain(text):
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # [text](url) -> text
    return text.replace("`", "")


def main():
    path, version, maintainer = sys.argv[1:4]
    found = releases(open(path, encoding="utf-8").read())
    if not found:
        sys.exit("%s: no released version (## [X.Y.Z] - YYYY-MM-DD)" % path)
    if found[0][0] != version:
        sys.exit("%s: the newest release is %s, Directory.Build.props says %s" % (path, found[0][0], version))
    if not re.fullmatch(r"[^<>]+ <[^<>@\s]+@[^<>\s]+>", maintainer):
        sys.exit("maintainer %r is not 'Name <email>'" % maintainer)
    entries = []
    for v, date, items in found:
        if not items:
            sys.exit("%s: release %s has no items" % (path, v))
        when = datetime.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
        lines = ["check-ephemeral-ports (%s-1) unstable; urgency=medium" % v, ""]
        for section, text in items:
            body = plain(text) if section is None else "%s: %s" % (section, plain(text))
            lines += textwrap.wrap(body, 76, initial_indent="  * ", subsequent_indent="    ",
                                   break_on_hyphens=False)
        lines += ["", " -- %s  %s" % (maintainer, when.strftime("%a, %d %b %Y %H:%M:%S +0000"))]
        entries.append("\n".join(lines))
    print("\n\n".join(entries))


if __name__ == "__main__":
    main()
