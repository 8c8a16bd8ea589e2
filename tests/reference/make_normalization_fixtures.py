#!/usr/bin/env python3
"""Write tests/fixtures/unicode/normalization.txt: what the `tokenizers` library's NFC, NFD,
NFKC and NFKD normalizers make of Unicode's whole normalization test data and of every
single code point that any of them changes.

Each line is `source;nfc;nfd;nfkc;nfkd` in NormalizationTest.txt's notation (hex code points
separated by spaces). The Swift tests compare PDServe's normalizer with every line, and
check that each code point missing from the file is left alone by PDServe's tables.

`tokenizers` 0.23 uses Unicode 9.0 tables (see make_unicode_tables.py). Every line made
only of code points assigned by Unicode 9.0 is also checked here against the test file's
own columns and against Python's `unicodedata`, so the fixture is proven against both
references where they apply; on newer code points `tokenizers` is the ground truth.

Usage (tokenizers installed, Debian's unicode-data package for the test file):
    .venv-test/bin/python tests/reference/make_normalization_fixtures.py [--ucd /usr/share/unicode]
"""
import argparse
import bz2
import hashlib
import sys
import unicodedata
from pathlib import Path

from tokenizers import normalizers

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_unicode_tables import assigned_by  # noqa: E402

FORMS = {"NFC": normalizers.NFC(), "NFD": normalizers.NFD(), "NFKC": normalizers.NFKC(), "NFKD": normalizers.NFKD()}


def to_text(hex_list: str) -> str:
    return "".join(chr(int(x, 16)) for x in hex_list.split())


def to_hex(text: str) -> str:
    return " ".join(f"{ord(c):04X}" for c in text)


def test_lines(ucd: Path):
    """(source, [c2, c3, c4, c5]) of every test line of NormalizationTest.txt."""
    path = ucd / "NormalizationTest.txt"
    raw = path.read_bytes() if path.exists() else bz2.decompress((ucd / "NormalizationTest.txt.bz2").read_bytes())
    for line in raw.decode("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("@"):
            continue
        columns = [to_text(c) for c in line.split(";")[:5]]
        yield columns[0], columns[1:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ucd", type=Path, default=Path("/usr/share/unicode"))
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/unicode/normalization.txt")
    args = parser.parse_args()

    old = assigned_by(args.ucd, "9.0")
    sources, checked = [], 0
    for source, expected in test_lines(args.ucd):
        sources.append(source)
        if all(ord(c) in old for c in source + "".join(expected)):
            # NormalizationTest columns: c2 = NFC(c1), c3 = NFD, c4 = NFKC, c5 = NFKD.
            for form, want in zip(FORMS, expected):
                got = FORMS[form].normalize_str(source)
                assert got == want == unicodedata.normalize(form, source), (form, to_hex(source), to_hex(got))
            checked += 1
    single = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF
              and any(f.normalize_str(chr(cp)) != chr(cp) for f in FORMS.values())]
    seen, lines = set(), []
    for source in sources + single:
        if source in seen:
            continue
        seen.add(source)
        lines.append(";".join([to_hex(source)] + [to_hex(f.normalize_str(source)) for f in FORMS.values()]))

    import tokenizers
    header = (f"# tokenizers {tokenizers.__version__} NFC;NFD;NFKC;NFKD of NormalizationTest.txt "
              f"(Unicode {unicodedata.unidata_version} python, UCD at {args.ucd}) and of every code point they change.\n"
              "# Written by tests/reference/make_normalization_fixtures.py; source;nfc;nfd;nfkc;nfkd.\n")
    body = header + "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(body, encoding="utf-8")
    print(f"{len(lines)} lines ({len(sources)} test-data lines, {checked} of them also checked against the "
          f"test file and unicodedata; {len(single)} single code points)")
    print("digest", hashlib.sha256(body.encode()).hexdigest()[:16])


if __name__ == "__main__":
    main()
