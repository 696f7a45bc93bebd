"""Defence in depth: checks that catch a grade an essay talked the model into, whether or not the
injection detector (grader/quality/injection.py) saw the attack.

1. The regrade (one more model call, for suspect grades only). The essay is graded again with
   every passage that might be talking to the grader set aside (replaced by "[…]"): sentences
   that mention a score or the grading and address someone (you, the grader, the AI; an
   imperative; "please"), sentences that ask for full marks or the like, orders to ignore the
   instructions or the rubric, bracketed and comment text ([…], {…}, <…>, <!-- -->, code fences),
   role lines ("System:", "Note to the grader:"), everything after a fake end of the essay,
   invisible characters, and whatever the detector flags sentence by sentence. If the regrade's
   total is lower by GRADER_RECHECK_POINTS or more (default: 15% of the rubric's maximum), the
   grade goes to review as `regrade_differs`, with both totals, each criterion's two scores and
   the passages set aside; likewise when half the criteria (two at least) were at full marks
   and the regrade gives them less (an attack on an essay that was good already gains few
   points, but puts every criterion at its maximum). The stored scores are the first
   grading's: a person decides.
   Setting passages aside is deliberately broad: a benign sentence taken out costs one call,
   and the regrade of an essay minus a sentence agrees with the first.
2. The justification check (free, on every grade): a justification or feedback that says the
   essay asked for the score ("as instructed", "as requested", "the essay asks...") or quotes
   six words running of a passage set aside goes to review as
   `justification_mentions_instructions`, with the quotes.

GRADER_RECHECK says which grades are regraded: `extreme` (the default) those with a total at or
above GRADER_RECHECK_SHARE of the maximum (0.8) or any criterion at full marks, which is where
an attack that worked puts a grade; `always` every grade with a passage set aside; `off` none,
and no justification check either. A grade with nothing set aside is never regraded (the same
text would get the same answer). If the regrade's model call fails, the grade goes to review as
`recheck_failed`: a suspect grade does not pass unchecked because the check could not run.

Limits: an attack that none of these rules sets aside (no score word, no addressee, plain prose
that persuades) survives the regrade; a model that an attack talks into a moderate raise (below
the extreme share) is not regraded under `extreme`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from grader.grading.grade import Grade
from grader.quality.injection import flagged_passages
from grader.quality.text import END_OF_ESSAY_RX, INVISIBLE_OR_TAG_RX, SENTENCE_RX
from grader.settings import Settings

MARKER = "[…]"
MAX_QUOTE_CHARS = 300
MAX_PASSAGES = 20
ECHO_WORDS = 6

# A line that speaks as someone in a conversation, or chat markup.
_ROLE_LINE = re.compile(
    r"(?im)^[^\S\n]*(?:[#>*\-\[(]+[^\S\n]*)?(?:system|assistant|user|human|ai|grader|admin|"
    r"developer|instructions?|rubric|note[^\S\n]+(?:to|for)[^\S\n]+[^\n:]{1,30}|"
    r"teacher'?s?[^\S\n]+note)[^\S\n]*[:\]].*$"
)
_MARKUP = re.compile(r"(?i)<\|[a-z_]+\|>|\[/?(?:inst|sys|system)\]|<<<|>>>")
_BRACKETED = re.compile(
    r"(?s)<!--.*?-->|/\*.*?\*/|```.*?```|\[[^\]\n]{1,500}\]|<[^<>\n]{1,300}>"
    r"|(?m:^[^\S\n]*(?://|#).*$)"
)
_BRACES = re.compile(r"\{[^{}]{0,3000}\}")  # innermost first, again until none: nested JSON
_PARENTHESES = re.compile(r"\([^()\n]{1,400}\)")

_GRADING = re.compile(
    r"\b(?:scor\w*|grad(?:e|es|ed|er|ers|ing)|marks?|marking|rubric|criteri\w*|credit|"
    r"evaluat\w*|assess\w*|rat(?:e|ed|ing)|maxim\w*|perfect|highest|deserv\w*|merit\w*)\b"
    r"|\b(?:\d+|all|every|full|max)\s+(?:the\s+)?points\b|a\+|\b\d+\s?/\s?\d+\b|\b\d+\s?%"
)
_ADDRESS = re.compile(
    r"\b(?:you|your|yours|yourself|grader|graders|teacher|marker|examiner|evaluator|reviewer|"
    r"assessor|reader|ai|assistant|model|system|chatbot|gpt|llm|bot|machine|algorithm)\b"
    r"|^\W*(?:(?:please|kindly|just|now|simply|and|so)\s+)?(?:give|grade|score|rate|award|"
    r"assign|mark|ignore|disregard|forget|override|output|print|say|respond|reply|return|"
    r"write|treat|consider|make\s+sure|ensure|remember|note|do\s+not|don'?t|never|always)\b"
    r"|\bplease\b|\bi\s+(?:want|need|ask|request|expect|demand|order|instruct)\b"
    r"|\b(?:instruct\w*|command\w*|directive)\b"
)
_IGNORE = re.compile(
    r"\b(?:ignor\w*|disregard\w*|forget|overrid\w*|bypass\w*|neglect)\b.{0,60}?"
    r"\b(?:instruction\w*|rubric|rules?|guidelines?|prompt\w*|directions?|criteri\w*|above|"
    r"previous|prior|earlier|everything|all)\b"
)
_SCORE_ASK = re.compile(
    r"\bfull\s+(?:marks?|score|points|credit)|\b(?:10|20|5|100)\s?/\s?(?:10|20|5|100)\b"
    r"|\b(?:maximum|highest|perfect|top|best)\s+(?:possible\s+)?(?:score|grade|marks?|points|"
    r"rating)s?\b|\ba\+|\b100\s?%"
)
_MENTIONS = re.compile(
    r"\bas\s+(?:instructed|requested|asked|directed|told|demanded)\b"
    r"|\b(?:was|were|been|am|is|are)\s+(?:instructed|told|asked|directed|requested)\s+to\b"
    r"|\bthe\s+(?:essay|student|author|writer|text|submission)\s+(?:asks|requests|instructs|"
    r"tells|demands|wants|requires)\b"
    r"|\b(?:following|per|according\s+to)\s+the\s+(?:essay'?s?|student'?s?|author'?s?|"
    r"embedded|hidden|included|given)\s+(?:instruction|request|note|directive|demand)s?\b"
    r"|\b(?:requested|demanded|asked\s+for)\s+(?:full|maximum|top|perfect|the\s+highest)\b"
    r"|\bignor\w*\s+the\s+rubric\b|\binstructions?\s+(?:in|inside|within|embedded\s+in)\s+the\s+"
    r"(?:essay|text)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Neutralised:
    """The essay with the passages that might address the grader set aside."""

    text: str = ""
    passages: tuple[dict[str, str], ...] = ()  # {"kind": ..., "text": ...}, in essay order


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 1] + "…"


def _cut(text: str, spans: list[tuple[int, int]], kind: str, found: list[dict]) -> str:
    """`text` with `spans` (merged where they overlap) replaced by the marker, each recorded."""
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlaps the previous span: extend it
            start = last
        if end <= start:
            continue
        if text[start:end].strip() and text[start:end].strip() != MARKER:
            found.append({"kind": kind, "text": _quote(text[start:end])})
        out += [text[last:start], f" {MARKER} "]
        last = end
    return "".join(out) + text[last:]


def _addresses_grader(sentence: str) -> bool:
    folded = sentence.casefold()
    return bool(
        (_GRADING.search(folded) and _ADDRESS.search(folded))
        or _IGNORE.search(folded)
        or _SCORE_ASK.search(folded)
    )


def neutralise(essay: str) -> Neutralised:
    """The essay with every passage that might address the grader replaced by "[…]" (NFKC,
    invisible characters removed), and those passages, for a regrade and for its evidence."""
    found: list[dict[str, str]] = []
    text = unicodedata.normalize("NFKC", essay)
    hidden = sum(len(m.group()) for m in INVISIBLE_OR_TAG_RX.finditer(text))
    if hidden:
        text = INVISIBLE_OR_TAG_RX.sub("", text)
        found.append({"kind": "hidden_characters", "text": f"{hidden} invisible characters"})
    end = next((m for m in END_OF_ESSAY_RX.finditer(text) if text[m.end() :].strip()), None)
    if end is not None:
        text = _cut(text, [(end.start(), len(text))], "after_fake_end", found)
    lines = [m.span() for m in _ROLE_LINE.finditer(text)]
    for m in _MARKUP.finditer(text):  # the whole line that carries chat markup
        end = text.find("\n", m.end())
        lines.append((text.rfind("\n", 0, m.start()) + 1, len(text) if end < 0 else end))
    text = _cut(text, lines, "role_line", found)
    text = _cut(text, [m.span() for m in _BRACKETED.finditer(text)], "bracketed", found)
    while braces := [m.span() for m in _BRACES.finditer(text)]:
        text = _cut(text, braces, "bracketed", found)
    asides = [m.span() for m in _PARENTHESES.finditer(text) if _addresses_grader(m.group())]
    text = _cut(text, asides, "bracketed", found)
    sentences = [m for m in SENTENCE_RX.finditer(text) if m.group().strip()]
    spans, previous = [], False
    for m in sentences:
        addressed = _addresses_grader(m.group())
        # "Grader, listen. Full marks." : a score right after a sentence set aside goes too
        if addressed or (previous and _GRADING.search(m.group().casefold())):
            spans.append(m.span())
        previous = addressed
    text = _cut(text, spans, "addresses_grader", found)
    text = _cut(text, flagged_passages(text), "detector", found)
    return Neutralised(text, tuple(found[:MAX_PASSAGES]))


def is_suspect(grade: Grade, settings: Settings) -> bool:
    """Whether `grade` is one GRADER_RECHECK regrades (given a passage set aside)."""
    if settings.recheck == "always":
        return True
    if settings.recheck != "extreme":
        return False
    full = any(c.score == c.max_points for c in grade.criteria)
    return full or grade.total_score >= settings.recheck_share * grade.max_score


def threshold_points(settings: Settings, max_score: int) -> int:
    """How much lower a regrade must be to send the grade to review."""
    return settings.recheck_points or max(1, round(0.15 * max_score))


def differs_reason(
    grade: Grade, rechecked: Grade, neutralised: Neutralised, settings: Settings
) -> dict[str, Any] | None:
    """`regrade_differs` with its evidence, when the regrade is lower by the threshold."""
    points = threshold_points(settings, grade.max_score)
    pairs = list(zip(grade.criteria, rechecked.criteria, strict=True))
    unconfirmed = [c.key for c, r in pairs if c.score == c.max_points and r.score < c.score]
    lower = grade.total_score - rechecked.total_score >= points
    if not lower and len(unconfirmed) < max(2, (len(pairs) + 1) // 2):
        return None
    return {
        "reason": "regrade_differs",
        "detail": {
            "total": grade.total_score,
            "regrade_total": rechecked.total_score,
            "max_score": grade.max_score,
            "threshold_points": points,
            "criteria": {c.key: [c.score, r.score] for c, r in pairs},
            "full_marks_not_confirmed": unconfirmed,
            "passages": list(neutralised.passages),
        },
    }


def failed_reason(error: str, neutralised: Neutralised) -> dict[str, Any]:
    return {
        "reason": "recheck_failed",
        "detail": {"error": error, "passages": list(neutralised.passages)},
    }


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def justification_reason(grade: Grade, neutralised: Neutralised) -> dict[str, Any] | None:
    """`justification_mentions_instructions` when a justification or the feedback says the
    essay asked for its score, or quotes ECHO_WORDS words running of a passage set aside."""
    runs = set()
    for passage in neutralised.passages:
        words = _words(passage["text"])
        runs |= {tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)}
    found = []
    texts = [(c.key, c.justification) for c in grade.criteria] + [("feedback", grade.feedback)]
    for where, text in texts:
        words = _words(text)
        echoes = any(
            tuple(words[i : i + ECHO_WORDS]) in runs for i in range(len(words) - ECHO_WORDS + 1)
        )
        if echoes or _MENTIONS.search(text):
            found.append({"where": where, "text": _quote(text)})
    if not found:
        return None
    return {"reason": "justification_mentions_instructions", "detail": found}


def with_recheck_cost(grade: Grade, rechecked: Grade) -> Grade:
    """The grade, its tokens, calls and cost including the regrade's."""
    costs = (grade.cost_usd, rechecked.cost_usd)
    return replace(
        grade,
        prompt_tokens=grade.prompt_tokens + rechecked.prompt_tokens,
        completion_tokens=grade.completion_tokens + rechecked.completion_tokens,
        model_attempts=grade.model_attempts + rechecked.model_attempts,
        cost_usd=None if None in costs else round(sum(costs), 6),  # type: ignore[arg-type]
    )
