"""The claims ledger: rules compute verdicts from measurements, chapters glue every claim under
predictable keys, and the ledger page (book/claims.md) shows exactly the claims the chapters record.

The fast tests read the sources (notebooks and Markdown); the slow ones read the built book and
build a tiny book to show that a misspelled ledger key fails the build instead of rendering empty.
"""
from __future__ import annotations

import ast
import json
import math
import operator
import re
import subprocess
import sys
from pathlib import Path

import markdown_it
import nbformat
import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import strategies as st

from resbook import claims
from resbook.claims import (COMMON_ACCOUNT, FIELDS, Claim, Comparison, Finding, Rule, Verdict, above,
                            at_least, at_most, below, holds_if, holds_where, judge, record)

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
LEDGER = BOOK / "claims.md"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
ALLOWED = {"holds", "holds with a condition", "does not hold in this setting"}

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def a_claim(rule: Rule | None = None, **changes) -> Claim:
    fields = dict(id="deeper_is_worse", statement="A deeper net trains worse.", source="he2016deep",
                  rule=rule or holds_if("ratio", at_least(2)))
    return Claim(**(fields | changes))


# --- verdicts and findings -------------------------------------------------------------------------

def test_a_verdict_is_one_of_exactly_three_values():
    assert {v.value for v in Verdict} == ALLOWED


@pytest.mark.parametrize("typed", ["probably holds", "Holds", "does not hold", ""])
def test_a_verdict_outside_the_three_values_is_an_error_that_lists_them(typed):
    for make in (Verdict, Finding):
        with pytest.raises(ValueError, match="verdict must be one of 'holds', 'holds with a condition'"):
            make(typed)


def test_a_verdict_that_is_not_text_is_a_type_error():
    with pytest.raises(TypeError, match="verdict"):
        Finding(True)


def test_holds_with_a_condition_must_name_the_condition_and_only_it_may():
    with pytest.raises(TypeError, match="condition"):
        Finding(Verdict.HOLDS_WITH_CONDITION)
    with pytest.raises(ValueError, match="condition"):
        Finding(Verdict.HOLDS_WITH_CONDITION, "  ")
    with pytest.raises(ValueError, match="condition is named only for"):
        Finding(Verdict.HOLDS, "with layer norm")
    assert str(Finding("holds with a condition", "only with layer norm")) == \
        "holds with a condition: only with layer norm"


# --- comparisons and rules -------------------------------------------------------------------------

@given(value=finite, threshold=finite)
def test_comparisons_agree_with_pythons_operators(value, threshold):
    for make, python in ((at_least, operator.ge), (at_most, operator.le), (above, operator.gt),
                         (below, operator.lt)):
        assert make(threshold)(value) == python(value, threshold)


def test_a_comparison_reads_as_its_symbol_and_threshold():
    assert [c(0.1).text for c in (at_least, at_most, above, below)] == ["≥ 0.1", "≤ 0.1", "> 0.1", "< 0.1"]


@pytest.mark.parametrize("threshold", [math.nan, math.inf, "2", True])
def test_a_comparison_needs_a_finite_number(threshold):
    with pytest.raises((TypeError, ValueError), match="threshold"):
        at_least(threshold)


def test_a_comparison_refuses_an_unknown_operator():
    with pytest.raises(ValueError, match="operator"):
        Comparison("=>", 1)


@given(value=finite, threshold=finite)
def test_holds_if_holds_exactly_when_the_evidence_passes(value, threshold):
    finding = holds_if("ratio", at_least(threshold)).apply({"ratio": value})
    assert finding == Finding(Verdict.HOLDS if value >= threshold else Verdict.DOES_NOT_HOLD)


def test_a_rules_text_names_its_label_and_threshold():
    assert holds_if("deepest ÷ shallowest loss", at_least(2)).text == \
        "holds if “deepest ÷ shallowest loss” ≥ 2; otherwise does not hold in this setting"


