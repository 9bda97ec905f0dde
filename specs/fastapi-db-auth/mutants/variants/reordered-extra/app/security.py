"""Passwords with bcrypt (over a SHA-256 pre-hash: bcrypt reads 72 bytes at most), JWT with PyJWT."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt

ALGORITHM = "HS256"
BCRYPT_ROUNDS = 12


def _prehash(password: str) -> bytes:
    digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    return base64.b64encode(digest)  # 44 bytes, no NUL: safe for bcrypt


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode("ascii")


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:  # not a bcrypt hash
        return False


DUMMY_HASH = hash_password("dummy password, never matches")


def create_access_token(subject: str, secret_key: str, expires_minutes: int) -> str:
    claims = {"exp": datetime.now(UTC) + timedelta(minutes=expires_minutes), "sub": subject}
    return jwt.encode(claims, secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str, secret_key: str) -> str | None:
    try:
        payload = jwt.decode(token, secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.InvalidTokenError:
        return None
    subject = payload.get("sub")
    if not isinstance(subject, str) or not subject or "\x00" in subject:
        return None
    return subject
