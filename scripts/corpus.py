"""Synthetic cheat sheets for benchmarks: N entries with a varied vocabulary.

Real complaint words give the queries something realistic to hit; made-up words
from syllables give the index the thousands of distinct terms a large sheet has.
"""

from __future__ import annotations

import random

NOUNS = """order parcel package box item delivery refund charge invoice receipt account password
courier driver address label tracking warehouse sofa table chair lamp shelf mattress rug curtain
kettle blender toaster jacket shoes dress shirt jeans coat bag wallet watch ring necklace phone
charger cable battery screen laptop tablet speaker headphones camera printer voucher coupon
discount promo price subscription membership warranty repair replacement exchange return
manager supervisor agent call email chat hold queue colour size fit stock backorder customs
duty tax fee card bank payment instalment deposit balance credit points reward gift""".split()
VERBS = """arrived broke cracked smashed leaked missing lost delayed stuck charged billed
refused cancelled returned swapped shrank faded ripped scratched dented melted stopped jammed
wobbles squeaks overheats disconnects froze crashed""".split()
ADJECTIVES = """late wrong damaged broken faulty cheap expensive rude slow angry upset confused
unhappy tiny huge dirty wet stained noisy heavy loose missing extra double""".split()
SYLLABLES = "ka lo mi ne tu ra shi po ve da zu bri gor tan fel wix mon sar qui dre".split()
CATEGORIES = ["Orders and delivery", "Returns and refunds", "Billing and payments",
              "Difficult conversations", "Policies and information", "Feedback and praise"]


def made_up_words(rng: random.Random, count: int) -> list[str]:
    words = set()
    while len(words) < count:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Vocabulary:
    """Words drawn with Zipf frequencies, as in real text: a few very common, a
    long tail of rare ones. The complaint words sit at ranks 300-2,500, where a
    domain's nouns and verbs sit in real text: common, but not in every entry."""

    def __init__(self, rng: random.Random, size: int = 6000):
        tail = made_up_words(rng, size)
        real = NOUNS + VERBS + ADJECTIVES
        rng.shuffle(real)
        words = tail[:300]
        spacing = max(1, 2200 // len(real))
        rest = tail[300:]
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
        self.rng = rng

    def draw(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=count)


def sentence(vocab: Vocabulary, words: int) -> str:
    return " ".join(vocab.draw(words)).capitalize() + "."


def entry_file(rng: random.Random, n: int, vocab: Vocabulary) -> tuple[str, str]:
    # Each entry is about one or two complaint words; the rest of its words come
    # from the long tail, as a real sheet's titles name many different products.
    noun, other = rng.choice(NOUNS), rng.choice(VERBS + ADJECTIVES)
    title = f"{noun.capitalize()} {other} {' '.join(vocab.draw(2))} {n}"
    phrasings = [f"my {rng.choice([noun, other])} {' '.join(vocab.draw(3))}"
                 for _ in range(rng.randint(3, 6))]
    answer = " ".join(sentence(vocab, rng.randint(8, 14)) for _ in range(rng.randint(6, 11)))
    phone = "\n".join(f"- {sentence(vocab, rng.randint(5, 9))}" for _ in range(3))
    tags = sorted({rng.choice(NOUNS), rng.choice(ADJECTIVES)})
    text = (
        "---\n"
        f"title: {title}\n"
        "phrasings:\n" + "".join(f"  - {p}\n" for p in phrasings) +
        f"tags: [{', '.join(tags)}]\n"
        f"category: {rng.choice(CATEGORIES)}\n"
        "status: published\nowner: bench\n"
        f"last_reviewed: 2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}\n"
        "review_every_days: 180\n"
        "---\n"
        f"Dear {{{{ customer_name }}}}, about order {{{{ order_number }}}}: {answer}\n\n"
        "## On the phone\n\n" + phone + "\n"
    )
    return f"bench-{n:05d}.md", text


def generate(count: int, seed: int = 7) -> dict[str, str]:
    """`count` entry files, plus the shared parts from the starter sheet's shape."""
    rng = random.Random(seed)
    vocab = Vocabulary(rng)
    files = dict(entry_file(rng, n, vocab) for n in range(count))
    files["_sheet/greeting.md"] = "Hello {{ customer_name }},\n"
    files["_sheet/closing.md"] = "Kind regards,\n\n{{ agent_name }}\n"
    files["_sheet/phone_opening.md"] = "Thanks for calling, this is {{ agent_name }}.\n"
    files["_sheet/synonyms.txt"] = "refund, money back\nbroken, damaged, smashed\n"
    files["_sheet/placeholders.yml"] = "customer_name: {label: Customer name}\n"
    return files


def queries(count: int, seed: int = 11) -> list[str]:
    """What agents type: 1-4 words, some with a typo."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        pools = [NOUNS, VERBS, ADJECTIVES]
        words = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:
            w = words[0]
            i = rng.randrange(len(w))
            words[0] = w[:i] + w[i + 1:] if len(w) > 4 else w
        out.append(" ".join(words))
    return out
