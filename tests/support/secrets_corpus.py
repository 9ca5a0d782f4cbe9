# ruff: noqa: E501  (a data file: samples stay on one line, as they would appear)
"""A corpus of real-looking secrets and of look-alikes that are not secrets, for redaction tests.

Every secret is fake: generated from a fixed seed in the documented format of its issuer (AWS's
own documentation example keys included). Each positive sample is a line as it would appear in a
command's output, a diff or a note, with the secret value(s) it holds; each negative sample holds
no secret but looks like one to a careless detector (hashes, UUIDs, base64 images, identifiers,
placeholders).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

_rng = random.Random(20261126)
ALNUM = string.ascii_letters + string.digits


def _tok(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Sample:
    text: str
    secrets: tuple[str, ...] = ()
    kind: str = ""


AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS documentation's example
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS documentation's example
GH = "ghp_" + _tok(36)
GH_FINE = "github_pat_" + _tok(22) + "_" + _tok(59)
GL = "glpat-" + _tok(20)
SLACK_BOT = f"xoxb-{_tok(12, string.digits)}-{_tok(13, string.digits)}-{_tok(24)}"
SLACK_HOOK = f"https://hooks.slack.com/services/T{_tok(8)}/B{_tok(8)}/{_tok(24)}"
OPENAI = "sk-proj-" + _tok(56)
OPENAI_OLD = "sk-" + _tok(48)
ANTHROPIC = "sk-ant-api03-" + _tok(80)
STRIPE = "sk_live_" + _tok(24)
GOOGLE = "AIza" + _tok(35)
NPM = "npm_" + _tok(36)
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ." + _tok(
    43
)
PEM_BODY = "\n".join(_tok(64, ALNUM + "+/") for _ in range(6))
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
TWILIO = "SK" + _tok(32, "0123456789abcdef")
SENDGRID = f"SG.{_tok(22)}.{_tok(43)}"
GENERIC = _tok(40)
DJANGO = _tok(50, ALNUM + "!@#%^&*(-_=+)")
SSH_BODY = _tok(70)
BASIC = _tok(16)
GH_CLASSIC_HEX = _tok(40, "0123456789abcdef")
HF = "hf_" + _tok(34)

POSITIVES = [
    Sample(f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}", (AWS_KEY_ID,), "aws-access-key-id"),
    Sample(f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", (AWS_SECRET,), "aws-secret-key"),
    Sample(f'aws_secret_access_key = "{AWS_SECRET}"', (AWS_SECRET,), "aws-secret-key"),
    Sample(f"[default]\naws_access_key_id = {AWS_KEY_ID}", (AWS_KEY_ID,), "aws-access-key-id"),
    Sample(f"remote: https://{GH}@github.com/acme/app.git", (GH,), "github-token"),
    Sample(f"GITHUB_TOKEN={GH}", (GH,), "github-token"),
    Sample(f"Using token {GH_FINE} for the API", (GH_FINE,), "github-token"),
    Sample(f'gitlab:\n  token: "{GL}"', (GL,), "gitlab-token"),
    Sample(f"curl -H 'PRIVATE-TOKEN: {GL}' https://gitlab.example.com/api/v4", (GL,), ""),
    Sample(f"SLACK_BOT_TOKEN={SLACK_BOT} python notify.py", (SLACK_BOT,), "slack-token"),
    Sample(f"posting to {SLACK_HOOK}", (SLACK_HOOK,), "slack-webhook"),
    Sample(f"openai.AuthenticationError: Incorrect API key provided: {OPENAI}", (OPENAI,), ""),
    Sample(f"OPENAI_API_KEY={OPENAI_OLD}", (OPENAI_OLD,), "openai-key"),
    Sample(f"client = Anthropic(api_key='{ANTHROPIC}')", (ANTHROPIC,), "anthropic-key"),
    Sample(f"stripe.api_key = '{STRIPE}'", (STRIPE,), "stripe-key"),
    Sample(f"GET https://maps.googleapis.com/maps/api/geocode/json?key={GOOGLE}", (GOOGLE,), ""),
    Sample(f"//registry.npmjs.org/:_authToken={NPM}", (NPM,), "npm-token"),
    Sample(f"Authorization: Bearer {JWT}", (JWT,), ""),
    Sample(f"session cookie: {JWT}", (JWT,), "jwt"),
    Sample(PEM, (PEM_BODY.splitlines()[0], PEM_BODY.splitlines()[-1]), "private-key"),
    Sample(
        f"+-----BEGIN OPENSSH PRIVATE KEY-----\n+{SSH_BODY}\n+-----END OPENSSH PRIVATE KEY-----",
        (SSH_BODY,),
        "private-key",
    ),
    Sample("DATABASE_URL=postgresql://app:Sup3rS3cret!@db:5432/app", ("Sup3rS3cret!",), ""),
    Sample("redis://:hunter2hunter2@cache.internal:6379/0", ("hunter2hunter2",), "url-password"),
    Sample("git clone https://deploy:gL9xq2mZ7vKc@git.example.com/app.git", ("gL9xq2mZ7vKc",)),
    Sample("DB_PASSWORD=correct-horse-battery", ("correct-horse-battery",), "secret-assignment"),
    Sample('"password": "Tr0ub4dor&3x"', ("Tr0ub4dor&3x",), "secret-assignment"),
    Sample(
        "client_secret: 9f8e7d6c5b4a39281706f5e4d3c2b1a0", ("9f8e7d6c5b4a39281706f5e4d3c2b1a0",)
    ),
    Sample("export API_TOKEN=tok_81hdb2kd9snw", ("tok_81hdb2kd9snw",), "secret-assignment"),
    Sample(f"SECRET_KEY = '{DJANGO}'", (DJANGO,)),
    Sample(f"twilio client created with {TWILIO}", (TWILIO,), ""),
    Sample(f"SENDGRID_API_KEY={SENDGRID}", (SENDGRID,), ""),
    Sample(f"the signing key is {GENERIC} (rotate it)", (GENERIC,), "high-entropy"),
    Sample(f"curl -u admin:{BASIC} https://jenkins.internal/api", (BASIC,)),
    Sample(
        f'curl -H "Authorization: token {GH_CLASSIC_HEX}" https://api.github.com',
        (GH_CLASSIC_HEX,),
        "authorization-header",
    ),
    Sample(
        "Authorization: Basic dXNlcjpodW50ZXIyaHVudGVyMg==",
        ("dXNlcjpodW50ZXIyaHVudGVyMg==",),
        "authorization-header",
    ),
    Sample("X-API-KEY: sk_9f8e7d6c5b4a3f2e1d0c", ("sk_9f8e7d6c5b4a3f2e1d0c",)),
    Sample("mysql --password Sup3rS3cret! -h db", ("Sup3rS3cret!",), "secret-flag"),
    Sample(f"HF_TOKEN is {HF}", (HF,), "huggingface-token"),
    Sample("https://user:p@ss@host.example.com/", ("p@ss",), "url-password"),
]
NEGATIVES = [
    Sample("commit 3f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"),
    Sample("index 5df2688..b62d21c 100644"),
    Sample("sha256:9b2c1e6b0a5f3d4c8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e"),
    Sample(
        '"integrity": "sha512-Rp0Zt2PZ7OEDs3W4C3JwYUpJk9MsRTcRhB9yFMiJ6H5V0Uk9VnbZn1F+3bTi5wQnPx2RdGl0wy3f0A7pSBXzyg=="'
    ),
    Sample("request id 123e4567-e89b-12d3-a456-426614174000 done"),
    Sample(
        '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==">'
    ),
    Sample("tests/test_calc.py::test_divide_by_zero_raises_value_error PASSED"),
    Sample(
        'File "/usr/lib/python3.11/site-packages/pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so"'
    ),
    Sample("KeyError: 'password'"),
    Sample("DB_PASSWORD=${DB_PASSWORD}"),
    Sample("password = os.environ['DB_PASSWORD']"),
    Sample("api_key: <your-api-key>"),
    Sample("token = None"),
    Sample("SECRET_KEY = settings.SECRET_KEY"),
    Sample("AWS_SECRET_ACCESS_KEY=****************"),
    Sample("git clone https://github.com/acme/app.git"),
    Sample("postgresql://postgres@127.0.0.1:5432/test"),
    Sample("mailto:jane.doe@example.org"),
    Sample("Successfully installed pydantic-2.9.2 pydantic-core-2.23.4 typing-extensions-4.12.2"),
    Sample(
        "docker pull python:3.12-slim@sha256:2d1b0f8ba4a54ab6c3e1bd13bc0bc98fd4f6c2d36d8af41ad0d9ef00ad0a5a3b"
    ),
    Sample("ValueError: invalid literal for int() with base 10: 'abc'"),
    Sample("def test_token_refresh_after_expiry(client, frozen_time):"),
    Sample("+    if b == 0:\n+        raise ValueError('division by zero')"),
    Sample("pip download --no-deps torch==2.4.1+cu121 -d wheels/"),
    Sample("AssertionError: assert 'x' == 'y'"),
    Sample("Ran 1543 tests in 12.345s\n\nOK (skipped=12)"),
    Sample("npm WARN deprecated inflight@1.0.6: This module is not supported"),
    Sample("ModuleNotFoundError: No module named 'tokenizers'"),
    Sample("export PATH=/usr/local/bin:$PATH"),
    Sample("pytest -k 'test_password_reset and not slow' -q"),
    Sample("jobs: build_and_test_linux_x86_64_python311_postgres15"),
    Sample("The quick brown fox jumps over the lazy dog 1234567890 times"),
    Sample("eth0: inet 10.0.0.12 netmask 255.255.255.0 broadcast 10.0.0.255"),
    Sample("Compiled 128 modules in 3.2s (webpack 5.94.0) main.8f3a2b1c9d0e.js 512 KiB"),
    Sample("uuid4().hex -> '6f1c2b3a4d5e6f708192a3b4c5d6e7f8'"),
    Sample("CSRF_COOKIE_NAME = 'csrftoken'"),
    Sample("token_count: 4096 tokens used"),
    Sample("passwd: changeme"),
    Sample("x-amz-request-id: 4442587FB7D0A2F9"),
    Sample("SomeVeryLongCamelCaseIdentifierNameForTesting = 1"),
]
