import json
import socket
from importlib.metadata import requires

import pyarrow as pa
import pytest
from dataflow_operators.text import langid
from dataflow_operators.text.langid import BatchClassifier, LanguageEvaluator, LanguageFilter, known_languages
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Verdict

BIG = 5 * 1024 * 1024
SENTENCES = {
    "en": [
        "The new library opened last week and it already has a long waiting list.",
        "He forgot his umbrella on the train and got completely wet.",
    ],
    "de": [
        "Die neue Bibliothek wurde letzte Woche eröffnet und hat schon eine lange Warteliste.",
        "Er hat seinen Regenschirm im Zug vergessen und ist völlig nass geworden.",
    ],
    "fr": [
        "La nouvelle bibliothèque a ouvert la semaine dernière et il y a déjà une longue liste d'attente.",
        "Il a oublié son parapluie dans le train et il est rentré trempé.",
    ],
    "es": [
        "La nueva biblioteca abrió la semana pasada y ya tiene una larga lista de espera.",
        "Se olvidó el paraguas en el tren y llegó completamente mojado.",
    ],
    "it": [
        "La nuova biblioteca ha aperto la settimana scorsa e ha già una lunga lista d'attesa.",
        "Ha dimenticato l'ombrello sul treno ed è arrivato completamente bagnato.",
    ],
    "pt": [
        "A nova biblioteca abriu na semana passada e já tem uma longa lista de espera.",
        "Ele esqueceu o guarda-chuva no comboio e chegou completamente molhado.",
    ],
    "nl": [
        "De nieuwe bibliotheek is vorige week geopend en heeft al een lange wachtlijst.",
        "Hij vergat zijn paraplu in de trein en werd helemaal nat.",
    ],
    "zh": ["新图书馆上周开放，现在已经有很多人在排队等候。", "他把雨伞忘在火车上，结果全身都湿透了。"],
    "ja": [
        "新しい図書館は先週開館したばかりですが、もう長い順番待ちがあります。",
        "彼は電車に傘を忘れて、すっかり濡れてしまいました。",
    ],
    "ru": [
        "Новая библиотека открылась на прошлой неделе, и в ней уже длинная очередь.",
        "Он забыл зонт в поезде и промок до нитки.",
    ],
}
TEXTS = [s for sentences in SENTENCES.values() for s in sentences]
LANGS = [lang for lang, sentences in SENTENCES.items() for _ in sentences]


def batch(op, texts, column="text"):
    table = pa.table({column: pa.array(texts, pa.string()), "_id": [str(i) for i in range(len(texts))]})
    return Batch(table, op.input_columns)


def identify(texts, **params):
    op = LanguageEvaluator(LanguageEvaluator.Params(**params))
    result = op.process(batch(op, texts))
    assert set(result) == {"lang", "lang_score"}
    assert result["lang"].type == pa.string() and result["lang_score"].type == pa.float64()
    return result["lang"].to_pylist(), result["lang_score"].to_pylist()


def run_filter(texts, column="text", **params):
    op = LanguageFilter(LanguageFilter.Params(**params), inputs={"text": column})
    verdict = op.process(batch(op, texts, column))
    assert isinstance(verdict, Verdict)
    keep = pa.array(verdict.keep)
    assert keep.type == pa.bool_() and keep.null_count == 0
    reasons = pa.array(verdict.reason, pa.string()).to_pylist()
    assert all((r is None) == k for r, k in zip(reasons, keep.to_pylist(), strict=True))
    return reasons


def test_py3langid_is_a_core_dependency():
    assert any(r.replace(" ", "").startswith("py3langid") for r in requires("dataflow-cli") or [])


def test_ten_languages():
    langs, scores = identify(TEXTS)
    assert langs == LANGS
    assert all(0.5 < s <= 1.0 for s in scores)


def test_null_empty_and_letterless_texts_have_no_language():
    langs, scores = identify([None, "", "   \n", "12345 67.89 !!!", "😀😀", TEXTS[0]])
    assert langs == [None, None, None, None, None, "en"]
    assert scores[:5] == [None] * 5 and 0 < scores[5] <= 1


