"""MinHash, shingles and LSH banding against datasketch itself (no Spark)."""
from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
import xxhash
from datasketch import MinHash, MinHashLSH

from udfs.dedup import kernels
from udfs.dedup.minhash import MinHasher, Shingler, lsh_bands, pair_jaccard
from udfs.dedup.text import ExactNormalization, exact_hashes, shingle_text

TEXTS = [
    "The quick brown fox jumps over the lazy dog, again and again, until the dog gives up.",
    "Short text.",
    "",
    None,
    "长城是中国古代伟大的防御工程，东起山海关，西至嘉峪关。",
    "日本語のテキストと English words mixed, 123 numbers.",
    "Ünïcödé ﬁ ligatures — and “quotes” … fold under NFKC",
]


@pytest.mark.parametrize("hash_name,hashfunc", [("xxh32", xxhash.xxh32_intdigest), ("sha1", None)])
@pytest.mark.parametrize("unit,ngram", [("word", 5), ("word", 1), ("char", 3)])
def test_signatures_equal_datasketch(hash_name, hashfunc, unit, ngram):
    hasher = MinHasher(Shingler(ngram, unit, hash_name), num_perm=96, seed=42)
    signatures = hasher.signatures(pa.array(TEXTS))
    for text, row in zip(TEXTS, signatures):
        reference = MinHash(num_perm=96, seed=42, **({"hashfunc": hashfunc} if hashfunc else {}))
        reference.update_batch(hasher.shingler.shingles(text or ""))
        np.testing.assert_array_equal(row, reference.hashvalues)


def test_xxh32_equals_xxhash_at_every_length():
    rng = random.Random(7)
    for length in [*range(0, 70), 1000, 4097]:
        raw = bytes(rng.randrange(256) for _ in range(length))
        assert int(kernels.xxh32(np.frombuffer(raw, np.uint8), 0, length)) == xxhash.xxh32_intdigest(raw)


def test_word_shingles_are_joined_words_and_unspaced_scripts_split_into_characters():
    assert Shingler(3).shingles("Hello,  World! How are you?") == [b"hello world how", b"world how are", b"how are you"]
    zh = Shingler(2).shingles("长城很长")
    assert zh == ["长 城".encode(), "城 很".encode(), "很 长".encode()]
    assert Shingler(3, "char").shingles("ab cd") == [b"ab ", b"b c", b" cd"]
    assert Shingler(5).shingles("too short") == [b"too short"]  # shorter than one shingle: the whole text
    assert Shingler(5).shingles("  ...  ") == []


def test_shingle_text_normalizes_unicode_case_and_punctuation():
    out = shingle_text(pa.array(["ＦＵＬＬ－ｗｉｄｔｈ  Ｔｅｘｔ", "café\u0301's__x", None])).to_pylist()
    assert out == ["full width text", "café\u0301 s x", ""]


def test_exact_normalization_is_configurable():
    texts = pa.array(["Hello,   World!", "hello, world!", "Hello World", "ＨＥＬＬＯ, world!"])
    default = exact_hashes(texts, ExactNormalization()).to_pylist()
    assert default[0] == default[1] == default[3] != default[2]
    loose = exact_hashes(texts, ExactNormalization(punctuation=True)).to_pylist()
    assert len(set(loose)) == 1
    strict = exact_hashes(texts, ExactNormalization(False, False, False, False)).to_pylist()
    assert len(set(strict)) == 4


@pytest.mark.parametrize("threshold,num_perm", [(0.8, 128), (0.5, 64), (0.9, 256)])
def test_banding_matches_datasketch_lsh(threshold, num_perm):
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert lsh_bands(threshold, num_perm) == (lsh.b, lsh.r)


def test_band_buckets_give_the_candidates_datasketch_lsh_gives():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(60)]
    base = [" ".join(rng.choice(words) for _ in range(80)) for _ in range(30)]
    texts = base + [" ".join(t.split()[:70]) + " " + " ".join(rng.choice(words) for _ in range(10)) for t in base]
    hasher = MinHasher(Shingler(3), num_perm=64, seed=5)
    bands, rows = lsh_bands(0.6, 64)
    signatures = hasher.signatures(pa.array(texts))
    keys = hasher.band_keys(signatures, bands, rows)
    lsh = MinHashLSH(threshold=0.6, num_perm=64)
    for i, sig in enumerate(signatures):
        lsh.insert(i, MinHash(num_perm=64, seed=5, hashvalues=sig, scheme="affine32"))
    for i, sig in enumerate(signatures):
        ours = {j for j in range(len(texts)) if (keys[j] == keys[i]).any()}
        assert ours == set(lsh.query(MinHash(num_perm=64, seed=5, hashvalues=sig, scheme="affine32"))), i


def test_pair_jaccard_is_exact_set_jaccard():
    rng = random.Random(11)
    words = [f"w{i}" for i in range(40)]
    left = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 60))) for _ in range(50)]
    right = [" ".join(t.split()[: rng.randint(0, 60)] + [rng.choice(words)]) for t in left]
    shingler = Shingler(2)
    got = pair_jaccard(shingler, pa.array(left), pa.array(right))
    for a, b, j in zip(left, right, got):
        x, y = set(shingler.shingles(a)), set(shingler.shingles(b))
        assert j == pytest.approx(len(x & y) / len(x | y))


def test_large_batches_are_hashed_in_chunks(monkeypatch):
    import udfs.dedup.minhash as minhash

    texts = pa.array([f"document number {i} " * 20 for i in range(300)])
    whole = MinHasher().signatures(texts)
    monkeypatch.setattr(minhash, "CHUNK_BYTES", 1000)
    np.testing.assert_array_equal(MinHasher().signatures(texts), whole)
