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
def word_token_hashes(data, offsets, table, base, base_inverse, length_key):
    # The hashes of `neardup._token_hashes` for the tokens of `neardup._word_spans`: maximal
    # runs of characters that are not separators (`table[code point]`; code points beyond
    # the table never are), hashed as sum(byte_j * base**j) ^ byte length * length_key, mixed.
    # Per row, three branch-light passes instead of one branchy one: a separator flag per
    # byte (a character's bytes share its flag), then prefix sums P[j] = sum(byte_k * base**k,
    # k < j) with the token boundaries, then each token's sum as (P[end] - P[start]) *
    # base**-start (the numpy path's formula).
    rows = len(offsets) - 1
    size = len(data)
    longest = 0
    for r in range(rows):
        longest = max(longest, offsets[r + 1] - offsets[r])
    powers = np.empty(longest + 1, np.uint64)
    inverse = np.empty(longest + 1, np.uint64)
    p = u64(1)
    q = u64(1)
    for k in range(longest + 1):
        powers[k] = p
        inverse[k] = q
        p *= base
        q *= base_inverse
    separator = np.empty(longest, np.uint8)
    prefix = np.empty(longest + 1, np.uint64)
    starts = np.empty(longest // 2 + 2, np.int64)
    ends = np.empty(longest // 2 + 2, np.int64)
    hashes = np.empty(size // 2 + rows + 1, np.uint64)
    token_offsets = np.zeros(rows + 1, np.int64)
    t = 0
    limit = len(table)
    for r in range(rows):
        lo = offsets[r]
        end = offsets[r + 1]
        i = lo
        while i < end:
            c = data[i]
            if c < 0x80:
                separator[i - lo] = table[c]
                i += 1
                continue
            if i + (2 if c < 0xE0 else (3 if c < 0xF0 else 4)) > end:
                width = 1  # a sequence cut off by the row's end: nothing past it is read
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
            flag = 1 if code < limit and table[code] else 0
            for k in range(width):
                separator[i - lo + k] = flag
            i += width
        acc = u64(0)
        prefix[0] = acc
        previous = 1  # the row's start acts as a separator
        count = 0
        closed = 0
        for j in range(end - lo):
            flag = separator[j]
            starts[count] = j
            count += previous & (flag ^ 1)
            ends[closed] = j
            closed += (previous ^ 1) & flag
            previous = flag
            acc += u64(data[lo + j]) * powers[j]
            prefix[j + 1] = acc
        if previous == 0:
            ends[closed] = end - lo
        for k in range(count):
            first = starts[k]
            stop = ends[k]
            h = (prefix[stop] - prefix[first]) * inverse[first]
            hashes[t + k] = mix64(h ^ (u64(stop - first) * length_key))
        t += count
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


# Slots of the repeated-window table per window: at 1/8 load linear probing rarely takes a
# second step (measured fastest on the text benchmark, against 2x and 4x). A very long row
# gets 2 per window, so its table stays within a few times its text's size.
_SLOTS_PER_WINDOW = 8
_SPARSE_TABLE_MAX = 1 << 22


@jit
def _table_bits(windows):
    bits = 1
    while (1 << bits) < _SLOTS_PER_WINDOW * windows and (1 << bits) < _SPARSE_TABLE_MAX:
        bits += 1
    while (1 << bits) < 2 * windows:
        bits += 1
    return bits


@jit
def _prefix_hashes(symbols, start, length, base, prefix):
    h = u64(0)
    prefix[0] = h
    for j in range(length):
        h = h * base + u64(symbols[start + j])
        prefix[j + 1] = h


@jit
def _repeats(data, lo, hi, n, base, power_n, mix, keys, seen, prefix, cps):
    # Windows of n code points of the UTF-8 row data[lo:hi] whose polynomial hash (sum of
    # s[i+j] * base**(n-1-j) mod 2**64, the hash of `ngrams.window_hashes`) occurs more than
    # once, counted with an open-addressing table: the first 2**bits slots of `keys`/`seen`
    # (sized for this row, so a short row's table stays in the cache), cleared per row; `seen`
    # holds 0 (free), 1 (seen once) or 2 (repeated). A window's hash is prefix[i+n] - prefix[i] *
    # base**n: one multiply per window, none of them chained. An ASCII row is its own code
    # points (no decoding); the table update is branch-free.
    ascii = True
    for j in range(lo, hi):
        if data[j] >= 0x80:
            ascii = False
            break
    if ascii:
        length = hi - lo
    else:
        length = decode_utf8(data, lo, hi, cps)
    windows = length - n + 1
    if windows < 2:
        return 0
    if ascii:
        _prefix_hashes(data, lo, length, base, prefix)
    else:
        _prefix_hashes(cps, 0, length, base, prefix)
    bits = _table_bits(windows)
    size = 1 << bits
    last = u64(size - 1)
    shift = u64(64 - bits)
    seen[:size] = 0
    repeated = 0
    for i in range(windows):
        h = prefix[i + n] - prefix[i] * power_n
        slot = (h * mix) >> shift
        while seen[slot] != 0 and keys[slot] != h:
            slot = (slot + u64(1)) & last
        state = seen[slot]
        keys[slot] = h
        seen[slot] = state + (state < 2)
        repeated += (state == 1) * 2 + (state == 2)  # the first occurrence counts too
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
    size = 1 << _table_bits(longest)
    keys = np.zeros(size, np.uint64)
    seen = np.zeros(size, np.uint8)
    cps = np.empty(longest, np.uint32)
    prefix = np.empty(longest + 1, np.uint64)
    for r in range(rows):
        out[r] = _repeats(data, offsets[r], offsets[r + 1], n, base, power_n, mix, keys, seen, prefix, cps)
    return out


@jit
def _flush_classes(out, r, low, high):
    for k in range(4):
        out[r, k] += (low >> u64(16 * k)) & u64(0xFFFF)
        out[r, 4 + k] += (high >> u64(16 * k)) & u64(0xFFFF)


@jit
def utf8_class_counts(data, offsets, table, n_classes, other, mark, vs_first, vs_last):
    """Per row of UTF-8 text: code points per class (`table[code point]`; beyond the table,
    OTHER, except the variation selectors supplement, MARK). At most 8 classes."""
    rows = len(offsets) - 1
    out = np.zeros((rows, n_classes), np.int64)
    limit = len(table)
    cps = np.empty(4, np.uint32)
    # ASCII characters are counted in two words of four 16-bit counters (classes 0-3 and 4-7),
    # two adds and no store per byte (a run of one class would otherwise update one counter in
    # memory again and again); the words go to `out` before a counter can overflow.
    low_key = np.zeros(128, np.uint64)
    high_key = np.zeros(128, np.uint64)
    for c in range(128):
        k = table[c]
        if k < 4:
            low_key[c] = u64(1) << u64(16 * k)
        else:
            high_key[c] = u64(1) << u64(16 * (k - 4))
    for r in range(rows):
        i = offsets[r]
        end = offsets[r + 1]
        low = u64(0)
        high = u64(0)
        flush_at = min(end, i + 0xFFFF)
        while i < end:
            if i >= flush_at:
                _flush_classes(out, r, low, high)
                low = u64(0)
                high = u64(0)
                flush_at = min(end, i + 0xFFFF)
            c = data[i]
            if c < 0x80:
                low += low_key[c]
                high += high_key[c]
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
        _flush_classes(out, r, low, high)
    return out


_HIGH = u64(0x8080808080808080)
_ONES = u64(0x0101010101010101)


@jit
def _count_high(mask):
    # Bytes of `mask` with their high bit set (no other bit may be set).
    return ((mask >> u64(7)) * _ONES) >> u64(56)


@jit
def words_and_lines(data, words64, offsets):
    # Words as `len(s.split())`: a word starts at a non-whitespace character at the row's
    # start or after whitespace; whitespace is Python's (ASCII \t..\r, \x1c..\x1f, space,
    # and the multi-byte U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
    # U+205F, U+3000). Lines: 0 for "", else newlines + 1 unless the text ends with one.
    # `words64` is `data` read 8 bytes at a time: an all-ASCII word is classified at once
    # (SWAR: for bytes below 0x80, `b + (0x80 - k)` has its high bit set iff b >= k).
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
            if (i & 7) == 0 and i + 8 <= end:
                x = words64[i >> 3]
                if (x & _HIGH) == u64(0):
                    tab_to_cr = ((x + u64(0x77) * _ONES) & ~(x + u64(0x72) * _ONES)) & _HIGH  # 0x09..0x0D
                    separators = ((x + u64(0x64) * _ONES) & ~(x + u64(0x60) * _ONES)) & _HIGH  # 0x1C..0x1F
                    blank = ~((x ^ (u64(0x20) * _ONES)) + u64(0x7F) * _ONES) & _HIGH  # == 0x20
                    newline = ~((x ^ (u64(0x0A) * _ONES)) + u64(0x7F) * _ONES) & _HIGH  # == 0x0A
                    space = tab_to_cr | separators | blank
                    before = (space << u64(8)) | (u64(0x80) if previous_space else u64(0))
                    count += _count_high(~space & before & _HIGH)
                    newlines += _count_high(newline)
                    previous_space = (space >> u64(63)) != u64(0)
                    i += 8
                    continue
            c = data[i]
            width = 1
            if c < 0x80:
                space = c == 0x20 or (0x09 <= c <= 0x0D) or (0x1C <= c <= 0x1F)
                if c == 0x0A:
                    newlines += 1
            else:
                c1 = data[i + 1] if i + 1 < size else 0
                c2 = data[i + 2] if i + 2 < size else 0
                space = False
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


# BLAKE2b (RFC 7693) with a 16-byte digest, as `hashlib.blake2b(message, digest_size=16)`, for
# exact dedup keys: the same digests as the hashlib path, computed without the GIL.
_B2_IV = np.array(
    [
        0x6A09E667F3BCC908,
        0xBB67AE8584CAA73B,
        0x3C6EF372FE94F82B,
        0xA54FF53A5F1D36F1,
        0x510E527FADE682D1,
        0x9B05688C2B3E6C1F,
        0x1F83D9ABFB41BD6B,
        0x5BE0CD19137E2179,
    ],
    np.uint64,
)


@jit
def _rotr(x, n):
    return (x >> u64(n)) | (x << u64(64 - n))


@jit
def _g(a, b, c, d, x, y):
    a = a + b + x
    d = _rotr(d ^ a, 32)
    c = c + d
    b = _rotr(b ^ c, 24)
    a = a + b + y
    d = _rotr(d ^ a, 16)
    c = c + d
    b = _rotr(b ^ c, 63)
    return a, b, c, d


@jit
def _b2_compress(h, m, t, last):
    # The message schedule (RFC 7693 SIGMA) is written out round by round: with constant
    # indices the 16 message words stay in registers (a table-driven loop ran ~40% slower).
    m0, m1, m2, m3, m4, m5, m6, m7 = m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
    m8, m9, m10, m11, m12, m13, m14, m15 = m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]
    v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    v8, v9, v10, v11 = _B2_IV[0], _B2_IV[1], _B2_IV[2], _B2_IV[3]
    v12 = _B2_IV[4] ^ t
    v13 = _B2_IV[5]
    v14 = ~_B2_IV[6] if last else _B2_IV[6]
    v15 = _B2_IV[7]
    # round 1
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m0, m1)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m2, m3)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m4, m5)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m6, m7)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m8, m9)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m10, m11)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m12, m13)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m14, m15)
    # round 2
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m14, m10)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m4, m8)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m9, m15)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m13, m6)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m1, m12)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m0, m2)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m11, m7)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m5, m3)
    # round 3
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m11, m8)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m12, m0)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m5, m2)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m15, m13)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m10, m14)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m3, m6)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m7, m1)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m9, m4)
    # round 4
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m7, m9)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m3, m1)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m13, m12)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m11, m14)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m2, m6)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m5, m10)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m4, m0)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m15, m8)
    # round 5
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m9, m0)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m5, m7)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m2, m4)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m10, m15)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m14, m1)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m11, m12)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m6, m8)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m3, m13)
    # round 6
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m2, m12)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m6, m10)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m0, m11)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m8, m3)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m4, m13)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m7, m5)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m15, m14)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m1, m9)
    # round 7
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m12, m5)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m1, m15)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m14, m13)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m4, m10)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m0, m7)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m6, m3)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m9, m2)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m8, m11)
    # round 8
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m13, m11)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m7, m14)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m12, m1)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m3, m9)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m5, m0)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m15, m4)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m8, m6)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m2, m10)
    # round 9
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m6, m15)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m14, m9)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m11, m3)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m0, m8)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m12, m2)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m13, m7)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m1, m4)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m10, m5)
    # round 10
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m10, m2)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m8, m4)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m7, m6)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m1, m5)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m15, m11)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m9, m14)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m3, m12)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m13, m0)
    # round 11
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m0, m1)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m2, m3)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m4, m5)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m6, m7)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m8, m9)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m10, m11)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m12, m13)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m14, m15)
    # round 12
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m14, m10)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m4, m8)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m9, m15)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m13, m6)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m1, m12)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m0, m2)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m11, m7)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m5, m3)
    h[0] ^= v0 ^ v8
    h[1] ^= v1 ^ v9
    h[2] ^= v2 ^ v10
    h[3] ^= v3 ^ v11
    h[4] ^= v4 ^ v12
    h[5] ^= v5 ^ v13
    h[6] ^= v6 ^ v14
    h[7] ^= v7 ^ v15


