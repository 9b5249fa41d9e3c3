"""What both benchmarks share: a fresh bench database and one gunicorn
server on a free port of 127.0.0.1, in the scaled-out configuration."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import dj_database_url
import psycopg
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SERVER_START_SECONDS = 30
SERVER_STOP_SECONDS = 10


class SetupFailed(Exception):
    """The bench could not prepare what it measures."""


def database_reset(database_url: str) -> None:
    """Drop and recreate the bench database, refusing any other database."""
    config = dj_database_url.parse(database_url)
    name = config.get("NAME") or ""
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise SetupFailed(f"DATABASE_URL must name a PostgreSQL database: {name!r}")
    if "bench" not in name:
        raise SetupFailed(
            f"refusing to drop {name!r}: the bench database's name must contain 'bench'"
        )

    try:
        with psycopg.connect(
            host=config.get("HOST") or "127.0.0.1",
            port=config.get("PORT") or 5432,
            user=config.get("USER") or "postgres",
            password=config.get("PASSWORD") or None,
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise SetupFailed(f"cannot recreate database {name!r}: {error}") from error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def server_start(
    port: int, database_url: str, cache_url: str, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """gunicorn with two sync workers, DEBUG off, sharing one cache in Redis
    (emptied first), and the site's own facilitator in-process."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "CACHE_URL": cache_url,
    }
    environment.pop("X402_FACILITATOR_URL", None)
    try:
        redis.Redis.from_url(cache_url).flushdb()
    except redis.RedisError as error:
        raise SetupFailed(f"cannot empty the cache {cache_url}: {error}") from error
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--workers", "2", "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level", "warning",
        "--no-control-socket",  # gunicorn 27's default one is shared per user
    ]  # fmt: skip
    # A process group of its own, so that stopping it reaches the workers.
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def server_wait(server: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SetupFailed(
                f"gunicorn exited with status {server.returncode}:\n{log_tail(log)}"
            )
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            probe.request("GET", "/health/live")
            if probe.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            probe.close()
        time.sleep(0.2)
    raise SetupFailed(
        f"/health/live did not answer within {SERVER_START_SECONDS} s:\n{log_tail(log)}"
    )


def server_stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]
