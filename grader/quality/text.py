"""Text rules shared by the checks on an essay: invisible characters, look-alike letters, sentences
and fake ends of the essay, written once.

`normalise` is the detector's copy of an essay (NFKC, invisible characters removed, Cyrillic and
Greek look-alikes mapped to Latin in mixed-script words; case kept), recording what it removed;
`fold` is the plain form for matching (NFKC, invisible characters removed, casefolded).
"""

from __future__ import annotations

import re
import unicodedata

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible characters (a regex character class, without brackets): zero-width characters, bidi
# controls and marks, soft hyphen, CGJ, Mongolian vowel separator, invisible operators.
INVISIBLE_CHARS = "\u00ad\u034f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
# Unicode tag characters (invisible ASCII). They are outside the BMP, and a search is slower when
# its pattern includes them, so INVISIBLE_RX leaves them out; INVISIBLE_OR_TAG_RX has both.
TAG_CHARS = "\U000e0000-\U000e007f"
INVISIBLE_RX = re.compile(f"[{INVISIBLE_CHARS}]+")
INVISIBLE_OR_TAG_RX = re.compile(f"[{INVISIBLE_CHARS}{TAG_CHARS}]+")
# One pass decides whether the character checks are needed at all (most essays: no).
SPECIAL_CHAR_RX = re.compile(f"[{INVISIBLE_CHARS}\u0370-\u03ff\u0400-\u04ff]")
GREEK_CYRILLIC_RX = re.compile("[\u0370-\u03ff\u0400-\u04ff]")
_BLACK_FLAG = "\U0001f3f4"
_FLAG_TAG_RUN_RX = re.compile("[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,7}\U000e007f")
LOOK_ALIKES = "аеорсухіјѕԁһԛԝАВЕКМНОРСТХУІЈЅαεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ"
HOMOGLYPHS = str.maketrans(LOOK_ALIKES, "aeopcyxijsdhqwabekmhopctxyijsaeikvoptuxabehikmnoptyx")
# Only look-alike letters next to Latin ones count: "5 µm" and "ΔT" are science, not disguise.
# (Starting at the look-alike, rare in English, is faster than starting at every Latin letter.)
MIXED_SCRIPT_RX = re.compile(f"[{LOOK_ALIKES}](?:(?<=[a-zA-Z].)|(?=[a-zA-Z]))")

# A sentence, a line or a run of text up to one.
SENTENCE_RX = re.compile(r"[^.!?\n]+[.!?]*")

# A fake end of the essay: a marker opening a line, in any case ("End of essay", "<<<END",
# "</essay>", "[/INST]", "<|im_end|>"), or END OF ESSAY in capitals anywhere. What follows it,
# if anything, is not the student's essay.
END_OF_ESSAY_RX = re.compile(
    r"(?im:^[^\S\n]*(?:<<<[^\S\n]*end|<[^\S\n]*/[^\S\n]*(?:essay|text|document|submission|user|"
    r"input)[^\S\n]*>|\[/inst\]|<\|(?:im_end|endoftext|eot_id|end)\|>"
    # markers before the words, never across a line break (that would make the search quadratic)
    r"|(?:[#=*_~\-][#=*_~\-\t\r\f\v ]*)?end[^\S\n]+of"
    r"[^\S\n]+(?:the[^\S\n]+)?(?:student'?s?[^\S\n]+)?(?:essay|text|document|submission|input)\b))"
    r"|END OF (?:THE )?(?:STUDENT(?:'S|S)? )?(?:ESSAY|SUBMISSION|TEXT|INPUT)\b"
)


def fold(text: str) -> str:
    """NFKC, invisible characters (tags included) removed, casefolded."""
    return INVISIBLE_OR_TAG_RX.sub("", unicodedata.normalize("NFKC", text)).casefold()


def may_have_tags(text: str) -> bool:
    """Whether the text may hold tag characters (cheap; a false yes only costs a slower search)."""
    # Tag characters are outside the BMP: in UTF-16 their high surrogate is 0xDB40. Encoding costs
    # microseconds; a chance match across two code units only costs the slower search.
    encoded = text.encode("utf-16-le", "surrogatepass")
    return len(encoded) != 2 * len(text) and b"\x40\xdb" in encoded


def strip_invisible(text: str, found: set[str], hidden: list[str]) -> str:
    """The text without its invisible characters. Adds to `found` the detector's signals for the
    ways they can hide text (zero_width, bidi_control, unicode_tags), and to `hidden` the ASCII
    that tag characters spell."""
    rx = INVISIBLE_OR_TAG_RX if may_have_tags(text) else INVISIBLE_RX
    kept: list[str] = []
    tags: list[str] = []
    end = 0
    word_splits = 0
    for m in rx.finditer(text):
        run, start = m.group(), m.start()
        kept.append(text[end:start])
        end = m.end()
        if any(c in BIDI for c in run):
            found.add("bidi_control")
        zero_width = sum(c in ZERO_WIDTH for c in run)
        if zero_width >= 2:
            found.add("zero_width")
        elif (
            zero_width
            and start > 0
            and end < len(text)
            and text[start - 1].isascii()
            and text[start - 1].isalnum()
            and text[end].isascii()
            and text[end].isalnum()
        ):
            # a word split in two; twice or more is a trick (a single one can come from a pasted
            # web page), and emoji ZWJ sequences join pictographs, not letters
            word_splits += 1
            if word_splits >= 2:
                found.add("zero_width")
        # England, Scotland and Wales flags are tag sequences after a black flag; any other
        # tag characters spell invisible ASCII
        flag = text[start - 1 : start] == _BLACK_FLAG and _FLAG_TAG_RUN_RX.fullmatch(run)
        if not flag and any(c >= "\U000e0000" for c in run):
            found.add("unicode_tags")
            tags.append(
                "".join(chr(ord(c) - 0xE0000) for c in run if "\U000e0020" <= c < "\U000e007f")
            )
    if tags:
        hidden.append(" ".join(tags))
    kept.append(text[end:])
    return "".join(kept)


def map_look_alikes(text: str, found: set[str]) -> str:
    """Maps look-alike letters to Latin in the words that mix them with Latin letters (only
    those: a Russian essay stays Russian); adds mixed_scripts to `found` when there are some."""
    parts: list[str] = []
    end = 0
    for m in MIXED_SCRIPT_RX.finditer(text):
        if m.start() < end:
            continue
        found.add("mixed_scripts")
        start = m.start()
        while start > end and text[start - 1].isalpha():
            start -= 1
        parts.append(text[end:start])
        end = m.end()
        while end < len(text) and text[end].isalpha():
            end += 1
        parts.append(text[start:end].translate(HOMOGLYPHS))
    parts.append(text[end:])
    return "".join(parts)


def normalise(essay: str, found: set[str], hidden: list[str]) -> str:
    """NFKC text without invisible characters and with look-alikes mapped (case kept); see
    strip_invisible and map_look_alikes for what it adds to `found` and `hidden`."""
    if essay.isascii():
        return essay
    if not may_have_tags(essay) and not SPECIAL_CHAR_RX.search(essay):
        return unicodedata.normalize("NFKC", essay)
    text = unicodedata.normalize("NFKC", strip_invisible(essay, found, hidden))
    if GREEK_CYRILLIC_RX.search(text):
        text = map_look_alikes(text, found)
    return text