@jit
def blake2b_keys(data, offsets, valid, framed):
    """Per row, the 16-byte BLAKE2b digest (as two little-endian uint64) of its key: with
    `framed`, the exact dedup key of one column, b"\\x01" + decimal byte length + b":" + the bytes
    (b"\\x00" for a row that is not `valid`); else the bytes data[offsets[r]:offsets[r+1]]."""
    rows = len(offsets) - 1
    out = np.empty((rows, 2), np.uint64)
    h = np.empty(8, np.uint64)
    block = np.zeros(128, np.uint8)
    m = block.view(np.uint64)
    header = np.zeros(24, np.uint8)
    for r in range(rows):
        lo = offsets[r]
        hi = offsets[r + 1]
        size = 0  # header bytes
        if framed:
            if valid[r]:
                header[0] = 1
                length = hi - lo
                digits = 1
                scale = 10
                while scale <= length:
                    digits += 1
                    scale *= 10
                for k in range(digits):
                    header[digits - k] = 0x30 + length % 10
                    length //= 10
                header[digits + 1] = 0x3A  # ":"
                size = digits + 2
            else:
                header[0] = 0
                size = 1
                hi = lo
        for i in range(8):
            h[i] = _B2_IV[i]
        h[0] ^= u64(0x01010000 ^ 16)  # digest length 16, no key
        total = size + hi - lo
        done = 0
        t = u64(0)
        while True:
            take = min(total - done, 128)
            last = done + take == total
            if last:
                block[:] = 0
            start = 0
            if done == 0 and size:
                start = min(size, take)
                block[:start] = header[:start]
            first = lo + done + start - size  # data position of the block's next byte
            block[start:take] = data[first : first + take - start]
            t += u64(take)
            _b2_compress(h, m, t, last)
            done += take
            if last:
                break
        out[r, 0] = h[0]
        out[r, 1] = h[1]
    return out


