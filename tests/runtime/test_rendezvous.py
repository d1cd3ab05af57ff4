"""The rendezvous: rank 0's store listens on the master address only, and a shared token is checked both ways.

The ranks here are threads of this process, each with its own TCPStore
client (what a worker process holds); no process group is formed.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from edgeslice.runtime import rendezvous
from edgeslice.runtime.launch import free_port
from edgeslice.runtime.rendezvous import TokenError


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


def _ranks(world: int, tokens: list[str | None], addr: str = "127.0.0.1", timeout: float = 10.0):
    """Connect ``world`` ranks at once; return (stores or None, errors or None, the port)."""
    port = free_port()
    stores: list = [None] * world
    errors: list = [None] * world

    def one(r):
        try:
            stores[r] = rendezvous.connect(addr, port, r, world, timeout, tokens[r])
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            errors[r] = exc

    threads = [threading.Thread(target=one, args=(r,)) for r in range(world)]
    threads[0].start()
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(timeout + 20)
    return stores, errors, port


def test_the_store_listens_on_the_master_address_only():
    stores, errors, port = _ranks(2, [None, None])
    assert errors == [None, None]
    try:
        stores[1].set("k", "v")
        assert stores[0].get("k") == b"v"
        # 0100007F is 127.0.0.1; the wildcard would be 00000000 (or :: in tcp6)
        assert _listening(port) == {"0100007F"}, _listening(port)
    finally:
        del stores


def test_a_loopback_run_puts_gloo_on_the_loopback_interface(monkeypatch):
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    stores, errors, _ = _ranks(1, [None])
    assert errors == [None]
    import os

    assert os.environ["GLOO_SOCKET_IFNAME"] == "lo"


def test_the_same_token_joins_every_rank():
    stores, errors, _ = _ranks(3, ["s3cret"] * 3)
    assert errors == [None, None, None]
    assert all(s is not None for s in stores)


@pytest.mark.parametrize("tokens,refused", [
    (["right", "wrong"], {0, 1}),           # rank 0 names rank 1; rank 1 hears it was refused
    (["right", "right", "wrong"], {0, 2}),  # rank 1 is refused too: it never joins a group rank 0 refused
])
def test_a_worker_without_the_token_is_refused_by_name(tokens, refused):
    _, errors, _ = _ranks(len(tokens), tokens)
    failed = {r for r, e in enumerate(errors) if e is not None}
    assert refused <= failed, errors
    assert all(isinstance(e, TokenError) for e in errors if e is not None), errors
    bad = next(r for r, t in enumerate(tokens) if t == "wrong")
    assert f"rank {bad} does not hold this run's token" in str(errors[0])


def test_a_multi_host_address_needs_a_token(monkeypatch):
    monkeypatch.delenv(rendezvous.TOKEN_ENV, raising=False)
    with pytest.raises(TokenError, match="needs a shared token.*--token or \\$EDGESLICE_TOKEN"):
        rendezvous.connect("10.77.0.1", 1, 1, 2, 1.0)


def test_loopback_names():
    assert rendezvous.is_loopback("127.0.0.1") and rendezvous.is_loopback("::1") and rendezvous.is_loopback("localhost")
    assert not rendezvous.is_loopback("10.0.0.1") and not rendezvous.is_loopback(socket.gethostname() + ".invalid")
