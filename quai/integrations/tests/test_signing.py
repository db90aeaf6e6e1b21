"""Signatures against the Standard Webhooks reference vectors (the specification's reference libraries' tests)."""

from __future__ import annotations

import base64

from standardwebhooks.webhooks import Webhook

from quai.integrations.signing import SECRET_PREFIX, secret_generate, signature, signed_headers

# From standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py (test_sign_function), the same
# vector the other languages' reference libraries test.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_of_the_reference_vector_is_the_reference_signature():
    assert signature(secret=VECTOR_SECRET, msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )


def test_the_reference_vector_signs_the_same_with_or_without_the_whsec_prefix():
    bare = VECTOR_SECRET.removeprefix(SECRET_PREFIX)
    assert signature(secret=bare, msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_headers_carry_the_id_the_timestamp_and_the_signature():
    headers = signed_headers(secrets=[VECTOR_SECRET], msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }


def test_during_a_rotation_both_signatures_are_sent_space_separated_and_each_verifies():
    new = secret_generate()
    headers = signed_headers(
        secrets=[new, VECTOR_SECRET], msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY
    )
    first, second = headers["webhook-signature"].split(" ")
    assert second == VECTOR_SIGNATURE
    assert first == signature(secret=new, msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY)


def test_a_generated_secret_is_whsec_and_32_random_bytes_and_verifies_with_the_reference_library():
    secret = secret_generate()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != secret_generate()
    import time

    now = int(time.time())
    headers = signed_headers(secrets=[secret], msg_id="evt_1", timestamp=now, body='{"a":1}')
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}


def test_the_signature_is_the_reference_librarys_on_random_secrets_ids_and_bodies():
    import random

    from quai.integrations.signing import signature_reference

    rng = random.Random(5)
    bodies = [VECTOR_BODY, "", '{"é":"ü","emoji":"🚚"}', '{"a":' + "9" * 3000 + "}"]
    for index in range(200):
        secret = secret_generate() if index % 3 else SECRET_PREFIX + base64.b64encode(rng.randbytes(24)).decode()
        if index % 5 == 0:
            secret = secret.removeprefix(SECRET_PREFIX).rstrip("=")  # bare and unpadded: the package adds the padding
        msg_id, timestamp = f"evt_{rng.getrandbits(64):x}", rng.randrange(0, 4_000_000_000)
        body = bodies[index % len(bodies)] + str(index)
        assert signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) == signature_reference(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        )
    assert (
        signature_reference(secret=VECTOR_SECRET, msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY)
        == VECTOR_SIGNATURE
    )
