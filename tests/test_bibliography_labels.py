import sys
from pathlib import Path

from pybtex.database import Entry, Person

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
import author_year_bibliography as bibliography  # noqa: E402


def _entry(year, *authors):
    entry = Entry("article", fields={"title": "A title", "year": year})
    entry.persons["author"] = [Person(name) for name in authors]
    return entry


def test_labels_by_author_count():
    entries = [
        _entry("2011", "Efron, Bradley"),
        _entry("2013", "Sz{\\'e}kely, G{\\'a}bor", "Rizzo, Maria"),
        _entry("2022", "Karras, Tero", "Aittala, Miika", "Aila, Timo"),
    ]
    labels = list(bibliography.AuthorYearLabels().format_labels(entries))
    assert labels[0] == "Efron, 2011"
    assert labels[1] == "Székely and Rizzo, 2013"
    assert labels[2] == "Karras et al., 2022"


def test_labels_same_authors_and_year_get_letters():
    entries = [_entry("2026", "Zhang, Zekai", "Li, Xiao", "Qu, Qing"), _entry("2026", "Zhang, Zekai", "Wu, Meng", "Tao, Molei")]
    labels = list(bibliography.AuthorYearLabels().format_labels(entries))
    assert labels == ["Zhang et al., 2026a", "Zhang et al., 2026b"]
