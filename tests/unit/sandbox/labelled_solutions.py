"""A labelled set for test-based verification, written for this project: problems, their tests,
and solutions labelled by whether a correct verifier must accept them.

Wrong solutions are subtly wrong in the ways model-written code usually is: off by one, broken
on empty input or on negatives, mutating their input, returning the wrong type, too slow for
the time limit, or right only on the first test. Every problem also has correct solutions
written differently (so a false reject would show).
"""

from __future__ import annotations

PROBLEMS: dict[str, dict] = {}


def problem(name: str, tests: str, *solutions: tuple[str, bool, str]) -> None:
    PROBLEMS[name] = {"tests": tests, "solutions": list(solutions)}


problem(
    "second_largest",
    """
assert second_largest([3, 1, 4, 1, 5]) == 4
assert second_largest([2, 2, 2]) is None
assert second_largest([]) is None
assert second_largest([-5, -1, -3]) == -3
assert second_largest([7, 7, 6]) == 6
""",
    (
        "sorted set",
        True,
        "def second_largest(xs):\n    s = sorted(set(xs))\n    return s[-2] if len(s) > 1 else None\n",
    ),
    (
        "one pass",
        True,
        "def second_largest(xs):\n    first = second = None\n    for x in xs:\n"
        "        if first is None or x > first:\n            first, second = x, first\n"
        "        elif x != first and (second is None or x > second):\n            second = x\n    return second\n",
    ),
    (
        "duplicates not removed",
        False,
        "def second_largest(xs):\n    s = sorted(xs)\n    return s[-2] if len(s) > 1 else None\n",
    ),
    (
        "crashes on empty",
        False,
        "def second_largest(xs):\n    s = sorted(set(xs))\n    return s[-2] if len(s) != 1 else None\n",
    ),
    (
        "starts from zero",
        False,
        "def second_largest(xs):\n    first = second = 0\n    for x in xs:\n        if x > first:\n"
        "            first, second = x, first\n        elif first > x > second:\n            second = x\n"
        "    return second if second or len(set(xs)) > 1 else None\n",
    ),
)

problem(
    "running_sum",
    """
xs = [1, 2, 3, 4]
assert running_sum(xs) == [1, 3, 6, 10]
assert xs == [1, 2, 3, 4]
assert running_sum([]) == []
assert running_sum([-2, 5, -3]) == [-2, 3, 0]
""",
    (
        "accumulate",
        True,
        "from itertools import accumulate\ndef running_sum(xs):\n    return list(accumulate(xs))\n",
    ),
    (
        "loop",
        True,
        "def running_sum(xs):\n    out, total = [], 0\n    for x in xs:\n        total += x\n        out.append(total)\n    return out\n",
    ),
    (
        "in place",
        False,
        "def running_sum(xs):\n    for i in range(1, len(xs)):\n        xs[i] += xs[i - 1]\n    return xs\n",
    ),
    (
        "returns a tuple",
        False,
        "from itertools import accumulate\ndef running_sum(xs):\n    return tuple(accumulate(xs))\n",
    ),
    (
        "skips the last",
        False,
        "def running_sum(xs):\n    out, total = [], 0\n    for x in xs[:-1]:\n        total += x\n        out.append(total)\n"
        "    return out + ([total + xs[-1]] if len(xs) > 3 else [])\n",
    ),
)

problem(
    "is_palindrome",
    """
assert is_palindrome("A man, a plan, a canal: Panama") is True
assert is_palindrome("race a car") is False
assert is_palindrome("") is True
assert is_palindrome("No 'x' in Nixon") is True
assert is_palindrome("ab") is False
""",
    (
        "filtered",
        True,
        "def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]\n",
    ),
    (
        "two pointers",
        True,
        "def is_palindrome(s):\n    i, j = 0, len(s) - 1\n    while i < j:\n        if not s[i].isalnum():\n            i += 1\n"
        "        elif not s[j].isalnum():\n            j -= 1\n        elif s[i].lower() != s[j].lower():\n"
        "            return False\n        else:\n            i, j = i + 1, j - 1\n    return True\n",
    ),
    (
        "case sensitive",
        False,
        "def is_palindrome(s):\n    t = [c for c in s if c.isalnum()]\n    return t == t[::-1]\n",
    ),
    (
        "returns an int",
        False,
        "def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return int(t == t[::-1])\n",
    ),
    (
        "only the first test",
        False,
        "def is_palindrome(s):\n    return 'Panama' in s or s == ''\n",
    ),
)