def test_languages_restrict_the_choice():
    langs, scores = identify(TEXTS, languages=["en", "de"])
    assert set(langs) == {"en", "de"}
    assert langs[:4] == ["en", "en", "de", "de"]
    assert all(0 <= s <= 1 for s in scores)
    assert identify([SENTENCES["nl"][0]], languages=["nl", "af"])[0] == ["nl"]


def test_language_codes_are_checked():
    with pytest.raises(DataflowError, match="unknown language code.*xx"):
        LanguageEvaluator(LanguageEvaluator.Params(languages=["en", "xx"]))
    with pytest.raises(DataflowError, match="unknown language code.*qq"):
        LanguageFilter(LanguageFilter.Params(allowed=["qq"]))
    with pytest.raises(ValidationError, match="2 or 3 letters"):
        LanguageFilter.Params(allowed=["english"])
    with pytest.raises(ValidationError):
        LanguageFilter.Params(allowed=[])
    with pytest.raises(ValidationError):
        LanguageFilter.Params(allowed=["en"], min_score=1.5)
    assert LanguageFilter.Params(allowed=[" EN ", "en"]).allowed == ["en"]
    assert {"en", "de", "zh", "ja", "ru"} <= set(known_languages()) and "zxx" not in known_languages()


def test_only_the_first_max_chars_are_classified():
    text = SENTENCES["en"][0] + " " + " ".join(SENTENCES["de"] * 20)
    assert identify([text], max_chars=70)[0] == ["en"]
    assert identify([text])[0] == ["de"]


def test_huge_row():
    langs, _ = identify([SENTENCES["fr"][0] + " " + "x" * BIG, None])
    assert langs == ["fr", None]


def test_batch_classifier_matches_py3langid():
    texts = TEXTS + [
        "SHOUTED ENGLISH TEXT HERE",
        "Ça va? Très bien.",
        "a",
        "ok 123",
        "Mixed English und Deutsch",
    ]
    for languages in (None, ("de", "en", "fr")):
        identifier = langid._identifier(languages)
        classifier = BatchClassifier(identifier)
        assert classifier._fast
        for got, text in zip(classifier.classify(texts), texts, strict=True):
            if got is None:  # no n-gram of the model in the text
                continue
            lang, score = identifier.classify(text)
            assert got[0] == lang and got[1] == pytest.approx(score, abs=1e-4)


def test_batch_classifier_falls_back_to_the_library(monkeypatch):
    monkeypatch.setattr(BatchClassifier, "_classify_many", lambda self, texts: 1 / 0)
    identifier = langid._identifier(None)
    classifier = BatchClassifier(identifier)
    assert not classifier._fast
    assert classifier.classify(TEXTS[:2]) == [identifier.classify(t) for t in TEXTS[:2]]


def test_the_model_loads_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    identifier = langid._identifier.__wrapped__(None)  # reads the model file again
    assert identifier.classify(SENTENCES["fr"][1])[0] == "fr"


def test_filter_reasons():
    texts = [SENTENCES["en"][0], SENTENCES["de"][0], SENTENCES["ja"][0], None, "", "1234", "hi"]
    assert run_filter(texts, allowed=["en", "de"]) == [
        None,
        None,
        "lang `ja` not allowed",
        "`text` is null",
        "no language",
        "no language",
        "no language",  # too short to hold any n-gram of the model
    ]
    # A single word is identified with a low probability.
    assert identify(["Bonjour"]) == (["fr"], [pytest.approx(0.154, abs=0.01)])
    assert run_filter(["Bonjour", SENTENCES["fr"][1]], allowed=["fr"], min_score=0.5) == [
        "lang score < 0.5",
        None,
    ]
    assert run_filter(["Bonjour"], allowed=["fr"]) == [None]
    assert run_filter([None], column="body", allowed=["en"]) == ["`body` is null"]