@given(passes=st.lists(st.booleans(), min_size=2, max_size=6))
def test_holds_where_names_exactly_the_settings_that_pass(passes):
    settings = [f"at {10 * (i + 1)} layers" for i in range(len(passes))]
    rule = holds_where("residual ÷ plain", below(1), settings)
    finding = rule.apply({label: 0.5 if ok else 2.0 for label, ok in zip(rule.reads, passes)})
    passing = [s for s, ok in zip(settings, passes) if ok]
    if all(passes):
        assert finding == Finding(Verdict.HOLDS)
    elif not passing:
        assert finding == Finding(Verdict.DOES_NOT_HOLD)
    else:
        assert finding.verdict is Verdict.HOLDS_WITH_CONDITION
        named = re.split(r", | and ", finding.condition.removeprefix("only "))
        assert named == passing


def test_holds_where_reads_one_label_per_setting_and_says_so_in_its_text():
    rule = holds_where("first ÷ last gradient", below(0.1), ["with batch norm", "with layer norm"])
    assert rule.reads == ("first ÷ last gradient with batch norm", "first ÷ last gradient with layer norm")
    assert "“first ÷ last gradient” < 0.1 with batch norm and with layer norm" in rule.text


@pytest.mark.parametrize("settings", [["only one"], "with batch norm", ["a", "a"], [], ["a", ""]])
def test_holds_where_needs_two_or_more_distinct_settings(settings):
    with pytest.raises(ValueError, match="settings"):
        holds_where("ratio", below(1), settings)


def test_a_rule_needs_a_comparison_not_a_bare_number():
    with pytest.raises(TypeError, match="comparison"):
        holds_if("ratio", 2)


def test_a_rule_refuses_evidence_without_a_label_it_reads():
    with pytest.raises(ValueError, match="evidence lacks \\['ratio'\\]"):
        holds_if("ratio", at_least(2)).apply({"ratoi": 3.0})


def test_a_hand_written_rule_must_return_a_finding_not_a_typed_verdict():
    typed = Rule("holds, says the author", lambda evidence: "holds")
    with pytest.raises(TypeError, match="must return a Finding"):
        typed.apply({"x": 1.0})


def test_a_hand_written_rule_can_name_a_condition():
    rule = Rule("holds if x > 0, with a condition if only y > 0 too",
                lambda e: Finding(Verdict.HOLDS_WITH_CONDITION, "only with y") if e["y"] > 0 else
                Finding(Verdict.HOLDS), reads=("x", "y"))
    assert str(judge(a_claim(rule), {"x": 1, "y": 1}).finding) == "holds with a condition: only with y"


# --- claims and their evidence ----------------------------------------------------------------------

@pytest.mark.parametrize("claim_id", ["Deeper", "1st", "deeper-worse", "deeper__worse", "deeper_", "", 5,
                                      "claim " * 3, "x" * 61])
def test_a_claim_id_must_be_lower_case_snake_case(claim_id):
    with pytest.raises(ValueError, match="id must be lower-case snake_case"):
        a_claim(id=claim_id)


@pytest.mark.parametrize("statement", ["A deeper net trains worse", "Two lines.\nSecond.", " ", "x" * 301 + "."])
def test_a_statement_is_one_line_ending_in_a_full_stop(statement):
    with pytest.raises(ValueError, match="statement"):
        a_claim(statement=statement)


@pytest.mark.parametrize("source", ["he 2016", "", "a common account", "[he2016deep]"])
def test_a_source_is_a_bibtex_key_or_the_common_account(source):
    with pytest.raises(ValueError, match="source"):
        a_claim(source=source)


def test_a_claim_needs_a_rule_object():
    with pytest.raises(TypeError, match="rule must be a Rule"):
        a_claim(rule="holds if ratio >= 2")
    assert a_claim(source=COMMON_ACCOUNT).source == COMMON_ACCOUNT


@pytest.mark.parametrize("evidence, error", [
    ({}, ValueError), ([("ratio", 3.0)], ValueError), ({"ratio": math.nan}, TypeError),
    ({"ratio": True}, TypeError), ({"ratio": "3"}, TypeError), ({"ratio": 3.0, "a; b": 1.0}, ValueError),
    ({"ratio": 3.0, "": 1.0}, ValueError), ({"ratio": 3.0, 7: 1.0}, TypeError)])
