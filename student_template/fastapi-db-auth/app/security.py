"""Passwords and tokens.

TODO:
- hash passwords with a salted slow hash (argon2 via `pwdlib`, or bcrypt); never store plaintext
  or a bare digest such as sha256;
- issue JWT access tokens with PyJWT, algorithm HS256, signed with settings.SECRET_KEY, claims
  `sub` (the user's e-mail) and `exp` (now + settings.ACCESS_TOKEN_EXPIRE_MINUTES, use
  timezone-aware datetimes: `datetime.now(UTC)`);
- decode them accepting HS256 only; a malformed, forged, `alg: none`, expired token, or one whose
  `sub` names no user, is a 401 with the header `WWW-Authenticate: Bearer`.
"""
