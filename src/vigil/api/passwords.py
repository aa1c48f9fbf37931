"""Password hashing (argon2id) and the strength rule for passwords people choose.

The rule is deliberately simple and explainable (NIST SP 800-63B style): long enough,
not one of the passwords every attacker tries first, not the user name. No composition
rules ("one digit, one symbol"): they make passwords harder to remember, not to guess.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing cost is bounded anyway; this bounds memory and log lines

# Common passwords of at least MIN_LENGTH characters (shorter ones fail the length rule
# already), from the top of public breach-frequency lists, compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789012345",
        "1234567890qwerty",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "1qaz2wsx3edc4rfv",
        "000000000000",
        "111111111111",
        "123123123123",
        "121212121212",
        "abcdefghijkl",
        "abcd1234abcd",
        "abc123abc123",
        "adminadmin123",
        "administrator",
        "administrator1",
        "admin1234567",
        "admin123456789",
        "changeme1234",
        "changemenow!",
        "default12345",
        "iloveyou1234",
        "letmein12345",
        "letmeinplease",
        "login1234567",
        "monkey123456",
        "passw0rd1234",
        "password1234",
        "password12345",
        "password123456",
        "password1234!",
        "password!234",
        "passwordpassword",
        "p@ssw0rd1234",
        "p@ssword1234",
        "qazwsxedcrfv",
        "qwerty123456",
        "qwertyuiop12",
        "qwertyuiopas",
        "qwertyuiopasdf",
        "qwertyuiop[]",
        "qwerty12345678",
        "q1w2e3r4t5y6",
        "security1234",
        "superman1234",
        "sunshine1234",
        "trustno1trustno1",
        "welcome12345",
        "welcome123456",
        "zaq12wsxcde3",
        "zxcvbnm12345",
        "asdfghjkl123",
        "1234qwerasdf",
        "camera123456",
        "hikvision123",
        "dahua1234567",
        "surveillance",
        "surveillance1",
        "vigilvigil12",
        "nvr123456789",
        "dvr123456789",
        "xc3511xc3511",
    }
)


class WeakPasswordError(ValueError):
    """The password does not meet the rule; the message says which part and why."""


def check_password_strength(password: str, username: str) -> None:
    """Raise ``WeakPasswordError`` unless ``password`` is acceptable for ``username``."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"the password must be at most {MAX_LENGTH} characters long")
    low = password.lower()
    if low in COMMON_PASSWORDS:
        raise WeakPasswordError("this password is one of the most common ones; choose another")
    if low == username.lower() or low.strip() == username.lower():
        raise WeakPasswordError("the password must not be the user name")
    if len(set(password)) < 4:
        raise WeakPasswordError("the password must not be a few characters repeated")


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, t=3)."""
    return PasswordHasher()


def fast_hasher() -> PasswordHasher:
    """Cheap argon2id parameters for tests only (hashes are upgraded on the next login
    with the default hasher, see :func:`verify_password`)."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def hash_password(hasher: PasswordHasher, password: str) -> str:
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """True if ``password`` matches ``stored``; any malformed hash counts as a mismatch
    (a corrupted row must not become a way in, nor a 500)."""
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random secret, verified against when the user name is unknown so an
    unknown name costs as much time as a wrong password (no user enumeration by timing)."""
    return hasher.hash(secrets.token_urlsafe(32))
