"""Label the reference list by author and year, matching the author-year citations in the text.

sphinxcontrib-bibtex formats the list with a pybtex style, whose label style decides the
bracketed label. The pybtex styles shipped with it label by number or by author initials, so this
extension registers a style ``author_year`` that labels an entry "Efron, 2011", "Karras et al., 2022".
"""

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsortedStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitleSorting


def _surname(person):
    """Return a person's last names as plain text, with LaTeX accents and braces resolved."""
    return " ".join(name.render_as("text") for name in person.rich_last_names)


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Surname, year", "A and B, year" or "A et al., year"."""

    def format_labels(self, sorted_entries):
        labels = [self._label(entry) for entry in sorted_entries]
        seen = {}
        for label in labels:
            if labels.count(label) == 1:
                yield label
            else:  # two works of the same authors and year become "2026a", "2026b"
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]

    def _label(self, entry):
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_surname(person) for person in people]
        if not names:
            authors = entry.fields.get("title", entry.key)
        elif len(names) == 1:
            authors = names[0]
        elif len(names) == 2:
            authors = f"{names[0]} and {names[1]}"
        else:
            authors = f"{names[0]} et al."
        return f"{authors}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsortedStyle):
    """The unsorted pybtex style with author-year labels, sorted by author, year and title."""

    default_label_style = AuthorYearLabels
    default_sorting_style = AuthorYearTitleSorting


register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