def test_evidence_is_a_mapping_of_labels_to_real_numbers(evidence, error):
    with pytest.raises(error, match="evidence"):
        judge(a_claim(), evidence)


def test_evidence_takes_numpy_and_torch_scalars_and_infinity():
    judgement = judge(a_claim(), {"ratio": np.float32(3.0), "loss": torch.tensor(0.5), "diverged": math.inf})
    assert judgement.evidence == {"ratio": 3.0, "loss": 0.5, "diverged": math.inf}
    assert judgement.verdict is Verdict.HOLDS


def test_judging_needs_a_claim():
    with pytest.raises(TypeError, match="claim must be a Claim"):
        judge("deeper_is_worse", {"ratio": 3.0})


# --- what a chapter records ------------------------------------------------------------------------

def test_recording_glues_every_field_under_claim_id_keys(monkeypatch, capsys):
    glued = {}
    monkeypatch.setattr(claims, "glue", lambda name, value: glued.__setitem__(name, value))
    record(a_claim(), {"shallow loss": 0.0123, "ratio": 249.4})
    assert list(glued) == [f"claim_deeper_is_worse_{field}" for field in FIELDS]
    assert glued["claim_deeper_is_worse_verdict"] == "holds"
    assert glued["claim_deeper_is_worse_evidence"] == "shallow loss: 0.0123; ratio: 249"
    assert glued["claim_deeper_is_worse_source"] == "he2016deep"
    assert glued["claim_deeper_is_worse_rule"] == holds_if("ratio", at_least(2)).text


def test_recording_outside_jupyter_prints_the_verdict_and_the_evidence(capsys):
    record(a_claim(), {"ratio": 1.5})  # twice: myst-nb's glue starts a bare IPython shell the first time
    capsys.readouterr()
    record(a_claim(), {"ratio": 1.5})
    printed = capsys.readouterr().out
    assert "Verdict: does not hold in this setting" in printed and "ratio: 1.5" in printed


def test_recording_in_a_kernel_displays_the_judgement_as_markdown(monkeypatch):
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: type("KernelShell", (), {"kernel": object()})())
    monkeypatch.setattr(IPython.display, "display", shown.append)
    judgement = record(a_claim(), {"ratio": 3.0})
    assert shown == [judgement] and "**Verdict: holds**" in judgement._repr_markdown_()


def test_the_notebook_display_shows_every_text_as_written():
    rule = holds_where("loss_*ratio*", below(1), ["at <8> layers", "with $x$ | [norm]"])
    judgement = judge(a_claim(rule, statement="A *net* with `code` and $math$ holds_up."),
                      dict(zip(rule.reads, [0.5, 2.0])))
    html = markdown_it.MarkdownIt("commonmark").render(judgement._repr_markdown_())
    text = BeautifulSoup(html, "html.parser").get_text()
    for shown in ("A *net* with `code` and $math$ holds_up.", rule.text, judgement.evidence_text(),
                  "Verdict: holds with a condition: only at <8> layers"):
        assert shown in text, shown


@pytest.mark.parametrize("value, shown", [(0.012345, "0.0123"), (249.4, "249"), (9615.3, "9.62e+03"),
                                          (math.inf, "inf"), (3, "3")])
def test_numbers_are_shown_to_three_significant_digits(value, shown):
    assert claims.format_number(value) == shown


# --- the ledger page against the chapters (read from the sources) ----------------------------------

GLUE_REF = re.compile(r"\{glue:text\}`(?P<doc>[\w./-]+\.ipynb)::claim_(?P<id>[a-z0-9_]+?)_(?P<field>"
                      + "|".join(FIELDS) + r"):s`")


