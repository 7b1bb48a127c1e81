"""Bulk catalogue parsing: bad rows reported by line, good rows kept."""
from consultation_routing.domain.catalogue import parse_csv, parse_jsonl
from consultation_routing.domain.model import Sku


def test_csv_reports_bad_lines_and_keeps_good_rows():
    text = ("sku,manufacturer_id,category\n"
            "a,m-1,Phones\n"
            ",m-1,phones\n"         # line 3: no sku
            "b,m-2,\n"              # line 4: no category
            "c,m-1,phones,extra\n"  # line 5: too many fields
            "d,m-2,apparel\n"
            f"{'x' * 101},m-1,phones\n")  # line 7: too long
    good, bad = parse_csv(text)
    assert good == [Sku("a", "m-1", "phones"), Sku("d", "m-2", "apparel")]
    assert [(e.line, e.error) for e in bad] == [
        (3, "sku is missing or empty"), (4, "category is missing or empty"), (5, "too many fields"),
        (7, "sku is longer than 100 characters"),
    ]


def test_csv_without_the_header_is_one_error():
    good, bad = parse_csv("a,m-1,phones\n")
    assert good == [] and bad[0].line == 1 and "header" in bad[0].error


def test_csv_last_row_of_a_sku_wins():
    good, _ = parse_csv("sku,manufacturer_id,category\na,m-1,phones\na,m-2,apparel\n")
    assert good == [Sku("a", "m-2", "apparel")]


def test_jsonl_reports_bad_lines():
    text = ('{"sku": "a", "manufacturer_id": "m-1", "category": "phones"}\n'
            'not json\n'
            '\n'
            '[1, 2]\n'
            '{"sku": "b", "manufacturer_id": 7, "category": "phones"}\n'
            '{"sku": "c", "manufacturer_id": "m-1", "category": "phones"}\n')
    good, bad = parse_jsonl(text)
    assert [s.sku for s in good] == ["a", "c"]
    assert [(e.line, e.error) for e in bad] == [
        (2, "not valid JSON"), (4, "not a JSON object"), (5, "manufacturer_id is missing or empty")]