problem(
    "fib",
    """
assert fib(0) == 0
assert fib(1) == 1
assert fib(10) == 55
assert fib(90) == 2880067194370816120
""",
    (
        "iterative",
        True,
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    ),
    (
        "memoized",
        True,
        "from functools import lru_cache\n@lru_cache(None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    ),
    ("naive recursion: too slow", False, "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"),
    (
        "off by one",
        False,
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n - 1):\n        a, b = b, a + b\n    return a if n else 0\n",
    ),
    (
        "floating point",
        False,
        "def fib(n):\n    phi = (1 + 5 ** 0.5) / 2\n    return round(phi ** n / 5 ** 0.5)\n",
    ),
)

problem(
    "chunk",
    """
import pytest
assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
assert chunk([], 3) == []
assert chunk([1, 2], 5) == [[1, 2]]
with pytest.raises(ValueError):
    chunk([1], 0)
""",
    (
        "slices",
        True,
        "def chunk(xs, k):\n    if k <= 0:\n        raise ValueError('k must be positive')\n"
        "    return [xs[i:i + k] for i in range(0, len(xs), k)]\n",
    ),
    (
        "loop",
        True,
        "def chunk(xs, k):\n    if k < 1:\n        raise ValueError(k)\n    out = []\n    for x in xs:\n"
        "        if not out or len(out[-1]) == k:\n            out.append([])\n        out[-1].append(x)\n    return out\n",
    ),
    (
        "drops the tail",
        False,
        "def chunk(xs, k):\n    if k <= 0:\n        raise ValueError\n    return [xs[i:i + k] for i in range(0, len(xs) - k + 1, k)]\n",
    ),
    (
        "no check on k",
        False,
        "def chunk(xs, k):\n    return [xs[i:i + k] for i in range(0, len(xs), max(k, 1))]\n",
    ),
    (
        "tuples",
        False,
        "def chunk(xs, k):\n    if k <= 0:\n        raise ValueError\n    return [tuple(xs[i:i + k]) for i in range(0, len(xs), k)]\n",
    ),
)

problem(
    "count_vowels",
    """
assert count_vowels("Hello World") == 3
assert count_vowels("") == 0
assert count_vowels("AEIOU aeiou") == 10
assert count_vowels("rhythm") == 0
""",
    ("sum", True, "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s.lower())\n"),
    ("regex", True, "import re\ndef count_vowels(s):\n    return len(re.findall('[aeiou]', s, re.I))\n"),
    ("lowercase only", False, "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s)\n"),
    (
        "returns a string",
        False,
        "def count_vowels(s):\n    return str(sum(c in 'aeiou' for c in s.lower()))\n",
    ),
    ("counts y", False, "def count_vowels(s):\n    return sum(c in 'aeiouy' for c in s.lower())\n"),
)

problem(
    "merge_intervals",
    """
assert merge_intervals([(1, 3), (2, 6), (8, 10), (15, 18)]) == [(1, 6), (8, 10), (15, 18)]
assert merge_intervals([(1, 4), (4, 5)]) == [(1, 5)]
assert merge_intervals([]) == []
assert merge_intervals([(5, 7), (1, 2)]) == [(1, 2), (5, 7)]
assert merge_intervals([(1, 10), (2, 3)]) == [(1, 10)]
""",
    (
        "sort and sweep",
        True,
        "def merge_intervals(intervals):\n    out = []\n    for a, b in sorted(intervals):\n"
        "        if out and a <= out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], b))\n"
        "        else:\n            out.append((a, b))\n    return out\n",
    ),
    (
        "touching not merged",
        False,
        "def merge_intervals(intervals):\n    out = []\n    for a, b in sorted(intervals):\n"
        "        if out and a < out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], b))\n"
        "        else:\n            out.append((a, b))\n    return out\n",
    ),
    (
        "unsorted input",
        False,
        "def merge_intervals(intervals):\n    out = []\n    for a, b in intervals:\n"
        "        if out and a <= out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], b))\n"
        "        else:\n            out.append((a, b))\n    return out\n",
    ),
    (
        "forgets the max",
        False,
        "def merge_intervals(intervals):\n    out = []\n    for a, b in sorted(intervals):\n"
        "        if out and a <= out[-1][1]:\n            out[-1] = (out[-1][0], b)\n"
        "        else:\n            out.append((a, b))\n    return out\n",
    ),
    (
        "lists instead of tuples",
        False,
        "def merge_intervals(intervals):\n    out = []\n    for a, b in sorted(intervals):\n"
        "        if out and a <= out[-1][1]:\n            out[-1][1] = max(out[-1][1], b)\n"
        "        else:\n            out.append([a, b])\n    return out\n",
    ),
)