def chapter_claims() -> dict[tuple[str, str], dict[str, str]]:
    """(notebook, id) -> {"source": ..., "labels": ...} for every Claim(...) written in a chapter's code."""
    found = {}
    for path in CHAPTERS:
        notebook = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        code = re.sub(r"^(\s*)[%!].*$", r"\1pass", code, flags=re.M)  # IPython magics are not Python
        markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        for call in ast.walk(ast.parse(code)):
            if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", None)) == "Claim":
                arguments = dict(zip(("id", "statement", "source"), call.args))
                arguments |= {k.arg: k.value for k in call.keywords}
                literal = {k: ast.literal_eval(v) for k, v in arguments.items() if k in ("id", "source")}
                found[path.name, literal["id"]] = {"source": literal["source"],
                                                   "labels": set(re.findall(r"^\((\S+)\)=$", markdown, re.M))}
    return found


def ledger_cards() -> list[str]:
    """The ledger's cards, each as its Markdown source."""
    return re.findall(r"^:::\{card\}.*?^:::$", LEDGER.read_text(), re.M | re.S)


def card_claim(card: str) -> tuple[str, str]:
    """The (notebook, id) whose keys a card pastes; every reference in a card must name the same claim."""
    references = {(m["doc"], m["id"]) for m in GLUE_REF.finditer(card)}
    assert len(references) == 1, f"a card pastes one claim, this one pastes {references}:\n{card}"
    return references.pop()


def test_the_ledger_pastes_only_well_formed_claim_keys():
    # myst-nb reads `doc::key` without a trailing `:format` as key "doc:" with format "key": always end in `:s`.
    text = LEDGER.read_text()
    all_references = re.findall(r"\{glue[^}]*\}`[^`]*`", text)
    malformed = [r for r in all_references if not GLUE_REF.fullmatch(r)]
    assert all_references and not malformed, malformed


def test_every_claim_a_chapter_records_has_a_card_on_the_ledger():
    on_ledger = {card_claim(card) for card in ledger_cards()}
    missing = set(chapter_claims()) - on_ledger
    assert chapter_claims() and not missing, f"claims recorded by a chapter but missing on {LEDGER.name}: {missing}"


def test_every_card_on_the_ledger_pastes_a_claim_a_chapter_records_with_all_its_fields():
    recorded = chapter_claims()
    for card in ledger_cards():
        notebook, claim_id = card_claim(card)
        assert (notebook, claim_id) in recorded, f"{claim_id!r} is not recorded by {notebook}: a misspelled id?"
        fields = [m["field"] for m in GLUE_REF.finditer(card)]
        # The source is cited (a link to the references), not pasted: the next test checks it.
        assert sorted(fields) == sorted(set(FIELDS) - {"source"}), f"card {claim_id!r} pastes {fields}"


def test_every_card_cites_the_source_its_chapter_names_and_links_to_its_chapter():
    recorded = chapter_claims()
    bibliography = (BOOK / "references.bib").read_text()
    for card in ledger_cards():
        claim = recorded[card_claim(card)]
        source = re.search(r"\*\*Source:\*\* (.*)", card)[1]
        if claim["source"] == COMMON_ACCOUNT:
            assert source == COMMON_ACCOUNT
        else:
            assert source == f"{{cite:t}}`{claim['source']}`"
            assert re.search(rf"@\w+\{{{re.escape(claim['source'])},", bibliography), claim["source"]
        link = re.search(r"\*\*Tested in:\*\* \{ref\}`[^<`]+<([^>]+)>`", card)
        assert link and link[1] in claim["labels"], f"card links to {link and link[1]}, chapter has {claim['labels']}"


def test_the_ledger_comes_after_the_chapters_in_the_table_of_contents():
    files = re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())
    assert files.index("book/claims") > max(files.index(f"book/{c.stem}") for c in CHAPTERS)


# --- the built book ----------------------------------------------------------------------------------

def glued_by_chapters(built_book: Path) -> dict[str, dict[str, str]]:
    """notebook name -> {key: text} of the claim keys each chapter glued in the build."""
    glued = {}
    for path in (built_book.parent / "jupyter_execute" / "book").glob("*.glue.json"):
        data = json.loads(path.read_text())
        glued[path.name.removesuffix(".glue.json") + ".ipynb"] = {
            key: ast.literal_eval(value["data"]["text/plain"]) for key, value in data.items()
            if key.startswith("claim_")}
    return glued


