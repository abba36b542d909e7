"""Synthetic cheat sheets for the benchmarks: N entries with a varied vocabulary.

Words are drawn with Zipf frequencies, as in real text: a few very common, a
long tail of rare ones (made up from syllables, a few thousand of them). The
complaint words agents type sit at ranks 300-2,500, where a domain's nouns and
verbs sit in real text: common, but not in every entry. Each entry is about one
or two complaint words, as a real sheet's titles name many different things.
"""

from __future__ import annotations

import random
import string
from dataclasses import replace

from kb.entry import Entry, serialize_entry, slugify

NOUNS = """order parcel package box item delivery refund charge invoice receipt account
password courier driver address label tracking warehouse sofa table chair lamp shelf mattress
rug curtain kettle blender toaster jacket shoes dress shirt jeans coat bag wallet watch ring
necklace phone charger cable battery screen laptop tablet speaker headphones camera printer
voucher coupon discount promo price subscription membership warranty repair replacement
exchange return manager supervisor agent call email chat queue colour size fit stock backorder
customs duty tax fee card bank payment instalment deposit balance credit points reward gift
basket checkout website app login code pin signature doorstep neighbour locker collection
store branch shipment pallet assembly instructions screw part lid handle zip seam button
""".split()
VERBS = """arrived broke cracked smashed leaked missing lost delayed stuck charged billed refused
cancelled returned swapped shrank faded ripped scratched dented melted stopped jammed wobbles
squeaks overheats disconnects froze crashed expired declined bounced duplicated vanished
ignored overcharged misdelivered peeling rattles buzzes flickers drains""".split()
ADJECTIVES = """late wrong damaged broken faulty cheap expensive rude slow angry upset confused
unhappy tiny huge dirty wet stained noisy heavy loose extra double unclear hidden unexpected
second partial incomplete used opened sticky bent""".split()
SYLLABLES = "ka lo mi ne tu ra shi po ve da zu bri gor tan fel wix mon sar qui dre lum pax ter vol"
CATEGORIES = ["Orders and delivery", "Returns and refunds", "Billing and payments",
              "Difficult conversations", "Policies and information", "Account and login"]
SYNONYMS = "refund, money back, reimbursement\nbroken, damaged, smashed\ncolour, color\n"
COMPLAINT_WORDS = NOUNS + VERBS + ADJECTIVES


def made_up_words(rng: random.Random, count: int) -> list[str]:
    syllables = SYLLABLES.split()
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def typo(rng: random.Random, word: str) -> str:
    """One slip of the finger: a swap, a dropped, doubled or wrong letter."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    how = rng.choice(["swap", "drop", "double", "replace"])
    if how == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if how == "drop":
        return word[:i] + word[i + 1:]
    if how == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1:]


class Corpus:
    def __init__(self, seed: int = 7, size: int = 6000):
        self.rng = rng = random.Random(seed)
        tail = made_up_words(rng, size)
        real = list(COMPLAINT_WORDS)
        rng.shuffle(real)
        words, rest = tail[:300], tail[300:]
        spacing = max(1, 2200 // len(real))
        for word in real:
            words.append(word)
            words.extend(rest[:spacing - 1])
            rest = rest[spacing - 1:]
        words.extend(rest)
        self.words = words
        total, self.cum = 0.0, []
        for rank in range(1, len(words) + 1):
            total += 1.0 / rank
            self.cum.append(total)

    def draw(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=count)

    def sentence(self, words: int) -> str:
        return " ".join(self.draw(words)).capitalize() + "."

    def entry(self, slug: str) -> Entry:
        rng = self.rng
        noun, other = rng.choice(NOUNS), rng.choice(VERBS + ADJECTIVES)
        answer = " ".join(self.sentence(rng.randint(8, 14)) for _ in range(rng.randint(6, 11)))
        return Entry(
            slug=slug,
            title=f"{noun.capitalize()} {other} {' '.join(self.draw(2))}",
            answer=f"Hello {{{{ customer_name }}}}, about order {{{{ order_number }}}}: {answer}\n",
            phone="\n".join(f"- {self.sentence(rng.randint(5, 9))}" for _ in range(3)) + "\n",
            phrasings=tuple(f"my {rng.choice([noun, other])} {' '.join(self.draw(3))}"
                            for _ in range(rng.randint(3, 6))),
            tags=tuple(sorted({noun, rng.choice(ADJECTIVES)})),
            category=rng.choice(CATEGORIES),
            owner="bench",
        )

    def query(self) -> tuple[str, bool]:
        """1-4 complaint words, as agents type them: about one in five with a typo,
        one in five caught halfway through typing (the last word is a prefix)."""
        rng = self.rng
        words = [rng.choice(COMPLAINT_WORDS) for _ in range(rng.randint(1, 4))]
        kind = rng.random()
        if kind < 0.2:
            i = rng.randrange(len(words))
            words[i] = typo(rng, words[i])
        elif kind < 0.4:
            last = words[-1]
            words[-1] = last[:rng.randint(min(3, len(last)), max(3, len(last) - 1))]
            return " ".join(words), True
        return " ".join(words), False


def build_files(corpus: Corpus, count: int) -> dict[str, str]:
    """`count` entry files plus the shared parts, ready for ContentStore.create."""
    files: dict[str, str] = {}
    for n in range(count):
        entry = corpus.entry("")
        slug = f"{slugify(entry.title)[:50]}-{n}"
        files[f"{slug}.md"] = serialize_entry(replace(entry, slug=slug))
    files["_sheet/synonyms.txt"] = SYNONYMS
    files["_sheet/greeting.md"] = "Hello {{ customer_name }},\n"
    files["_sheet/closing.md"] = "Kind regards,\n\n{{ agent_name }}\n"
    files["_sheet/phone_opening.md"] = "Thanks for calling, this is {{ agent_name }}.\n"
    return files
