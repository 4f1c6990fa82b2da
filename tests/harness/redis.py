"""A real redis-server on a free loopback port, that tests can stop and start again.

server = RedisServer.start()        # redis-server from PATH (scripts/setup_redis.sh)
server.url                          # redis://127.0.0.1:PORT/0
server.stop(); server.restart()     # for fault tests: Redis killed mid-run
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from tests.harness.net import free_port, wait_for_port


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or did not start."""


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        server = cls(port=free_port())
        server.restart()
        return server

    def restart(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable("redis-server not on PATH: run scripts/setup_redis.sh")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(self.port, timeout=10):
            self.stop()
            raise RedisUnavailable(f"redis-server did not listen on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