# Texts the bundled model labels with an individual language of a macrolanguage.
CANTONESE = "佢哋喺度食緊飯，我哋遲啲先去睇戲啦。"  # yue (in zh)
WU = "伊拉屋里向老早就搬到浦东去了，阿拉老长辰光没碰着伊拉了。"  # wuu (in zh)
NYNORSK = "Eg trur det blir fint vêr i morgon, så vi kan gå på tur."  # nn (in no)


def test_macrolanguage_variants_match_their_macrolanguage():
    assert identify([CANTONESE, WU, NYNORSK, SENTENCES["zh"][0]])[0] == ["yue", "wuu", "nn", "zh"]
    texts = [CANTONESE, WU, SENTENCES["zh"][0], NYNORSK, SENTENCES["ja"][0]]
    assert run_filter(texts, allowed=["zh", "no"]) == [None, None, None, None, "lang `ja` not allowed"]
    # Asked otherwise, the labels must match exactly.
    assert run_filter(texts, allowed=["zh", "no"], match_macrolanguage=False) == [
        "lang `yue` not allowed",
        "lang `wuu` not allowed",
        None,
        "lang `nn` not allowed",
        "lang `ja` not allowed",
    ]
    # Only an individual language matches its macrolanguage, never the other way round.
    assert run_filter([CANTONESE, SENTENCES["zh"][0]], allowed=["yue"]) == [None, "lang `zh` not allowed"]


def test_macrolanguage_codes_are_accepted_only_when_matching():
    # The model never outputs gn or kok, but it does output members of theirs (gug, gom).
    assert LanguageFilter(LanguageFilter.Params(allowed=["gn", "kok", "hbs"]))
    with pytest.raises(DataflowError, match="unknown language code.*gn"):
        LanguageFilter(LanguageFilter.Params(allowed=["gn"], match_macrolanguage=False))
    with pytest.raises(DataflowError, match="unknown language code.*cmn"):
        LanguageFilter(LanguageFilter.Params(allowed=["cmn"]))  # a member the model lacks


def test_filter_schema():
    op = LanguageFilter(LanguageFilter.Params(allowed=["en"]), inputs={"text": "body"})
    assert op.required_columns() == ["body"] and op.written_columns() == []
    assert op.transform_schema({"body": "string"}) == {"body": "string"}
    op = LanguageEvaluator(outputs={"lang": "language"})
    assert op.transform_schema({"text": "string"}) == {
        "text": "string",
        "language": "string",
        "lang_score": "float64",
    }


# --- end to end through the CLI ---


def test_langid_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"text": SENTENCES["en"][0]},
        {"text": SENTENCES["fr"][0]},
        {"text": ""},
        {"text": SENTENCES["de"][1]},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: langs\ninput: {path: in.jsonl}\n"
        "output: {path: out/o.jsonl, internal_columns: true}\nstages:\n"
        "  - {name: detect, op: language_evaluator}\n"
        "  - {name: keep, op: language_filter, params: {allowed: [en, de], min_score: 0.5}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["rows_read"], stats["rows_written"], stats["rows_rejected"]) == (4, 2, 2)
    kept = [json.loads(line) for line in (tmp_path / "out" / "o.jsonl").read_text().splitlines()]
    assert [(r["_id"], r["lang"]) for r in kept] == [("0", "en"), ("3", "de")]
    assert all(0.5 <= r["lang_score"] <= 1 for r in kept)
    rejects = [
        json.loads(line)
        for line in (tmp_path / "out" / "rejects" / "o.rejects.jsonl").read_text().splitlines()
    ]
    assert sorted((r["_id"], r["_reason"]) for r in rejects) == [
        ("1", "lang `fr` not allowed"),
        ("2", "no language"),
    ]


def test_known_languages_match_the_bundled_model():
    # The codes are listed in the module so validation does not load the model; they must be
    # exactly what the model outputs.
    model_labels = {label for label in langid._identifier(None).labels if label != langid.NO_LANGUAGE}
    assert set(langid.MODEL_LANGUAGES) == model_labels
