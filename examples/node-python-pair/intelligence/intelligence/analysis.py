"""Lexicon-based sentiment and keyword extraction: small, deterministic and dependency-free."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# fmt: off
POSITIVE = frozenset({
    "good", "great", "excellent", "love", "like", "happy", "fast", "easy", "helpful", "reliable",
    "clear", "nice", "thanks",
})
NEGATIVE = frozenset({
    "bad", "poor", "terrible", "hate", "slow", "broken", "hard", "confusing", "bug", "error",
    "fail", "crash",
})
NEGATORS = frozenset({"not", "no", "never", "don't", "isn't", "wasn't", "can't"})
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i",
    "in", "is", "it", "its", "of", "on", "or", "so", "that", "the", "this", "to", "was", "we",
    "were", "with", "you", "your", "not", "no",
})
# fmt: on


def analyze(text: str, keywords: int = 5) -> dict[str, Any]:
    """Sentiment score in [-1, 1], its label, and the ``keywords`` most frequent content words.

    Each positive word counts +1 and each negative word -1, flipped when the word before it
    negates ("not good"); the score is that sum over the number of sentiment words.
    """
    words = WORD.findall(text.lower())
    total = hits = 0
    for i, word in enumerate(words):
        polarity = (word in POSITIVE) - (word in NEGATIVE)
        if polarity:
            hits += 1
            total += -polarity if i and words[i - 1] in NEGATORS else polarity
    score = round(total / hits, 3) if hits else 0.0
    label = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
    content = Counter(w for w in words if w not in STOP_WORDS and len(w) > 2)
    return {"sentiment": score, "label": label, "keywords": [w for w, _ in content.most_common(keywords)]}