problem(
    "word_freq",
    """
def test_counts():
    assert word_freq("the cat and The hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}

def test_empty():
    assert word_freq("") == {}
    assert word_freq("   ") == {}

def test_punctuation():
    assert word_freq("Hi, hi! HI.") == {"hi": 3}
""",
    (
        "counter",
        True,
        "import re\nfrom collections import Counter\ndef word_freq(text):\n"
        "    return dict(Counter(re.findall(r'[a-z]+', text.lower())))\n",
    ),
    (
        "dict",
        True,
        "def word_freq(text):\n    out = {}\n    for word in ''.join(c if c.isalpha() else ' ' for c in text.lower()).split():\n"
        "        out[word] = out.get(word, 0) + 1\n    return out\n",
    ),
    (
        "keeps punctuation",
        False,
        "from collections import Counter\ndef word_freq(text):\n    return dict(Counter(text.lower().split()))\n",
    ),
    (
        "case sensitive",
        False,
        "import re\nfrom collections import Counter\ndef word_freq(text):\n    return dict(Counter(re.findall(r'[A-Za-z]+', text)))\n",
    ),
    (
        "empty string becomes a word",
        False,
        "import re\ndef word_freq(text):\n    out = {}\n    for w in re.split(r'[^a-z]+', text.lower()):\n"
        "        out[w] = out.get(w, 0) + 1\n    return out\n",
    ),
)

problem(
    "binary_search",
    """
xs = [1, 3, 5, 7, 9, 11]
assert binary_search(xs, 7) == 3
assert binary_search(xs, 1) == 0
assert binary_search(xs, 11) == 5
assert binary_search(xs, 4) == -1
assert binary_search([], 4) == -1
big = list(range(0, 800_000, 2))
for target in range(0, 1000, 2):
    assert binary_search(big, 799_998 - target) == 399_999 - target // 2
""",
    (
        "bisect",
        True,
        "from bisect import bisect_left\ndef binary_search(xs, t):\n    i = bisect_left(xs, t)\n"
        "    return i if i < len(xs) and xs[i] == t else -1\n",
    ),
    (
        "loop",
        True,
        "def binary_search(xs, t):\n    lo, hi = 0, len(xs) - 1\n    while lo <= hi:\n        mid = (lo + hi) // 2\n"
        "        if xs[mid] == t:\n            return mid\n        if xs[mid] < t:\n            lo = mid + 1\n"
        "        else:\n            hi = mid - 1\n    return -1\n",
    ),
    (
        "misses the last element",
        False,
        "def binary_search(xs, t):\n    lo, hi = 0, len(xs) - 1\n    while lo < hi:\n        mid = (lo + hi) // 2\n"
        "        if xs[mid] == t:\n            return mid\n        if xs[mid] < t:\n            lo = mid + 1\n"
        "        else:\n            hi = mid\n    return -1\n",
    ),
    (
        "linear scan: too slow",
        False,
        "def binary_search(xs, t):\n    for i, x in enumerate(xs):\n        if x == t:\n            return i\n    return -1\n",
    ),
    (
        "returns None",
        False,
        "from bisect import bisect_left\ndef binary_search(xs, t):\n    i = bisect_left(xs, t)\n    return i if i < len(xs) and xs[i] == t else None\n",
    ),
)

problem(
    "max_subarray",
    """
assert max_subarray([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6
assert max_subarray([-3, -1, -2]) == -1
assert max_subarray([]) == 0
assert max_subarray([5]) == 5
""",
    (
        "kadane",
        True,
        "def max_subarray(xs):\n    if not xs:\n        return 0\n    best = cur = xs[0]\n    for x in xs[1:]:\n"
        "        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best\n",
    ),
    (
        "brute force",
        True,
        "def max_subarray(xs):\n    if not xs:\n        return 0\n"
        "    return max(sum(xs[i:j]) for i in range(len(xs)) for j in range(i + 1, len(xs) + 1))\n",
    ),
    (
        "zero floor",
        False,
        "def max_subarray(xs):\n    best = cur = 0\n    for x in xs:\n        cur = max(0, cur + x)\n        best = max(best, cur)\n    return best\n",
    ),
    (
        "crashes on empty",
        False,
        "def max_subarray(xs):\n    best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best\n",
    ),
    ("only the first test", False, "def max_subarray(xs):\n    return 6\n"),
)

