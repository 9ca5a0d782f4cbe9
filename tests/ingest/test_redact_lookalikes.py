"""What looks like a secret but is data stays untouched: hashes and digests, UUIDs, base64 data,
integrity strings, placeholders, versions, long identifiers.

The data is made here from real files and real tools (hashlib over this interpreter, base64 of a
binary, ``pip list -v``), not written by hand, so its shape is what real output has.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from debugtrace.ingest.redact import Redactor

REDACTOR = Redactor()
BINARY = Path(sys.executable).resolve().read_bytes()[: 256 * 1024]


def digest_lines() -> str:
    chunks = [BINARY[i : i + 4096] for i in range(0, len(BINARY), 4096)]
    lines = []
    for i, chunk in enumerate(chunks):
        sha512 = base64.b64encode(hashlib.sha512(chunk).digest()).decode()
        lines += [
            f'      "integrity": "sha512-{sha512}",',
            f"    --hash=sha256:{hashlib.sha256(chunk).hexdigest()} \\",
            f"sha256:{hashlib.sha256(chunk).hexdigest()}  layer {i}",
            f"commit {hashlib.sha1(chunk).hexdigest()}",
            f"request-id: {uuid.UUID(bytes=hashlib.md5(chunk).digest())}",
            f"ETag: {base64.urlsafe_b64encode(hashlib.sha256(chunk).digest()).decode()}",
        ]
    return "\n".join(lines) + "\n"


LOOK_ALIKES = {
    "digests, integrity strings, commit ids, UUIDs": digest_lines,
    "wrapped base64 of a binary": lambda: base64.encodebytes(BINARY).decode(),
    "a data URI": lambda: "data:image/png;base64," + base64.b64encode(BINARY[:3000]).decode(),
    "pip list -v": lambda: (
        subprocess.run(
            [sys.executable, "-m", "pip", "list", "-v"], capture_output=True, text=True
        ).stdout
    ),
    "placeholders and versions": lambda: (
        "API_KEY=your-api-key-here\nOPENAI_API_KEY=sk-" + "x" * 48 + "\ntoken: <TOKEN>\n"
        'password=${SECRET}\nDB_PASSWORD=changeme\n"js-tokens": "^4.0.0",\n'
        "detect-secrets==1.5.0\nsecret_key = settings.SECRET_KEY\n"
    ),
    "long identifiers": lambda: (
        "AbstractSingletonProxyFactoryBean2Configuration\n"
        "test_token_refresh_after_expiry_with_Retry3Times\n"
        "io.github.example.MyVeryLongClassName4Testing.method\n"
    ),
}


@pytest.mark.parametrize("name", list(LOOK_ALIKES))
def test_look_alikes_are_not_secrets(name: str) -> None:
    text = LOOK_ALIKES[name]()
    assert text.strip()
    redacted, counts = REDACTOR.redact(text)
    assert counts == {}, [f for f in REDACTOR.find(text)][:3]
    assert redacted == text
