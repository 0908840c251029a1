"""The deployment's key for personal data (command.keys): found, created, refused."""

import doctest
import stat

import pytest

from command import keys
from command.config import ConfigError
from command.errors import DomainError


def test_first_process_creates_a_private_key_file(tmp_path):
    ring, to_store = keys.open_keyring(env_secret=None, data_dir=tmp_path, stored_fingerprint=None)
    path = tmp_path / keys.KEY_FILE
    assert ring.available and to_store == ring.fingerprint
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, stored = keys.open_keyring(env_secret=None, data_dir=tmp_path,
                                      stored_fingerprint=to_store)
    assert again.fingerprint == ring.fingerprint and stored is None
    assert again.decrypt(ring.encrypt("13812341234")) == "13812341234"


def test_another_key_is_refused(tmp_path):
    _, fp = keys.open_keyring(env_secret=None, data_dir=tmp_path, stored_fingerprint=None)
    with pytest.raises(keys.KeyMismatch, match=fp):
        keys.open_keyring(env_secret="y" * 40, data_dir=tmp_path, stored_fingerprint=fp)


def test_no_key_but_a_fingerprint_starts_without_a_key(tmp_path):
    ring, to_store = keys.open_keyring(env_secret=None, data_dir=tmp_path,
                                       stored_fingerprint="0123456789abcdef")
    assert not ring.available and to_store is None
    assert not (tmp_path / keys.KEY_FILE).exists()
    with pytest.raises(DomainError) as info:
        ring.encrypt("x")
    assert info.value.code == "unavailable" and info.value.http_status == 503


def test_env_secret_wins_and_must_be_long(tmp_path):
    ring, fp = keys.open_keyring(env_secret="z" * 32, data_dir=tmp_path, stored_fingerprint=None)
    assert ring.source == "CMDCENTER_SECRET_KEY" and fp == keys.fingerprint(b"z" * 32)
    assert not (tmp_path / keys.KEY_FILE).exists()
    with pytest.raises(ConfigError, match="at least 32"):
        keys.open_keyring(env_secret="short", data_dir=tmp_path, stored_fingerprint=None)


def test_ciphertexts_differ_and_index_is_keyed():
    a, b = keys.Keyring(b"a" * 32), keys.Keyring(b"b" * 32)
    assert a.encrypt("x") != a.encrypt("x")
    assert a.index("x") == a.index("x") != b.index("x")
    assert "a" * 32 not in repr(a)


def test_the_docstring_examples_hold():
    result = doctest.testmod(keys)
    assert result.failed == 0 and result.attempted > 0
