"""Full-text search over the sheet. The only package that imports whoosh.

Agents type the customer's words, so a query is taken apart by hand rather than by a
query parser: every word is stemmed, words that are no word are corrected towards the
words the sheet uses ("did you mean"), the team's synonym groups and shorthand add
their alternatives, the last word counts as a prefix while typing, and title and
customer phrasings weigh more than the body. Nothing here raises on odd input: a
query is only ever a bag of words. One module per idea:

- `analysis`: how text becomes index terms, and what an entry is indexed as;
- `index`: the index itself: opening, catching up, rebuilding, answering a search;
- `query`: reading a query: stems, synonyms, the half-typed last word;
- `spelling`: which typed words are typos, and what they become;
- `scoring`: BM25F from whoosh's posting lists, and what is kept per index version;
- `fusion`: the meaning layer's likeness added to the words' scores;
- `results`: results, and which are confident;
- `snippets`: the phrasing or sentence that matched, highlighted;
- `listing`: browsing, facets and due dates, and the scan used while rebuilding.
"""

from kb.search.analysis import _stem, _words, stems
from kb.search.index import SCHEMA_VERSION, SearchIndex
from kb.search.results import Hit, Results, mark_confident
from kb.search.snippets import best_fragment, highlight

__all__ = ["SCHEMA_VERSION", "Hit", "Results", "SearchIndex", "_stem", "_words",
           "best_fragment", "highlight", "mark_confident", "stems"]