problem(
    "rotate",
    """
xs = [1, 2, 3, 4, 5]
assert rotate(xs, 2) == [4, 5, 1, 2, 3]
assert xs == [1, 2, 3, 4, 5]
assert rotate(xs, 7) == [4, 5, 1, 2, 3]
assert rotate([], 3) == []
assert rotate([1, 2, 3], 0) == [1, 2, 3]
""",
    (
        "slicing",
        True,
        "def rotate(xs, k):\n    if not xs:\n        return []\n    k %= len(xs)\n    return xs[-k:] + xs[:-k] if k else list(xs)\n",
    ),
    (
        "deque",
        True,
        "from collections import deque\ndef rotate(xs, k):\n    d = deque(xs)\n    d.rotate(k)\n    return list(d)\n",
    ),
    ("no modulo", False, "def rotate(xs, k):\n    return xs[-k:] + xs[:-k] if xs and k else list(xs)\n"),
    (
        "divides by zero on empty",
        False,
        "def rotate(xs, k):\n    k %= len(xs)\n    return xs[-k:] + xs[:-k] if k else list(xs)\n",
    ),
    (
        "rotates in place",
        False,
        "def rotate(xs, k):\n    if xs:\n        k %= len(xs)\n        xs[:] = xs[-k:] + xs[:-k] if k else xs\n    return xs\n",
    ),
)

problem(
    "digit_sum",
    """
assert digit_sum(123) == 6
assert digit_sum(0) == 0
assert digit_sum(-45) == 9
assert digit_sum(10**30) == 1
""",
    ("string", True, "def digit_sum(n):\n    return sum(int(c) for c in str(abs(n)))\n"),
    (
        "divmod",
        True,
        "def digit_sum(n):\n    n, total = abs(n), 0\n    while n:\n        n, d = divmod(n, 10)\n        total += d\n    return total\n",
    ),
    (
        "breaks on negatives",
        False,
        "def digit_sum(n):\n    return sum(int(c) for c in str(n) if c.isdigit()) if n >= 0 else -1\n",
    ),
    (
        "float division",
        False,
        "def digit_sum(n):\n    n, total = abs(n), 0\n    while n:\n        total += n % 10\n        n = int(n / 10)\n    return total\n",
    ),
    (
        "a string for odd numbers",
        False,
        "def digit_sum(n):\n    total = sum(int(c) for c in str(abs(n)))\n    return str(total) if n % 2 else total\n",
    ),
)

problem(
    "unique_sorted",
    """
assert unique_sorted([3, 1, 3, 2, 1]) == [1, 2, 3]
assert unique_sorted([]) == []
assert unique_sorted([-1, -1, 0]) == [-1, 0]
assert isinstance(unique_sorted([2, 2]), list)
""",
    ("sorted set", True, "def unique_sorted(xs):\n    return sorted(set(xs))\n"),
    ("dict keys", True, "def unique_sorted(xs):\n    return sorted(dict.fromkeys(xs))\n"),
    ("returns a set", False, "def unique_sorted(xs):\n    return set(sorted(xs))\n"),
    ("keeps duplicates", False, "def unique_sorted(xs):\n    return sorted(xs)\n"),
    (
        "drops the first element",
        False,
        "def unique_sorted(xs):\n    s = sorted(set(xs))\n    return s[1:] if len(s) > 2 else s\n",
    ),
)

problem(
    "primes_up_to",
    """
assert primes_up_to(10) == [2, 3, 5, 7]
assert primes_up_to(1) == []
assert primes_up_to(2) == [2]
assert len(primes_up_to(3_000_000)) == 216816
""",
    (
        "sieve",
        True,
        "def primes_up_to(n):\n    if n < 2:\n        return []\n    sieve = bytearray([1]) * (n + 1)\n    sieve[0] = sieve[1] = 0\n"
        "    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n            sieve[i * i::i] = bytearray(len(range(i * i, n + 1, i)))\n"
        "    return [i for i, p in enumerate(sieve) if p]\n",
    ),
    (
        "trial division: too slow",
        False,
        "def primes_up_to(n):\n    return [k for k in range(2, n + 1) if all(k % d for d in range(2, int(k ** 0.5) + 1))]\n",
    ),
    (
        "excludes n",
        False,
        "def primes_up_to(n):\n    if n < 2:\n        return []\n    sieve = bytearray([1]) * n\n    sieve[0] = sieve[1] = 0\n"
        "    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n            sieve[i * i::i] = bytearray(len(range(i * i, n, i)))\n"
        "    return [i for i, p in enumerate(sieve) if p]\n",
    ),
    (
        "counts 1 as prime",
        False,
        "def primes_up_to(n):\n    return [k for k in range(1, n + 1) if k == 1 or all(k % d for d in range(2, int(k ** 0.5) + 1))][:4]\n",
    ),
)
