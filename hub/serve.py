"""Serve the app with uvicorn on one or several worker processes.

With several workers the supervisor holds the one listening socket, accepts each
connection and hands it to the workers in turn (round robin) over a Unix socket
(SCM_RIGHTS); each worker serves the connections it is handed. Every worker thus gets
its share of the connections, whatever their addresses and whenever they arrive.

Why not let the kernel choose (issue 16): with one shared listening socket (uvicorn's
own supervisor) whichever worker is idle first accepts a whole burst of connections, and
with keep-alive clients it keeps them: one worker carried the whole load and the other
sat at 0.1 s of CPU. One SO_REUSEPORT socket per worker spreads connections by a hash of
their addresses instead, which is fair only on average: of 16 connections, one worker got
5 or fewer (under 35% of the load) in 26% of 200 tries on this machine (2 or 3 in 2.5%).
Handing connections out in turn gives each of N workers 16/N of them, every time, at the
cost of one accept and one sendmsg in the supervisor per new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

HANDED = b"c"  # the byte that carries each handed connection


@dataclass(frozen=True)
class ServeOptions:
    """What every worker needs to start the same app on the same address."""

    app: str  # "module:factory"
    host: str
    port: int
    log_level: str
    proxy_headers: bool = True


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _config(options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        options.app,
        factory=True,
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        log_config=None,  # uvicorn logs through the hub's redacting pipeline (hub.logs)
        access_log=False,  # hub.accesslog logs each request, without its query string
        proxy_headers=options.proxy_headers,
    )


class HandedServer(uvicorn.Server):
    """A uvicorn server without a listening socket: it serves the connections the
    supervisor hands it over `channel`, and stops when the supervisor goes away."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan; no socket of its own
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            # As uvicorn's own startup builds each connection's protocol.
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )
            return made

        async def serve(conn: socket.socket) -> None:
            try:
                await loop.connect_accepted_socket(protocol, conn, ssl=config.ssl)
            except OSError:
                conn.close()  # the client left before it was served

        def receive() -> None:
            while True:
                try:
                    message, fds, _, _ = socket.recv_fds(self.channel, 64, 64)
                except BlockingIOError:
                    return
                except OSError:
                    message, fds = b"", []
                if not message and not fds:  # the supervisor is gone: stop
                    loop.remove_reader(self.channel.fileno())
                    self.should_exit = True
                    return
                for fd in fds:
                    conn = socket.socket(fileno=fd)
                    conn.setblocking(False)
                    task = loop.create_task(serve(conn))
                    self.server_state.tasks.add(task)
                    task.add_done_callback(self.server_state.tasks.discard)

        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), receive)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        self.channel.close()  # the supervisor hands the next connections to the others
        await super().shutdown(sockets=sockets)


def _worker(options: ServeOptions, channel: socket.socket) -> None:
    """One worker process: serves what the supervisor hands it."""
    HandedServer(_config(options), channel).run()


class Dispatcher:
    """The supervisor's accept loop (a thread): each connection to the next live worker."""

    def __init__(self, listener: socket.socket, workers: int) -> None:
        self.listener = listener
        self.channels: list[socket.socket | None] = [None] * workers
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.handed = [0] * workers  # connections handed to each worker (logs, tests)
        self._turns = itertools.cycle(range(workers))
        self._thread = threading.Thread(target=self._run, name="hub-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def attach(self, index: int, channel: socket.socket) -> None:
        channel.setblocking(False)  # a worker whose queue is full is skipped, never waited for
        with self.lock:
            old, self.channels[index] = self.channels[index], channel
        if old is not None:
            old.close()

    def _run(self) -> None:
        self.listener.settimeout(0.5)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                time.sleep(0.05)  # e.g. out of file descriptors: try again shortly
                continue
            with conn:
                self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        """To the next worker in turn; a worker that is gone is skipped (and restarted)."""
        for _ in range(len(self.channels)):
            index = next(self._turns)
            with self.lock:
                channel = self.channels[index]
            if channel is None:
                continue
            try:
                socket.send_fds(channel, [HANDED], [conn.fileno()])
            except OSError:
                continue  # its process ended; the supervisor restarts it
            self.handed[index] += 1
            return
        # No worker alive: the connection is closed (the client retries).

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=5)
        self.listener.close()
        with self.lock:
            for channel in self.channels:
                if channel is not None:
                    channel.close()


def serve(options: ServeOptions, workers: int) -> None:
    """Run `workers` processes until SIGINT or SIGTERM; a worker that dies is restarted."""
    if workers <= 1:
        uvicorn.Server(_config(options)).run()
        return
    # Bound here first, so that a port in use fails with a clear error before any worker.
    dispatcher = Dispatcher(listening_socket(options.host, options.port), workers)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(index: int) -> BaseProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = context.Process(target=_worker, args=(options, theirs), daemon=False)
        process.start()
        theirs.close()  # the worker has its own copy now
        dispatcher.attach(index, ours)
        return process

    processes: list[Any] = [start(index) for index in range(workers)]
    dispatcher.start()
    try:
        while not stopping:
            time.sleep(0.5)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    processes[index] = start(index)
    finally:
        dispatcher.stop()  # no more connections; each worker finishes what it has
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