@jit
def band_hashes(signatures, bands, rows, keys, step):
    # out[d, j] = mix64(sum over r of signatures[d, j*rows + r] * keys[r] + j * step), wrapping
    # mod 2**64: the values of `minhash_dedup.band_hashes`.
    n = signatures.shape[0]
    out = np.empty((n, bands), np.uint64)
    for d in range(n):
        for j in range(bands):
            acc = u64(0)
            for r in range(rows):
                acc += u64(signatures[d, j * rows + r]) * keys[r]
            out[d, j] = mix64(acc + u64(j) * step)
    return out


@jit
def band_pairs(keys):
    # The pairs of `neardup.group_pairs(keys, arange(len(keys)))`, in another order: each
    # position with the first and with the previous earlier position holding the same key,
    # found in one pass with an open-addressing table (first and previous holder per key).
    n = len(keys)
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    size = 1 << bits
    shift = u64(64 - bits)
    last_slot = u64(size - 1)
    table = np.empty(size, np.uint64)
    used = np.zeros(size, np.uint8)
    first = np.empty(size, np.int64)
    previous = np.empty(size, np.int64)
    left = np.empty(2 * n, np.int64)
    right = np.empty(2 * n, np.int64)
    count = 0
    for m in range(n):
        key = keys[m]
        slot = (key * u64(0x9E3779B97F4A7C15)) >> shift
        while used[slot] and table[slot] != key:
            slot = (slot + u64(1)) & last_slot
        if used[slot]:
            left[count] = first[slot]
            right[count] = m
            left[count + 1] = previous[slot]
            right[count + 1] = m
            count += 2
            previous[slot] = m
        else:
            used[slot] = 1
            table[slot] = key
            first[slot] = m
            previous[slot] = m
    return left[:count], right[:count]


@jit
def first_occurrences(table, used, where, digests, positions):
    # Exact dedup's memory: an open-addressing table of 128-bit digests (`table[slot]`, two
    # uint64; digests are uniform, so their first word picks the slot) and the global position
    # of each one's first row (`where`). Per row of `digests` (at global `positions`): the
    # position of the first row with that digest (its own when new). Returns them and the
    # number of digests added; the caller keeps the table at most 3/4 full.
    n = digests.shape[0]
    size = len(used)
    bits = 0
    while (1 << bits) < size:
        bits += 1
    shift = u64(64 - bits)
    last = u64(size - 1)
    out = np.empty(n, np.int64)
    added = 0
    for r in range(n):
        lo = digests[r, 0]
        hi = digests[r, 1]
        slot = lo >> shift
        while used[slot] and (table[slot, 0] != lo or table[slot, 1] != hi):
            slot = (slot + u64(1)) & last
        if used[slot]:
            out[r] = where[slot]
        else:
            used[slot] = 1
            table[slot, 0] = lo
            table[slot, 1] = hi
            where[slot] = positions[r]
            out[r] = positions[r]
            added += 1
    return out, added
