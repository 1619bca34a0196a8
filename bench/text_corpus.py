"""A synthetic, web-like, multilingual text corpus with planted duplicates (for benchmarks).

    python bench/text_corpus.py [--docs 200000] [--seed 7] [--out bench/data/text-corpus-200000.parquet]

Deterministic for a given seed and size. Documents average about 1.3 kB: mostly English (80%),
plus German, French, Spanish (about 5% each) and Chinese (4%). Vocabularies are made up: a few
thousand pronounceable pseudo-words per language built from syllables, drawn with Zipfian
frequencies, mixed with each language's real stop words, so the text compresses like prose
rather than like a repeated template. Chinese draws from ~2,500 CJK characters, without spaces.

Kinds of original documents: articles (paragraphs of sentences with capitals and punctuation,
lognormal length, 30% with a site footer), short snippets, boilerplate pages (cookie banners,
navigation menus, login walls from templates: near-duplicates of each other by nature),
repeated-line pages and symbol-heavy pages (tables, separators, code-like noise).

Planted duplicates, after the originals (then everything is shuffled): 10% exact copies and 10%
near-duplicates in which 1-4% of the words are replaced, deleted or inserted (characters, for
Chinese). Columns:

    doc_id     int64   row number (the engine's `_id` is the same number as text)
    text       string
    lang       string  en, de, fr, es, zh
    kind       string  article, short, boilerplate, repeated_lines, symbols
    dup_of     int64   for a planted copy, the doc_id of its source document (else null)
    dup_kind   string  "exact" or "near" for planted copies (else null)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

STOP_WORDS = {
    "en": "the of and to a in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if so no "
    "will more can out up about who them what some could into than other its then only also",
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch "
    "es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über so zum",
    "fr": "de la le et les des en un du une que est pour qui dans par plus pas au sur ne se ce il "
    "sont avec son elle mais comme ou leur on ses été aux cette tout nous fait",
    "es": "de la que el en y a los del se las por un para con no una su al es lo como más pero "
    "sus le ya o fue este ha sí porque esta son entre cuando muy sin sobre también",
}
SYLLABLES = {
    "en": (
        "b c d f g h l m n p r s t v w st tr pl gr ch sh th",
        "a e i o u ea ou ai",
        "n r s t l nd st ck ng",
    ),
    "de": (
        "b d f g h k l m n p r s t w z sch st pf kr br",
        "a e i o u ä ö ü ei au ie",
        "n r s t l ch ng nd rt",
    ),
    "fr": ("b c d f g l m n p r s t v j ch tr pr bl", "a e i o u é è ou ai eau", "n r s t l x"),
    "es": ("b c d f g l m n p r s t v ll ch br tr", "a e i o u ía ue io", "n r s l z"),
}
LANGS = ["en", "de", "fr", "es", "zh"]
LANG_P = [0.80, 0.055, 0.05, 0.055, 0.04]
SITE_WORDS = "daily news post times journal hub central world today online portal review".split()
FOOTERS = [
    "Share this article: Facebook | Twitter | Email",
    "Related posts | Most read | Newsletter sign-up",
    "Copyright © {year} {site}. All rights reserved.",
    "Comments are closed. Posted in {cat} by {author}.",
    "Read more stories from {site} →",
]
BOILERPLATE = [
    "We use cookies to give you the best experience on {site}. By clicking “Accept all” you agree to "
    "the storing of cookies on your device to enhance site navigation, analyse site usage and assist in "
    "our marketing efforts. Accept all | Reject all | Cookie settings | Privacy policy",
    "Home | News | Sport | Business | Culture | Travel | Weather | Contact | About {site} | Jobs | "
    "Advertise | Terms of use | Privacy | Sitemap | © {year} {site}",
    "Please enable JavaScript to view this page. {site} requires JavaScript and cookies to work "
    "properly. Sign in | Register | Forgot your password? | Help centre",
    "404 Page not found. Sorry, the page you are looking for on {site} does not exist or has been "
    "moved. Go back to the home page or use the search box above. Popular: {cat}, {cat2}, {cat3}",
    "Subscribe to the {site} newsletter and never miss a story. Enter your email address below. We "
    "will never share your email. Unsubscribe at any time. Subscribe now",
]
CATEGORIES = "politics sport health science travel food music film books tech money style".split()
SYMBOL_LINES = [
    "|------|------|------|------|",
    "#### ==== #### ==== ####",
    "{}[]();{}[]();{}[]();",
    "* * * * * * * * * * * *",
    ">>> $ ./run --flag=1 && echo $?",
    "0x1F 0x2A 0xFF 0x00 0xDE 0xAD 0xBE 0xEF",
    "~~~~~~~~~~~~~~~~~~~~~~~~~~",
    "=+=+=+=+=+=+=+=+=+=+=+=+=+",
]


class Language:
    """A language's token forms: index w is a word, as plain, capitalized, sentence-final ('w.'),
    with a comma ('w,') and paragraph-final ('w.\\n\\n'), each carrying its trailing separator."""

    def __init__(self, code: str, rng: np.random.Generator, size: int):
        self.code = code
        if code == "zh":
            self.words = [chr(0x4E00 + int(c)) for c in rng.choice(20000, size, replace=False)]
        else:
            stop = STOP_WORDS[code].split()
            self.words = stop + _pseudo_words(code, rng, size - len(stop), set(stop))
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        weights = 1.0 / ranks**1.05
        self.p = weights / weights.sum()
        v = len(self.words)
        if code == "zh":
            forms = (
                [w for w in self.words] * 2 + [w + "。" for w in self.words] + [w + "，" for w in self.words]
            )
            forms += [w + "。\n\n" for w in self.words]
        else:
            forms = [w + " " for w in self.words]
            forms += [w[:1].upper() + w[1:] + " " for w in self.words]
            forms += [w + ". " for w in self.words]
            forms += [w + ", " for w in self.words]
            forms += [w + ".\n\n" for w in self.words]
        self.forms = pa.array(forms, pa.string())
        self.size = v

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(self.size, size=n, p=self.p)


def _pseudo_words(code: str, rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    onsets, vowels, codas = (part.split() for part in SYLLABLES[code])
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:
        syllables = int(rng.choice([1, 1, 2, 2, 2, 3]))
        word = "".join(
            str(rng.choice(onsets))
            + str(rng.choice(vowels))
            + (str(rng.choice(codas)) if rng.random() < 0.4 else "")
            for _ in range(syllables)
        )
        if word not in seen:
            seen.add(word)
            out.append(word)
    # Shorter words are more frequent (they get the better Zipf ranks).
    return sorted(out, key=lambda w: (len(w), rng.random()))


def _articles(
    lang: Language, rng: np.random.Generator, lengths: np.ndarray, paragraphs: bool = True
) -> list[str]:
    """Article texts of the given word counts, built with Arrow kernels (no per-word Python)."""
    total = int(lengths.sum())
    words = lang.sample(rng, total)
    form = np.zeros(total, np.int64)  # 0 plain, 1 capitalized, 2 'w.', 3 'w,', 4 'w.\n\n'
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = starts + lengths - 1
    # Sentence ends about every 8-25 words, paragraph ends about every 5 sentences.
    sentence_end = rng.random(total) < 1 / 15
    sentence_end[ends] = True
    form[rng.random(total) < 0.06] = 3
    form[sentence_end] = 2
    paragraph = sentence_end & (rng.random(total) < (0.2 if paragraphs else 0.0))
    form[paragraph] = 4
    form[ends] = 2
    after_end = np.zeros(total, bool)
    after_end[1:] = sentence_end[:-1]
    after_end[starts] = True
    if lang.code != "zh":
        form[after_end & (form == 0)] = 1
    codes = pa.array(words + form * lang.size)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    tokens = pa.ListArray.from_arrays(offsets, lang.forms.take(codes))
    return [s.rstrip() for s in pc.binary_join(tokens, "").to_pylist()]


def _site(rng: np.random.Generator) -> str:
    return f"{rng.choice(SITE_WORDS).title()}{rng.choice(SITE_WORDS).title()}.example"


def _fill(template: str, rng: np.random.Generator) -> str:
    cats = rng.choice(CATEGORIES, 3, replace=False)
    return template.format(
        site=_site(rng),
        year=int(rng.integers(2005, 2025)),
        cat=cats[0],
        cat2=cats[1],
        cat3=cats[2],
        author=f"user{int(rng.integers(1, 999))}",
    )


def build(docs: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    langs = {
        code: Language(code, rng, 2500 if code == "zh" else (4000 if code == "en" else 2500))
        for code in LANGS
    }
    n_exact = docs // 10
    n_near = docs // 10
    n_orig = docs - n_exact - n_near
    kinds = rng.choice(
        ["article", "short", "boilerplate", "repeated_lines", "symbols"],
        n_orig,
        p=[0.86, 0.05, 0.04, 0.03, 0.02],
    )
    lang_of = rng.choice(LANGS, n_orig, p=LANG_P)
    texts: list[str | None] = [None] * n_orig
    for code in LANGS:
        lang = langs[code]
        idx = np.flatnonzero((kinds == "article") & (lang_of == code))
        if code == "zh":
            lengths = np.maximum(20, rng.lognormal(np.log(440), 0.6, len(idx))).astype(np.int64)
        else:
            lengths = np.maximum(20, rng.lognormal(np.log(250), 0.7, len(idx))).astype(np.int64)
        for i, text in zip(idx.tolist(), _articles(lang, rng, lengths), strict=True):
            texts[i] = text
        idx = np.flatnonzero((kinds == "short") & (lang_of == code))
        lengths = rng.integers(3, 30, len(idx)) * (3 if code == "zh" else 1)
        for i, text in zip(idx.tolist(), _articles(lang, rng, lengths), strict=True):
            texts[i] = text
        idx = np.flatnonzero((kinds == "repeated_lines") & (lang_of == code))
        line_lengths = rng.integers(6, 16, len(idx)) * (2 if code == "zh" else 1)
        lines = _articles(lang, rng, line_lengths, paragraphs=False)
        for i, line in zip(idx.tolist(), lines, strict=True):
            repeat = int(rng.integers(5, 30))
            extra = _articles(lang, rng, np.array([int(rng.integers(10, 40))]))[0]
            texts[i] = "\n".join([line] * repeat) + "\n" + extra
    for i in np.flatnonzero(kinds == "boilerplate").tolist():
        texts[i] = _fill(BOILERPLATE[int(rng.integers(len(BOILERPLATE)))], rng)
    for i in np.flatnonzero(kinds == "symbols").tolist():
        lines = [SYMBOL_LINES[int(k)] for k in rng.integers(0, len(SYMBOL_LINES), int(rng.integers(8, 40)))]
        words = " ".join(langs["en"].words[int(w)] for w in langs["en"].sample(rng, 12))
        texts[i] = "\n".join(lines[:4] + [words] + lines[4:])
    # Site footers on some articles.
    for i in np.flatnonzero((kinds == "article") & (rng.random(n_orig) < 0.3)).tolist():
        texts[i] = texts[i] + "\n\n" + _fill(FOOTERS[int(rng.integers(len(FOOTERS)))], rng)

    # Planted duplicates.
    exact_src = rng.integers(0, n_orig, n_exact)
    near_src = rng.integers(0, n_orig, n_near)
    near_texts = [_perturb(texts[int(s)], langs[str(lang_of[s])], rng) for s in near_src]
    all_texts = texts + [texts[int(s)] for s in exact_src] + near_texts
    all_lang = np.concatenate([lang_of, lang_of[exact_src], lang_of[near_src]])
    all_kind = np.concatenate([kinds, kinds[exact_src], kinds[near_src]])
    source = np.concatenate([np.full(n_orig, -1), exact_src, near_src])
    dup_kind = np.array([None] * n_orig + ["exact"] * n_exact + ["near"] * n_near, dtype=object)

    order = rng.permutation(docs)  # row r holds document order[r]
    position = np.empty(docs, np.int64)
    position[order] = np.arange(docs)
    source = source[order]
    dup_of = np.where(source >= 0, position[np.maximum(source, 0)], -1)
    return pa.table(
        {
            "doc_id": pa.array(np.arange(docs), pa.int64()),
            "text": pa.array([all_texts[int(k)] for k in order], pa.string()),
            "lang": pa.array(all_lang[order].tolist(), pa.string()),
            "kind": pa.array(all_kind[order].tolist(), pa.string()),
            "dup_of": pa.array(dup_of, pa.int64(), mask=dup_of < 0),
            "dup_kind": pa.array(dup_kind[order].tolist(), pa.string()),
        }
    )


def _perturb(text: str, lang: Language, rng: np.random.Generator) -> str:
    """`text` with 1-4% of its words (characters for Chinese) replaced, deleted or inserted."""
    rate = rng.uniform(0.01, 0.04)
    if lang.code == "zh":
        chars = list(text)
        k = max(1, int(round(rate * len(chars))))
        for pos in sorted(rng.choice(len(chars), min(k, len(chars)), replace=False).tolist(), reverse=True):
            chars[pos] = lang.words[int(rng.integers(lang.size))]
        return "".join(chars)
    words = text.split(" ")
    k = max(1, int(round(rate * len(words))))
    for pos in sorted(rng.choice(len(words), min(k, len(words)), replace=False).tolist(), reverse=True):
        op = rng.random()
        new = lang.words[int(rng.integers(lang.size))]
        if op < 0.7:
            words[pos] = new
        elif op < 0.85 and len(words) > 1:
            del words[pos]
        else:
            words.insert(pos, new)
    return " ".join(words)


def corpus_path(docs: int, seed: int = 7) -> Path:
    return DATA / f"text-corpus-{docs}-s{seed}.parquet"


def ensure_corpus(docs: int, seed: int = 7) -> Path:
    """The corpus file for (docs, seed), generated once and cached under bench/data/."""
    path = corpus_path(docs, seed)
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        table = build(docs, seed)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, row_group_size=20_000)
        tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    path = ensure_corpus(args.docs, args.seed)
    table = pq.read_table(path)
    sizes = pc.binary_length(pc.cast(table.column("text"), pa.binary()))
    print(f"{path}: {table.num_rows:,} docs, mean {pc.mean(sizes).as_py():.0f} bytes")
    for column in ("lang", "kind", "dup_kind"):
        counts = pc.value_counts(table.column(column)).to_pylist()
        print(column, {c["values"]: c["counts"] for c in counts})


if __name__ == "__main__":
    main()
