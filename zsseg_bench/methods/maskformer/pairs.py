"""Partner images for SimFormer's cross-image stage, by the official "Deconf" rule (`compute_pairs.py`
and the pair mapper), from image-level labels only (`classes` bool [N, K]: base classes from the
masks, novel classes from the image-level labels).

For image i with novel classes N_i:
* per novel class n of N_i, the images j whose novel classes meet N_i in exactly {n} (at most 500);
* if |N_i| >= 2, "novel-common" images: every j for which the intersection is not a single class
  (the official loop adds them whether they share a novel class or not; at most 50);
* "base-common" images: those sharing at least one base class (at most 50).
Drawing a partner: with two or more novel classes, one of them is chosen (with probability
`min_prob` the one with the fewest candidates, an empty list counting as 500, else uniformly) and
a partner drawn from its list; otherwise from the novel-common list, else the base-common list,
when it has at least two entries; the image itself when nothing is left. The caps keep a random
subset (the official code drops a random element whenever a set outgrows its cap).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PairRule", "DECONF_CAP", "COMMON_CAP"]

DECONF_CAP = 500
COMMON_CAP = 50


def _cap(candidates: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    return candidates if len(candidates) <= cap else rng.choice(candidates, cap, replace=False)


class PairRule:
    def __init__(self, classes: np.ndarray, novel: np.ndarray, min_prob: float = 0.01):
        self.novel_sets = classes[:, novel]
        self.base_sets = classes[:, ~novel]
        self.min_prob = min_prob

    def candidates(self, i: int, rng: np.random.Generator) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
        """(novel class -> deconf list, novel-common list, base-common list) of image i."""
        inter = self.novel_sets & self.novel_sets[i]
        count = inter.sum(1)
        own = np.flatnonzero(self.novel_sets[i])
        deconf = {int(n): _cap(np.flatnonzero((count == 1) & inter[:, n]), DECONF_CAP, rng) for n in own}
        novel_common = _cap(np.flatnonzero(count != 1), COMMON_CAP, rng) if len(own) >= 2 else np.zeros(0, int)
        base_common = _cap(np.flatnonzero((self.base_sets & self.base_sets[i]).any(1)), COMMON_CAP, rng)
        return deconf, novel_common, base_common

    def partner(self, i: int, rng: np.random.Generator) -> int:
        deconf, novel_common, base_common = self.candidates(i, rng)
        if len(deconf) >= 2:
            keys = list(deconf)
            counts = np.array([len(deconf[k]) or DECONF_CAP for k in keys])
            key = keys[int(counts.argmin())] if rng.random() < self.min_prob else keys[int(rng.integers(len(keys)))]
            pool = deconf[key]
        elif len(novel_common) >= 2:
            pool = novel_common
        elif len(base_common) >= 2:
            pool = base_common
        else:
            return i
        if len(pool) >= 2:
            pool = pool[pool != i]
        return int(rng.choice(pool)) if len(pool) else i
