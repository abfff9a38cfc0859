"""The proof rule without a server: the digests of local bytes in every form an ETag or checksum takes, and when a
listing, a HEAD or the answer to a write proves that an object holds a file's bytes."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3_landing.discovery import MIB, RemoteObject
from s3_landing.transfer.proof import (
    EVERY_FORM,
    Digests,
    PartHasher,
    StoredObject,
    Wanted,
    compare_listed,
    compare_stored,
    digests_of_bytes,
    write_proof,
)

DATA = b"id|title\n1|x\n"
SHA256_B64 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
PART = 8 * MIB


def never() -> bool:
    raise AssertionError("the store's checksum check was asked for, though nothing needed it")


def big_digests(size: int = 2 * PART + 5) -> tuple[bytes, Digests]:
    data = os.urandom(size)
    hasher = PartHasher(size, EVERY_FORM)
    for start in range(0, size, 3 * MIB + 7):  # blocks that straddle the part boundaries
        hasher.update(data[start : start + 3 * MIB + 7])
    return data, hasher.result()


def test_parts_hash_as_s3_computes_a_multipart_etag_and_a_composite_checksum() -> None:
    data, digests = big_digests()
    parts = [data[offset : offset + PART] for offset in range(0, len(data), PART)]
    assert len(parts) == 3
    assert digests.multipart_etag == hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert digests.checksum == base64.b64encode(composite).decode() + "-3"
    assert (digests.md5, digests.sha256) == (hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


@settings(deadline=None, max_examples=25)  # each example hashes up to 30 MB twice: slower than hypothesis assumes
@given(st.lists(st.integers(min_value=1, max_value=5 * MIB), min_size=1, max_size=6))
def test_part_digests_do_not_depend_on_how_the_bytes_were_cut(blocks: list[int]) -> None:
    size = sum(blocks)
    data = bytes(range(256)) * (size // 256 + 1)
    cut, whole = PartHasher(size, EVERY_FORM), PartHasher(size, EVERY_FORM)
    position = 0
    for length in blocks:
        cut.update(data[position : position + length])
        position += length
    whole.update(data[:size])
    assert cut.result() == whole.result()


def test_a_single_put_is_proven_by_its_md5_and_its_full_checksum() -> None:
    digests = digests_of_bytes(DATA)
    assert digests.matches_etag(hashlib.md5(DATA).hexdigest())
    assert not digests.matches_etag("") and not digests.matches_etag(hashlib.md5(b"other").hexdigest())
    assert digests.checksum == SHA256_B64 and digests.matches_checksum(SHA256_B64)


def test_the_listing_decides_missing_other_size_and_proving_etags_and_leaves_the_rest_to_a_head() -> None:
    digests = digests_of_bytes(DATA)
    assert compare_listed(None, digests).status == "different"  # type: ignore[union-attr]
    assert compare_listed(RemoteObject(1, hashlib.md5(DATA).hexdigest()), digests).status == "different"  # type: ignore[union-attr]
    same = compare_listed(RemoteObject(len(DATA), hashlib.md5(DATA).hexdigest()), digests)
    assert same is not None and (same.status, same.proof) == ("same", "etag")
    assert compare_listed(RemoteObject(len(DATA), "e" * 32), digests) is None
    _, big = big_digests()
    assert compare_listed(RemoteObject(big.size, big.multipart_etag), big).status == "same"  # type: ignore[union-attr]
    assert compare_listed(RemoteObject(big.size, big.md5), big).status == "same"  # type: ignore[union-attr]


def stored(etag: str = "e" * 32, **fields: object) -> StoredObject:
    return StoredObject(**{"size": len(DATA), "etag": etag, **fields})  # type: ignore[arg-type]


def test_a_checksum_the_store_only_echoes_proves_nothing_and_an_md5_etag_of_other_bytes_is_a_difference() -> None:
    # rclone serve s3 keeps a client's x-amz-checksum-sha256 unchecked: equal to ours even when the bytes are not
    comparison = compare_stored(stored(checksum=SHA256_B64), digests_of_bytes(DATA), lambda: False)
    assert comparison.status == "different" and "MD5" in comparison.why


def test_a_checksum_proves_the_bytes_where_the_store_checks_checksums_or_the_object_is_kms_encrypted() -> None:
    digests = digests_of_bytes(DATA)
    assert compare_stored(stored(checksum=SHA256_B64), digests, lambda: True).proof == "checksum"
    kms = stored(checksum=SHA256_B64, encryption="aws:kms")
    assert compare_stored(kms, digests, never).proof == "checksum"
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    assert compare_stored(stored(checksum=other, encryption="aws:kms"), digests, never).status == "different"
    assert compare_stored(stored(customer_key=True), digests, never).status == "unverifiable"


def test_a_head_answers_what_it_can_and_never_guesses() -> None:
    digests = digests_of_bytes(DATA)
    assert compare_stored(stored(hashlib.md5(DATA).hexdigest()), digests, never).proof == "etag"
    assert compare_stored(StoredObject(missing=True), digests, never).status == "different"
    refused = compare_stored(StoredObject(refused=True), digests, never)
    assert refused.status == "unverifiable" and "s3:GetObject" in refused.why
    assert compare_stored(StoredObject(failure="HEAD failed"), digests, never).status == "unverifiable"
    assert compare_stored(stored(size=len(DATA) + 1), digests, never).status == "different"
    assert compare_stored(stored("e" * 32 + "-3"), digests, lambda: False).status == "unverifiable"
    assert compare_stored(stored(""), digests, lambda: False).status == "unverifiable"


@pytest.mark.parametrize(
    ("etag_matches", "sent", "checks", "proof"),
    [(True, True, False, "etag"), (False, True, True, "checksum"), (False, True, False, ""), (False, False, True, "")],
)
def test_a_write_is_proven_by_its_etag_or_by_a_store_that_checks_the_checksum_sent(
    etag_matches: bool, sent: bool, checks: bool, proof: str
) -> None:
    digests = digests_of_bytes(DATA)
    etag = hashlib.md5(DATA).hexdigest() if etag_matches else "e" * 32
    asked: list[bool] = []

    def checks_checksums() -> bool:
        asked.append(True)
        return checks

    assert write_proof(etag, digests, sent, checks_checksums) == proof
    assert asked == ([True] if sent and not etag_matches else [])  # asked only when it decides


def test_a_read_computes_only_the_digests_wanted() -> None:
    hasher = PartHasher(2 * PART, Wanted(sha256=False, part_md5s=True))
    hasher.update(bytes(2 * PART))
    digests = hasher.result()
    assert (len(digests.part_md5s), digests.part_sha256s, digests.sha256, digests.md5) == (2, [], "", "")
