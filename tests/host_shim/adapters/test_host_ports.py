"""Host ports taken by another program: seen by a bind before the parent is made, and read
from the engine's refusal when it is made anyway."""

from __future__ import annotations

import socket

from host_shim.adapters.host_ports import clash, local_engine, prober


def test_a_listening_port_is_taken_a_free_one_is_not() -> None:
    taken = prober("127.0.0.1", None)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert taken(port)
    assert not taken(port)  # closed: free again
    assert not prober("127.0.0.1", "tcp://remote:2376")(port)  # a remote engine: unknown


def test_the_engines_refusals_name_the_port() -> None:
    assert (
        clash(
            "500 Server Error: driver failed programming external connectivity on endpoint "
            "hal9000-parent (0a1b): Bind for 127.0.0.1:47100 failed: port is already allocated"
        )
        == 47100
    )
    assert (
        clash(
            "Error starting userland proxy: listen tcp4 127.0.0.1:47105: "
            "bind: address already in use"
        )
        == 47105
    )
    assert clash("no such image") is None
    assert local_engine("unix:///var/run/docker.sock") and not local_engine("ssh://h")
