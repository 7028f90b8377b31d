"""The names people write for a company, made from its listed name.

A listing says "Kingfisher plc", "Roche Holding AG", "Deutsche Börse"; a headline says
"Kingfisher", "Roche", "Deutsche Boerse". So the legal form is dropped (repeatedly: "Holding
AG"), "&" and "and" are both kept, accents are folded both ways a keyboard writes them
("Börse" → "Borse", "Boerse"), and a parenthesised remark is cut. Matching then works on
folded text (``fold``), so a name written with or without its accents is one key.
"""

from __future__ import annotations

import re
import unicodedata

# Legal forms and listing words that a person leaves out; stripped from the end, repeatedly.
LEGAL_SUFFIXES = frozenset(
    """
    plc p.l.c. ag se sa s.a. nv n.v. inc inc. incorporated corp corp. corporation co co.
    company ltd ltd. limited llc lp l.p. group holding holdings oyj abp asa ab a/s as kgaa
    gmbh spa s.p.a. tbk berhad bhd the reit trust sca s.c.a. ag. se. the.
    """.split()
)
_GERMAN = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)
_PAREN = re.compile(r"\s*\([^)]*\)")
_SPLIT = re.compile(r"[\s,]+")


def fold(text: str) -> str:
    """Accents off, case kept: "Nestlé" → "Nestle", "Börse" → "Borse"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_variants(name: str) -> set[str]:
    """Every form of ``name`` worth matching (accent-folded), the name itself included."""
    base = _PAREN.sub("", name).strip().rstrip(",")
    forms = {base}
    words = [w for w in _SPLIT.split(base) if w]
    while len(words) > 1 and words[-1].lower() in LEGAL_SUFFIXES:
        words = words[:-1]
        if words[-1] == "&":  # "Johnson & Johnson & Co" style leftovers
            words = words[:-1]
        forms.add(" ".join(words))
    if len(words) > 1 and words[0].lower() == "the":
        forms.add(" ".join(words[1:]))
    more = set()
    for form in forms:
        if " & " in form:
            more.add(form.replace(" & ", " and "))
        if " and " in form:
            more.add(form.replace(" and ", " & "))
    forms |= more
    out = set()
    for form in forms:
        out.add(fold(form))
        out.add(fold(form.translate(_GERMAN)))
    return {f for f in out if len(f) >= 2}
