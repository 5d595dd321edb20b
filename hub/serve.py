"""Serve the app with uvicorn on one or several worker processes.

With several workers each process binds its own socket with SO_REUSEPORT, so the
kernel spreads new connections across them by their address hash. uvicorn's own
supervisor shares one listening socket instead, and with keep-alive clients the
kernel hands nearly every connection to whichever worker is idle first: one
worker carried the whole load and the others sat at 0.1 s of CPU.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn


@dataclass(frozen=True)
class ServeOptions:
    """What every worker needs to start the same app on the same address."""

    app: str  # "module:factory"
    host: str
    port: int
    log_level: str
    proxy_headers: bool = True


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes may bind to the same address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
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


def _worker(options: ServeOptions) -> None:
    """One worker process: its own SO_REUSEPORT socket, one uvicorn server."""
    sock = reuseport_socket(options.host, options.port)
    uvicorn.Server(_config(options)).run(sockets=[sock])


def serve(options: ServeOptions, workers: int) -> None:
    """Run `workers` processes until SIGINT or SIGTERM; a worker that dies is restarted."""
    if workers <= 1:
        uvicorn.Server(_config(options)).run()
        return
    # Bind once in the supervisor first, so a port in use fails here with a clear error
    # instead of in every worker; the socket is closed before the workers start.
    reuseport_socket(options.host, options.port).close()
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(options,), daemon=False)
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    try:
        while not stopping:
            time.sleep(0.5)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
