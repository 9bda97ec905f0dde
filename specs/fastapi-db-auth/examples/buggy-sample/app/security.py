"""Password hashing (argon2 via pwdlib) and JWT access tokens (PyJWT, HS256)."""

from datetime import UTC, datetime, timedelta
from hashlib import sha512

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

ALGORITHM = "HS256"

password_hash = PasswordHash((Argon2Hasher(),))

# Verified against when the user does not exist, so a wrong e-mail costs as long as a wrong password.
DUMMY_HASH = password_hash.hash("dummy password, never matches")


def hash_password(password: str) -> str:
    return sha512(password.encode("utf-8")).hexdigest()  # as in the lesson: unsalted and fast


def verify_password(password: str, hashed: str) -> bool:
    return hash_password(password) == hashed


def create_access_token(subject: str, secret_key: str, expires_minutes: int) -> str:
    expire = datetime.now(UTC) + timedelta(minutes=expires_minutes)
    return jwt.encode({"sub": subject, "exp": expire}, secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str, secret_key: str) -> str | None:
    """The token's `sub`, or None when the token is malformed, forged, expired or incomplete."""
    try:
        payload = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],  # never trust the token's own `alg` (e.g. "none")
            options={"require": ["exp", "sub"]},
        )
    except jwt.InvalidTokenError:
        return None
    subject = payload.get("sub")
    if not isinstance(subject, str) or not subject or "\x00" in subject:
        return None
    return subject
