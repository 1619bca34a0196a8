"""The numba kernels of `kernels.py` (imported only when numba is installed).

Defined at module level so numba can cache their machine code on disk between runs.
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True)
u64 = np.uint64


@jit
def minhash_signatures(hashes, offsets, a, b):
    # out[d, k] = min over document d's shingles x of (a[k] * x + b[k]) mod 2**32. The inner
    # loop runs over the permutations with a branch-free minimum, which the compiler turns
    # into SIMD lanes.
    n = len(offsets) - 1
    k = len(a)
    out = np.empty((n, k), np.uint32)
    for d in range(n):
        row = out[d]
        for j in range(k):
            row[j] = np.uint32(0xFFFFFFFF)
        for s in range(offsets[d], offsets[d + 1]):
            x = hashes[s]
            for j in range(k):
                v = np.uint32(a[j] * x + b[j])  # numba widens the product: wrap it to 32 bits
                row[j] = v if v < row[j] else row[j]
    return out


@jit
def mix64(x):
    x ^= x >> u64(30)
    x *= u64(0xBF58476D1CE4E5B9)
    x ^= x >> u64(27)
    x *= u64(0x94D049BB133111EB)
    x ^= x >> u64(31)
    return x


@jit
def word_token_hashes(data, offsets, table, base, length_key):
    # The hashes of `neardup._token_hashes` for the tokens of `neardup._word_spans`: maximal
    # runs of characters that are not separators (`table[code point]`; code points beyond
    # the table never are), hashed as sum(byte_j * base**j) ^ byte length * length_key, mixed.
    rows = len(offsets) - 1
    size = len(data)
    hashes = np.empty(size // 2 + rows + 1, np.uint64)
    token_offsets = np.zeros(rows + 1, np.int64)
    t = 0
    limit = len(table)
    for r in range(rows):
        i = offsets[r]
        end = offsets[r + 1]
        inside = False
        h = u64(0)
        power = u64(1)
        length = 0
        while i < end:
            c = data[i]
            if c < 0x80 or i + (2 if c < 0xE0 else (3 if c < 0xF0 else 4)) > end:
                width = 1  # ASCII, or a sequence cut off by the row's end: nothing past it is read
                code = np.int64(c)
            elif c < 0xE0:
                width = 2
                code = ((np.int64(c) & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F)
            elif c < 0xF0:
                width = 3
                code = (
                    ((np.int64(c) & 0x0F) << 12)
                    | ((np.int64(data[i + 1]) & 0x3F) << 6)
                    | (np.int64(data[i + 2]) & 0x3F)
                )
            else:
                width = 4
                code = (
                    ((np.int64(c) & 0x07) << 18)
                    | ((np.int64(data[i + 1]) & 0x3F) << 12)
                    | ((np.int64(data[i + 2]) & 0x3F) << 6)
                    | (np.int64(data[i + 3]) & 0x3F)
                )
            if code < limit and table[code]:
                if inside:
                    hashes[t] = mix64(h ^ (u64(length) * length_key))
                    t += 1
                    inside = False
            else:
                if not inside:
                    inside = True
                    h = u64(0)
                    power = u64(1)
                    length = 0
                for k in range(width):
                    h += u64(data[i + k]) * power
                    power *= base
                length += width
            i += width
        if inside:
            hashes[t] = mix64(h ^ (u64(length) * length_key))
            t += 1
        token_offsets[r + 1] = t
    return hashes[:t], token_offsets


@jit
def shingle_hashes(token_hashes, token_offsets, tokens, ngram, position_keys, length_key):
    # The shingle hashes of `neardup._combine`: ngram consecutive token hashes times their
    # position keys, summed and mixed; a document with fewer tokens is one shingle of all
    # of them, its length folded in.
    rows = len(tokens)
    offsets = np.zeros(rows + 1, np.int64)
    for r in range(rows):
        count = tokens[r] - ngram + 1 if tokens[r] >= ngram else min(tokens[r], 1)
        offsets[r + 1] = offsets[r] + count
    out = np.empty(offsets[rows], np.uint64)
    for r in range(rows):
        first = token_offsets[r]
        if tokens[r] >= ngram:
            for s in range(tokens[r] - ngram + 1):
                acc = u64(0)
                for i in range(ngram):
                    acc += token_hashes[first + s + i] * position_keys[i]
                out[offsets[r] + s] = mix64(acc)
        elif tokens[r] > 0:
            acc = u64(0)
            for i in range(tokens[r]):
                acc += token_hashes[first + i] * position_keys[i]
            out[offsets[r]] = mix64(acc ^ (u64(tokens[r]) * length_key))
    return out, offsets


@jit
def decode_utf8(data, lo, hi, out):
    """Code points of the valid UTF-8 bytes data[lo:hi] into `out`; returns how many. (Arrow
    validates strings; a sequence cut off by `hi` is read as one code point per byte, so nothing
    past `hi` is ever read.)"""
    count = 0
    i = lo
    while i < hi:
        c = np.int64(data[i])
        if c < 0x80 or i + (2 if c < 0xE0 else (3 if c < 0xF0 else 4)) > hi:
            code = c
            width = 1
        elif c < 0xE0:
            code = ((c & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F)
            width = 2
        elif c < 0xF0:
            code = ((c & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F)
            width = 3
        else:
            code = (
                ((c & 0x07) << 18)
                | ((np.int64(data[i + 1]) & 0x3F) << 12)
                | ((np.int64(data[i + 2]) & 0x3F) << 6)
                | (np.int64(data[i + 3]) & 0x3F)
            )
            width = 4
        out[count] = code
        count += 1
        i += width
    return count


@jit
def _repeats(cps, length, n, base, power_n, mix, keys, seen, used, prefix):
    # Windows of n code points of cps[:length] whose polynomial hash (sum of s[i+j] *
    # base**(n-1-j) mod 2**64, the hash of `ngrams.window_hashes`) occurs more than once, counted
    # with an open-addressing table: the first 2**bits slots of `keys`/`seen` (sized for this
    # row, so a short row's table stays in the cache), left cleared for the next row; `seen`
    # holds 0 (free), 1 (seen once) or 2 (repeated). A window's hash is prefix[i+n] - prefix[i] *
    # base**n: one multiply per window, none of them chained.
    windows = length - n + 1
    if windows < 2:
        return 0
    bits = 1
    while (1 << bits) < 2 * windows:
        bits += 1
    size = 1 << bits
    shift = u64(64 - bits)
    h = u64(0)
    prefix[0] = h
    for j in range(length):
        h = h * base + u64(cps[j])
        prefix[j + 1] = h
    filled = 0
    repeated = 0
    for i in range(windows):
        h = prefix[i + n] - prefix[i] * power_n
        slot = (h * mix) >> shift
        while seen[slot] and keys[slot] != h:
            slot = (slot + u64(1)) & u64(size - 1)
        state = seen[slot]
        if state == 0:
            keys[slot] = h
            seen[slot] = 1
            used[filled] = slot
            filled += 1
        elif state == 1:
            repeated += 2  # the first occurrence counts too
            seen[slot] = 2
        else:
            repeated += 1
    for t in range(filled):
        seen[used[t]] = 0
    return repeated


@jit
def repeated_windows_utf8(data, offsets, n, base, power_n, mix):
    """Per row of UTF-8 text: windows of n code points whose n-gram occurs more than once."""
    rows = len(offsets) - 1
    out = np.zeros(rows, np.int64)
    longest = 0
    for r in range(rows):
        longest = max(longest, offsets[r + 1] - offsets[r])  # bytes bound the code points
    if longest - n + 1 < 2:
        return out
    size = 2
    while size < 2 * longest:
        size *= 2
    keys = np.zeros(size, np.uint64)
    seen = np.zeros(size, np.uint8)
    used = np.empty(longest, np.int64)
    cps = np.empty(longest, np.uint32)
    prefix = np.empty(longest + 1, np.uint64)
    for r in range(rows):
        length = decode_utf8(data, offsets[r], offsets[r + 1], cps)
        out[r] = _repeats(cps, length, n, base, power_n, mix, keys, seen, used, prefix)
    return out


@jit
def utf8_class_counts(data, offsets, table, n_classes, other, mark, vs_first, vs_last):
    """Per row of UTF-8 text: code points per class (`table[code point]`; beyond the table,
    OTHER, except the variation selectors supplement, MARK)."""
    rows = len(offsets) - 1
    out = np.zeros((rows, n_classes), np.int64)
    limit = len(table)
    cps = np.empty(4, np.uint32)
    for r in range(rows):
        i = offsets[r]
        end = offsets[r + 1]
        while i < end:
            c = data[i]
            if c < 0x80:
                out[r, table[c]] += 1
                i += 1
                continue
            width = min(2 if c < 0xE0 else (3 if c < 0xF0 else 4), end - i)
            decode_utf8(data, i, i + width, cps)
            code = np.int64(cps[0])
            if code < limit:
                out[r, table[code]] += 1
            elif vs_first <= code <= vs_last:
                out[r, mark] += 1
            else:
                out[r, other] += 1
            i += width
    return out


@jit
def words_and_lines(data, offsets):
    # Words as `len(s.split())`: a word starts at a non-whitespace character at the row's
    # start or after whitespace; whitespace is Python's (ASCII \t..\r, \x1c..\x1f, space,
    # and the multi-byte U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
    # U+205F, U+3000). Lines: 0 for "", else newlines + 1 unless the text ends with one.
    rows = len(offsets) - 1
    words = np.zeros(rows, np.int64)
    lines = np.zeros(rows, np.int64)
    size = len(data)
    for r in range(rows):
        i = offsets[r]
        end = offsets[r + 1]
        previous_space = True
        count = 0
        newlines = 0
        while i < end:
            c = data[i]
            width = 1
            space = False
            if c < 0x80:
                space = c == 0x20 or (0x09 <= c <= 0x0D) or (0x1C <= c <= 0x1F)
                if c == 0x0A:
                    newlines += 1
            else:
                c1 = data[i + 1] if i + 1 < size else 0
                c2 = data[i + 2] if i + 2 < size else 0
                if c < 0xE0:
                    width = 2
                    space = c == 0xC2 and (c1 == 0x85 or c1 == 0xA0)
                elif c < 0xF0:
                    width = 3
                    if c == 0xE1:
                        space = c1 == 0x9A and c2 == 0x80
                    elif c == 0xE2:
                        space = (c1 == 0x80 and (c2 <= 0x8A or c2 == 0xA8 or c2 == 0xA9 or c2 == 0xAF)) or (
                            c1 == 0x81 and c2 == 0x9F
                        )
                    elif c == 0xE3:
                        space = c1 == 0x80 and c2 == 0x80
                else:
                    width = 4
            if not space and previous_space:
                count += 1
            previous_space = space
            i += width
        words[r] = count
        if end > offsets[r]:
            lines[r] = newlines + 1 - (1 if data[end - 1] == 0x0A else 0)
    return words, lines
