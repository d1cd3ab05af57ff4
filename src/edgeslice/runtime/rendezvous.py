"""How the workers find each other: a TCP store bound to the master address, and a shared-token check.

torch's ``tcp://`` rendezvous makes rank 0 listen on *every* interface with no
authentication, even when the master address is 127.0.0.1.  Here rank 0 binds
the listening socket itself, to the master address only, and hands it to
:class:`torch.distributed.TCPStore` (``master_listen_fd``), so a loopback run
cannot be reached from another address.

On a loopback run, gloo's own listening sockets are put on the loopback
interface as well (``GLOO_SOCKET_IFNAME=lo`` unless set): by default gloo
binds to whatever this host's name resolves to.

A run whose master address is not a loopback address (several hosts, or the
emulated testbed's namespaces) needs a shared token (``--token`` or
``$EDGESLICE_TOKEN``).  Before any worker joins the process group, rank 0 puts
a fresh nonce in the store, every other rank answers with
``HMAC-SHA256(token, nonce, rank)``, rank 0 checks each answer and answers
back with its own proof, which every rank checks; a worker without the token
is refused by name, and no worker joins a master that lacks it.  The token
never travels.  What stays unprotected: the gloo traffic itself (tensors, in
plain TCP) and anyone who can read the token from the environment of a
worker; see README "Security".

Under torchrun's elastic agent (``TORCHELASTIC_USE_AGENT_STORE=True``) the
agent owns the store, and every rank connects to it as a client.

Example (a one-rank group on loopback)::

    >>> from edgeslice.runtime.rendezvous import is_loopback
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("10.77.0.1")
    (True, True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from datetime import timedelta

import torch.distributed as dist

from edgeslice.errors import EdgesliceError

TOKEN_ENV = "EDGESLICE_TOKEN"
_KEY = "edgeslice/rendezvous/"


class TokenError(EdgesliceError):
    """A worker (or rank 0) does not hold the run's shared token, or none was given for a multi-host run."""


def is_loopback(addr: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (``localhost``)."""
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(addr, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _listen(addr: str, port: int) -> socket.socket:
    """A listening socket on ``addr:port`` only (never the wildcard address)."""
    try:
        infos = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EdgesliceError(f"--master-addr {addr!r} does not resolve ({exc}); give this host's address") from None
    family, _, _, _, sockaddr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(sockaddr)
    except OSError as exc:
        s.close()
        raise EdgesliceError(f"rank 0 cannot listen on {addr}:{port} ({exc.strerror}); --master-addr must be an "
                             f"address of the host running rank 0, and --master-port a free port") from None
    s.listen(128)
    return s


def _proof(token: str, nonce: str, who: str) -> str:
    return hmac.new(token.encode(), f"{nonce}/{who}".encode(), hashlib.sha256).hexdigest()


def connect(addr: str, port: int, rank: int, world: int, timeout: float, token: str | None = None) -> dist.Store:
    """The store every rank of the run shares; the token is checked before the caller joins the group.

    ``token`` defaults to ``$EDGESLICE_TOKEN``; it is required when ``addr`` is not a loopback address.
    """
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(addr):
        raise TokenError(f"the master address {addr} is not a loopback address, so this run needs a shared token: "
                         f"give every worker the same --token or ${TOKEN_ENV} (e.g. `export {TOKEN_ENV}=$(openssl rand -hex 16)`)")
    if is_loopback(addr) and "GLOO_SOCKET_IFNAME" not in os.environ and "lo" in dict(socket.if_nameindex()).values():
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's own sockets on loopback too, not on what the hostname resolves to
    wait = timedelta(seconds=timeout)
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    if rank == 0 and not agent:
        sock = _listen(addr, port)
        try:
            store = dist.TCPStore(addr, port, world, True, wait, wait_for_workers=False, master_listen_fd=sock.fileno())
        except BaseException:
            sock.close()
            raise
        sock.detach()  # the store serves on this descriptor from now on (closing it here would stop the store)
    else:
        try:
            store = dist.TCPStore(addr, port, world, False, wait)
        except RuntimeError as exc:
            raise EdgesliceError(f"rank {rank} could not reach the master at {addr}:{port} within {timeout:g} s "
                                 f"({str(exc).splitlines()[0][:160]}); is rank 0 running, and are --master-addr/--master-port "
                                 f"the same for every worker?") from None
    if token is not None:
        _check_token(store, token, rank, world, timeout)
    return store


def _check_token(store: dist.Store, token: str, rank: int, world: int, timeout: float) -> None:
    store.set_timeout(timedelta(seconds=timeout))
    if rank == 0:
        nonce = secrets.token_hex(16)
        store.set(_KEY + "nonce", nonce)
        for r in range(1, world):
            answer = store.get(_KEY + f"proof/{r}").decode(errors="replace")
            if not hmac.compare_digest(answer, _proof(token, nonce, f"rank{r}")):
                store.set(_KEY + "verdict", "refused")
                raise TokenError(f"rank {r} does not hold this run's token and was refused; give every worker the "
                                 f"same --token or ${TOKEN_ENV}")
        store.set(_KEY + "verdict", _proof(token, nonce, "master"))
        return
    nonce = store.get(_KEY + "nonce").decode(errors="replace")
    store.set(_KEY + f"proof/{rank}", _proof(token, nonce, f"rank{rank}"))
    verdict = store.get(_KEY + "verdict").decode(errors="replace")
    if not hmac.compare_digest(verdict, _proof(token, nonce, "master")):
        raise TokenError(f"rank {rank}: the master refused this worker's token, or does not hold it; give every worker "
                         f"the same --token or ${TOKEN_ENV}")
