"""A credential on the wire between claudy and the parent."""

from __future__ import annotations

import pytest

from hal_common import credentials
from hal_common.credentials import Credential, CredentialError


def test_the_wire_document_round_trips_and_refuses_junk() -> None:
    cred = Credential("token", "file t", "sk-ant-oat01-w")
    assert credentials.from_wire(cred.wire()) == cred
    assert "sk-ant" not in repr(cred)
    for junk in (b"", b"[]", b'{"kind":"x"}', b'{"kind":"oauth","secret":"{}","source":"s"}'):
        with pytest.raises(CredentialError):
            credentials.from_wire(junk)