@pytest.mark.slow
def test_every_claim_a_chapter_glued_shows_on_the_ledger_page_with_its_verdict_and_numbers(built_book):
    page = BeautifulSoup((built_book / "book" / "claims.html").read_text(), "html.parser")
    cards = page.select("div.claim-card")
    shown = {plain_quotes(" ".join(card.get_text(" ", strip=True).split())) for card in cards}
    glued = glued_by_chapters(built_book)
    verdict_keys = [(nb, key) for nb, keys in glued.items() for key in keys if key.endswith("_verdict")]
    assert verdict_keys and len(cards) == len(verdict_keys)
    for notebook, key in verdict_keys:
        prefix = key.removesuffix("verdict")
        values = {field: plain_quotes(glued[notebook][prefix + field]) for field in FIELDS}
        assert values["verdict"].split(":")[0] in ALLOWED
        card = next((text for text in shown if values["statement"] in text), None)
        assert card, f"no card shows {values['statement']!r}"
        for field in ("verdict", "rule", "evidence"):
            assert f"{field.capitalize()}: {values[field]}" in card, (field, card)
        assert re.findall(r"\d+(?:\.\d+)?(?:e[+-]\d+)?", values["evidence"])  # the numbers themselves


@pytest.mark.slow
def test_the_ledger_page_links_every_card_to_its_chapter_and_source(built_book):
    page = BeautifulSoup((built_book / "book" / "claims.html").read_text(), "html.parser")
    for card in page.select("div.claim-card"):
        hrefs = [a["href"] for a in card.select("a[href]")]
        assert any(re.fullmatch(r"\d\d_\w+\.html#[\w-]+", h) for h in hrefs), hrefs
        anchor = next(h for h in hrefs if "#" in h and not h.startswith("references"))
        chapter = BeautifulSoup((built_book / "book" / anchor.split("#")[0]).read_text(), "html.parser")
        assert chapter.find(id=anchor.split("#")[1]), f"{anchor} leads nowhere"


def plain_quotes(text: str) -> str:
    """The page's text with Sphinx's smart quotes (’ ‘ “ ”) back as the ASCII quotes the chapter glued."""
    return text.translate(str.maketrans("’‘“”", "''\"\""))


@pytest.mark.slow
def test_the_chapter_shows_each_recorded_verdict_where_it_records_it(built_book):
    for notebook, keys in glued_by_chapters(built_book).items():
        page = (built_book / "book" / notebook.replace(".ipynb", ".html")).read_text()
        text = plain_quotes(" ".join(BeautifulSoup(page, "html.parser").get_text(" ").split()))
        for key, value in keys.items():
            if key.endswith(("_verdict", "_evidence")):
                assert plain_quotes(value) in text, (key, value)


TINY_CHAPTER = '''from resbook.claims import Claim, at_least, holds_if, record
record(Claim("one_is_enough", "One is at least one.", source="common account",
             rule=holds_if("one", at_least(1))), {"one": 1});'''


@pytest.mark.slow
def test_a_misspelled_ledger_key_fails_the_build_and_a_right_one_shows_the_verdict(tmp_path):
    (tmp_path / "_config.yml").write_text("title: tiny\nexecute:\n  execute_notebooks: force\n"
                                          "sphinx:\n  config:\n    nb_execution_raise_on_error: true\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n"
                                       "  - file: ledger\n")
    (tmp_path / "intro.md").write_text("# Tiny\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter"),
                                               nbformat.v4.new_code_cell(TINY_CHAPTER)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "chapter.ipynb")
    (tmp_path / "ledger.md").write_text(
        "# Ledger\n\nRight: {glue:text}`chapter.ipynb::claim_one_is_enough_verdict:s`\n\n"
        "Misspelled: {glue:text}`chapter.ipynb::claim_one_is_enuogh_verdict:s`\n")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run([str(jupyter_book), "build", str(tmp_path), "--all", "-W", "--keep-going"],
                            capture_output=True, text=True, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "'claim_one_is_enuogh_verdict' not found" in output, output[-3000:]
    page = BeautifulSoup((tmp_path / "_build" / "html" / "ledger.html").read_text(), "html.parser")
    assert "Right: holds" in page.get_text()
