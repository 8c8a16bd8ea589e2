#!/usr/bin/env python3
"""Generate Sources/Tokenization/Unicode/UnicodeNormalizationTables.swift.

PDServe normalizes text (NFC, NFD, NFKC, NFKD) with its own tables so that it matches the
`tokenizers` library code point for code point. `tokenizers` 0.23 normalizes with the Rust
crate unicode-normalization-alignments 0.1.12, whose tables are Unicode 9.0: a combining
mark assigned later is an unassigned code point to it (combining class 0, no decomposition),
so it neither reorders nor composes. Foundation (and Python's `unicodedata`) use a newer
Unicode, which would give different tokens for such text.

The tables are built from the Unicode Character Database that Debian's `unicode-data`
package installs (Unicode 15.0 in bookworm) restricted to the code points assigned in
Unicode 9.0 or earlier (DerivedAge.txt). That restriction is exact because Unicode's
stability policies freeze the decomposition mapping, the canonical combining class and the
composition exclusion of every assigned character.

Usage (prints a digest of the output; two runs give the same digest):
    apt-get install unicode-data
    python3 tests/reference/make_unicode_tables.py [--ucd /usr/share/unicode] [--version 9.0]
"""
import argparse
import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Sources/Tokenization/Unicode/UnicodeNormalizationTables.swift"
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def ranges(path: Path, wanted_property=None):
    """Yields (first, last, value) from a UCD file of `XXXX..YYYY ; value` lines."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cps, value = (part.strip() for part in line.split(";")[:2])
        if wanted_property is not None and value != wanted_property:
            continue
        first, _, last = cps.partition("..")
        yield int(first, 16), int(last or first, 16), value


def assigned_by(ucd: Path, version: str):
    limit = tuple(int(x) for x in version.split("."))
    assigned = set()
    for first, last, age in ranges(ucd / "DerivedAge.txt"):
        if tuple(int(x) for x in age.split(".")) <= limit:
            assigned.update(range(first, last + 1))
    return assigned


def unicode_data(ucd: Path):
    """code point -> (combining class, decomposition tag or None, mapping list, general category)."""
    table = {}
    for line in (ucd / "UnicodeData.txt").read_text(encoding="utf-8").splitlines():
        fields = line.split(";")
        cp = int(fields[0], 16)
        ccc = int(fields[3])
        decomposition = fields[5].split()
        tag = None
        if decomposition and decomposition[0].startswith("<"):
            tag = decomposition.pop(0)
        table[cp] = (ccc, tag, [int(x, 16) for x in decomposition], fields[2])
    return table


def full_decomposition(cp, data, compatibility):
    ccc, tag, mapping, _ = data.get(cp, (0, None, [], "Cn"))
    if not mapping or (tag is not None and not compatibility):
        return [cp]
    out = []
    for part in mapping:
        out.extend(full_decomposition(part, data, compatibility))
    return out


def encode_runs(values):
    """Runs of consecutive code points with one value: `first-last:value` (or `cp:value`), hex."""
    runs = []
    for cp, value in values:
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == value:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, value])
    return ";".join((f"{a:X}" if a == b else f"{a:X}-{b:X}") + f":{v:X}" for a, b, v in runs)


def encode_map(entries):
    """`cp:a b c;` with hex numbers: one string literal compiles fast and parses in a few ms."""
    return ";".join(f"{cp:X}:" + " ".join(f"{x:X}" for x in values) for cp, values in entries)


def chunked_literal(text, width=110):
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ucd", type=Path, default=Path("/usr/share/unicode"))
    parser.add_argument("--version", default="9.0", help="newest Unicode version whose characters are included")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    ucd_version = re.search(r"DerivedAge-([\d.]+)\.txt", (args.ucd / "DerivedAge.txt").read_text()).group(1)
    assigned = assigned_by(args.ucd, args.version)
    data = {cp: v for cp, v in unicode_data(args.ucd).items() if cp in assigned}
    excluded = set()
    for first, last, _ in ranges(args.ucd / "DerivedNormalizationProps.txt", "Full_Composition_Exclusion"):
        excluded.update(cp for cp in range(first, last + 1) if cp in assigned)

    classes = sorted((cp, ccc) for cp, (ccc, _, _, _) in data.items() if ccc != 0)
    class_text = encode_runs(classes)
    # General category Mark (Mn, Mc, Me): what the StripAccents normalizer removes.
    marks = sorted((cp, 1) for cp, (_, _, _, category) in data.items() if category.startswith("M"))
    mark_text = encode_runs(marks)

    # Hangul syllables are decomposed and composed arithmetically, never through the tables.
    decomposable = [cp for cp, (_, _, mapping, _) in sorted(data.items())
                    if mapping and not HANGUL_FIRST <= cp <= HANGUL_LAST]
    canonical = [(cp, full_decomposition(cp, data, False)) for cp in decomposable]
    canonical = [(cp, d) for cp, d in canonical if d != [cp]]
    compatibility = [(cp, full_decomposition(cp, data, True)) for cp in decomposable]
    canonical_set = dict(canonical)
    # Only the entries where the compatibility decomposition differs from the canonical one.
    compatibility = [(cp, d) for cp, d in compatibility if d != [cp] and canonical_set.get(cp) != d]
    # Primary composites: two-code-point canonical mappings that are not excluded.
    pairs = [(cp, mapping) for cp, (_, tag, mapping, _) in sorted(data.items())
             if tag is None and len(mapping) == 2 and cp not in excluded]

    body = f"""// Generated by tests/reference/make_unicode_tables.py from the Unicode {ucd_version} character
// database restricted to the code points assigned in Unicode {args.version} — the Unicode version of the
// normalization tables the `tokenizers` library uses. Do not edit; regenerate.
// Data derived from the Unicode Character Database, (c) Unicode, Inc., Unicode License v3.

enum UnicodeNormalizationTables {{
    static let unicodeVersion = "{args.version}"

    /// Non-zero canonical combining classes: `first[-last]:class`, hex, `;`-separated.
    static let combiningClasses = \"\"\"
{chunked_literal(class_text)}
\"\"\"

    /// Code points of general category Mark (Mn, Mc, Me): `first[-last]:1`.
    static let marks = \"\"\"
{chunked_literal(mark_text)}
\"\"\"

    /// Full canonical decompositions (Hangul syllables excluded): `cp:d1 d2 …`.
    static let canonicalDecompositions = \"\"\"
{chunked_literal(encode_map(canonical))}
\"\"\"

    /// Full compatibility decompositions where they differ from the canonical one.
    static let compatibilityDecompositions = \"\"\"
{chunked_literal(encode_map(compatibility))}
\"\"\"

    /// Canonical composition: `composite:first second` for every primary composite.
    static let compositions = \"\"\"
{chunked_literal(encode_map(pairs))}
\"\"\"
}}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(body, encoding="utf-8")
    print(f"{args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}: "
          f"{len(classes)} combining classes, {len(marks)} marks, {len(canonical)} canonical and {len(compatibility)} extra "
          f"compatibility decompositions, {len(pairs)} compositions (UCD {ucd_version}, chars <= {args.version})")
    print("digest", hashlib.sha256(body.encode()).hexdigest()[:16])


if __name__ == "__main__":
    main()
