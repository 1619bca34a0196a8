"""Split a request into sub-goals: rules, no model, the same answer every time.

A request is cut into fragments at sentence ends, at sequencing words ("then", "finally",
"after that") and at commas or "and" followed by an action verb ("remove duplicates, mask
emails and rate the answers"), but not inside a list of nouns ("emails, phones and IPs",
"questions and answers"). Each fragment gets the kinds its words ask for, in the order they
appear in it:

    load         read the input: files, formats, folders ("my PDFs", "a CSV of tweets")
    clean        rule-based repair and masking in place (HTML, URLs, Unicode, PII, boilerplate)
    filter       drop rows by a criterion (length, language, quality rules, refusals)
    dedup        drop exact or near duplicates
    generate     write new columns or rows (questions, answers, solutions, tests, SQL)
    judge        score, rate, compare, classify with a model
    verify       check against something objective (gold answers, tests, execution, quotes)
    refine       rewrite text with a model (improve, paraphrase, sharpen)
    format       shape the output (chat messages, Alpaca, prompt column, columns)
    unsupported  what no operator can do: images, audio, video, OCR, web scraping, training

A generic verb ("remove", "drop") yields `filter` only when no more specific kind claims the
fragment: "remove duplicates" is dedup, "remove URLs" is clean. A fragment about images, audio
or video is `unsupported` whatever else it says. A request with no recognised kind is one
`generate` sub-goal (a noun phrase such as "math SFT data with chains of thought" asks for data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUBGOAL_KINDS = (
    "load",
    "clean",
    "filter",
    "dedup",
    "generate",
    "judge",
    "verify",
    "refine",
    "format",
    "unsupported",
)

# The operator kinds that usually serve each sub-goal kind (a hint for `retrieve_operators(...,
# kinds=...)`; verification also happens in generators, e.g. rejection sampling).
OPERATOR_KINDS: dict[str, tuple[str, ...]] = {
    "load": (),
    "clean": ("refine", "filter"),
    "filter": ("filter", "evaluate"),
    "dedup": ("filter",),
    "generate": ("generate",),
    "judge": ("evaluate",),
    "verify": ("filter", "evaluate", "generate"),
    "refine": ("refine",),
    "format": ("refine", "generate"),
    "unsupported": (),
}


@dataclass(frozen=True)
class SubGoal:
    kind: str  # one of SUBGOAL_KINDS
    text: str  # the fragment of the request it came from


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")", re.IGNORECASE)


# Verbs that start a new step when they follow a comma or "and".
_ACTION_VERBS = (
    "add answer assess augment build check clean classify compare compute convert count create "
    "decontaminate dedup dedupe deduplicate de-duplicate delete detect discard drop ensure "
    "evaluate exclude execute expand export extract filter fix format generate get grade "
    "identify judge keep label load lowercase make mask measure normalize normalise only output paraphrase "
    "parse polish produce prune rank rate read redact refine remove rephrase replace rewrite run "
    "pick sample save score scrub select sharpen simplify solve split strip synthesize synthesise "
    "tag take test throw tidy toss transcribe translate trim turn validate verify weed write"
).split()
_STEP_WORDS = r"then|and then|after that|afterwards|finally|next|lastly|also|plus|first|second|third"

_BOUNDARY = re.compile(
    r"(?:[.!?;:\n]+\s+|[.!?;]+$|\s*(?:->|=>|→|\+)\s*"
    rf"|,?\s*\b(?:{_STEP_WORDS})\b,?\s*"
    rf"|,\s*(?:and\s+|or\s+)?(?=(?:{'|'.join(_ACTION_VERBS)})\b)"
    rf"|\s+(?:and|or|but)\s+(?=(?:{'|'.join(_ACTION_VERBS)})\b))",
    re.IGNORECASE,
)

_UNSUPPORTED = _rx(
    r"images?\b",
    r"photos?\b",
    r"pictures?\b",
    r"pics?\b",
    r"videos?\b",
    r"audio",
    r"speech",
    r"podcasts?",
    r"transcrib",
    r"transcription",
    r"voice",
    r"bounding box",
    r"ocr\b(?!'d|-ed| output| text| errors| noise)",  # cleaning OCR'd text is text work
    r"sounds?\b",
    r"music",
    r"screenshots?",
    r"frames?\b",
    r"spectrogram",
    r"scrap(?:e|ing) (?:the |a |some |all )?(?:web|websites?|sites?|pages|urls|twitter|reddit)",
    r"crawl (?:the|a|some) ",
    r"download (?:the|all|pages|data from)",
    r"train (?:a|the|my|our) (?:model|classifier|network)",
    r"deploy",
)
_LOAD = _rx(
    r"load",
    r"read(?:ing)? (?:in|my|the|a|from)",
    r"ingest",
    r"import",
    r"parse",
    r"extract(?:ing)? (?:the )?text",
    r"pdfs?\b",
    r"csv",
    r"jsonl?\b",
    r"parquet",
    r"docx",
    r"html files",
    r"markdown files",
    r"\.txt",
    r"folder",
    r"directory",
    r"spreadsheet",
    r"excel",
    r"hugging ?face dataset",
)
_CLEAN = _rx(
    r"clean",
    r"normali[sz]",
    r"tidy",
    r"saniti[sz]",
    r"fix(?:ing)? (?:the )?(?:unicode|encoding|mojibake|whitespace|broken)",
    r"strip",
    r"mask",
    r"anonymi[sz]",
    r"redact",
    r"scrub",
    r"pii\b",
    r"personal (?:data|info|details)",
    r"e-?mails?\b",
    r"phone",
    r"credit cards?",
    r"ip addresses",
    r"urls?\b",
    r"links\b",
    r"html",
    r"tags\b",
    r"emojis?",
    r"boilerplate",
    r"whitespace",
    r"unicode",
    r"mojibake",
    r"garbled",
    r"cookie banners?",
    r"lowercase",
    r"punctuation",
    r"truncat",
    r"shorten",
    r"control characters",
)
_DEDUP = _rx(
    r"de-?dup",
    r"duplicat",
    r"duplciat",
    r"dupes?\b",
    r"near-?dup",
    r"repeated (?:rows|documents|examples|questions|entries|samples)",
    r"same (?:text|document|question|prompt|example|content)",
    r"identical",
    r"copies of each other",
    r"appear(?:s)? (?:twice|more than once)",
    r"semantically similar",
)
_FILTER_SPECIFIC = _rx(
    r"too short",
    r"too long",
    r"short (?:ones|rows|texts|answers|responses|documents)",
    r"low[- ]quality",
    r"toxic",
    r"offensive",
    r"profan",
    r"nsfw",
    r"swear",
    r"non-?english",
    r"only (?:keep )?english",
    r"english only",
    r"languages?\b",
    r"refus",
    r"decontam",
    r"contaminat",
    r"benchmark",
    r"at least",
    r"no more than",
    r"fewer than",
    r"more than \d",
    r"longer than",
    r"shorter than",
    r"below",
    r"above",
    r"threshold",
    r"gibberish",
    r"spam",
    r"junk",
    r"garbage",
    r"lorem ipsum",
    r"bad words",
    r"pretrain",
    r"pre-train",
    r"gopher",
    r"fineweb",
    r"c4\b",
    r"quality filter",
    r"heuristic",
    r"minified",
    r"auto-?generated",
    r"encoded data",
    r"license",
)
_FILTER_GENERIC = _rx(
    r"filter",
    r"drop",
    r"remov",
    r"discard",
    r"exclude",
    r"keep(?:ing)? (?:\d|only|just|the|those|rows|what|ones|pairs|items|examples|records|answers|responses)",
    r"only keep",
    r"get rid",
    r"weed out",
    r"throw (?:away|out)",
    r"toss",
    r"prune",
    r"delete",
    r"select (?:the )?(?:rows|examples|best|good)",
)
_GENERATE = _rx(
    r"sample (?:\d+ |several |multiple |more |many )?(?:solutions|answers|responses|completions|outputs)",
    r"generat",
    r"creat",
    r"synthe[sz]",
    r"synthetic",
    r"write",
    r"writing",
    r"wrote",
    r"produc",
    r"augment",
    r"expand",
    r"come up with",
    r"make (?:up |new |more |some )?(?:questions|data|examples|pairs|problems|exercises|prompts|qa|q&a|instructions|conversations|dialogues)",
    r"answer (?:them|the|each|every|it|those|these)",
    r"answers? for",
    r"solve",
    r"questions? (?:from|about|out of|over|across|based on)",
    r"qa\b",
    r"q&a",
    r"question[- ]answer",
    r"chain[- ]of[- ]thought",
    r"reasoning traces",
    r"step[- ]by[- ]step",
    r"back-?translat",
    r"self-instruct",
    r"variations?",
    r"translate",
    r"more data",
    r"new (?:problems|questions|exercises|examples)",
    r"instruction data",
    r"sft data",
    r"training data",
    r"unit tests",
    r"sql (?:queries|query) for",
    r"chunk",
    r"split (?:the |each |them |documents )?into",
)
_JUDGE = _rx(
    r"judg",
    r"grade",
    r"grading",
    r"rate\b",
    r"rating",
    r"score",
    r"scoring",
    r"evaluat",
    r"assess",
    r"rank",
    r"compare",
    r"better",
    r"preference",
    r"(?<!low )(?<!low-)quality",
    r"classif",
    r"categori[sz]",
    r"label",
    r"difficulty",
    r"how hard",
    r"reward",
    r"critique",
    r"llm as a judge",
)
_VERIFY = _rx(
    r"verif",
    r"check",
    r"validat",
    r"correct",
    r"make sure",
    r"ensure",
    r"tests? (?:pass|them|it|the|each)",
    r"pass(?:es|ing)? (?:the |its |their )?tests",
    r"execut",
    r"run (?:the|them|it|each|every|against)",
    r"sandbox",
    r"compil",
    r"gold",
    r"ground[- ]truth",
    r"self-consistency",
    r"majority",
    r"grounded",
    r"supported by",
    r"answerab",
    r"well-posed",
    r"ill-posed",
    r"consisten",
    r"actually (?:works|runs|returns)",
    r"hallucinat",
    r"rejection sampl",
)
_REFINE = _rx(
    r"rewrite",
    r"translat",
    r"rewriting",
    r"rephras",
    r"improv",
    r"polish",
    r"refine",
    r"sharpen",
    r"simplif",
    r"fix (?:the )?grammar",
    r"grammar",
    r"paraphras",
    r"make (?:them|it|the \w+) (?:clearer|better|more)",
    r"clarify",
    r"edit",
)
_FORMAT = _rx(
    r"format",
    r"chat\b",
    r"sharegpt",
    r"alpaca",
    r"openai",
    r"messages",
    r"conversations?\b",
    r"convert (?:it |them |each |the \w+ )?(?:to|into)",
    r"export",
    r"output (?:as|in|to)",
    r"prompt column",
    r"template",
    r"select (?:the )?columns",
    r"rename",
    r"columns? (?:only|named)",
    r"keep (?:only )?(?:the )?columns",
    r"sft rows",
    r"training format",
    r"instruction/response",
)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("load", _LOAD),
    ("clean", _CLEAN),
    ("dedup", _DEDUP),
    ("filter", _FILTER_SPECIFIC),
    ("generate", _GENERATE),
    ("judge", _JUDGE),
    ("verify", _VERIFY),
    ("refine", _REFINE),
    ("format", _FORMAT),
]


_LIST_JOIN = re.compile(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", re.IGNORECASE)


def fragments(request: str) -> list[str]:
    """The request cut into step-sized pieces (see the module docstring)."""
    pieces = _BOUNDARY.split(" ".join(request.split()) if "\n" not in request else request)
    out = []
    for piece in pieces:
        piece = piece.strip(" ,.;:!?-\n\t")
        if piece and re.search(r"[A-Za-z0-9]", piece):
            out.extend(_split_list(" ".join(piece.split())))
    return out


def _split_list(fragment: str) -> list[str]:
    """Cut a fragment at a comma or "and" with no verb after it when the part after asks for a
    kind the part before does not: "remove low quality pairs and duplicated instructions" is
    two steps, "mask emails, phone numbers and IPs" one."""
    for match in _LIST_JOIN.finditer(fragment):
        left, right = fragment[: match.start()].strip(), fragment[match.end() :].strip()
        before, after = set(_kinds(left)), set(_kinds(right))
        if before - {"load"} and after - before - {"load"}:
            return [left, *_split_list(right)]
    return [fragment]


def _kinds(fragment: str) -> list[str]:
    if _UNSUPPORTED.search(fragment):
        return ["unsupported"]
    found: dict[str, int] = {}
    for kind, pattern in _PATTERNS:
        match = pattern.search(fragment)
        if match:
            found.setdefault(kind, match.start())
    generic = _FILTER_GENERIC.search(fragment)
    # A generic "remove"/"drop" belongs to the specific kind it is said with.
    if generic and not ({"dedup", "clean", "filter"} & found.keys()):
        found["filter"] = generic.start()
    # "load" alone says where the data comes from; with another kind it is still a step
    # (inspecting the input), listed first.
    return sorted(found, key=lambda k: (found[k], SUBGOAL_KINDS.index(k)))


def split_intent(request: str) -> list[SubGoal]:
    """The sub-goals of `request` in the order they appear, each with its fragment."""
    goals: list[SubGoal] = []
    for fragment in fragments(request):
        for kind in _kinds(fragment):
            goal = SubGoal(kind, fragment)
            if goal not in goals:
                goals.append(goal)
    if not goals and request.strip():
        goals.append(SubGoal("generate", " ".join(request.split())))
    return goals
