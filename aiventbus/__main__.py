"""python -m aiventbus: start the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import sys
from collections.abc import Coroutine
from typing import Any

from aiventbus import __version__
from aiventbus.config import Config, load_config
from aiventbus.errors import AiventbusError, ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aiventbus", description="Run the aiventbus daemon.")
    parser.add_argument("--config", metavar="PATH", help="config file (default: search path, see README)")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="version", version=f"aiventbus {__version__}")
    return parser.parse_args(argv)


def setup_logging(config: Config, level: str) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers.append(
        logging.handlers.RotatingFileHandler(
            config.state_dir / "aiventbus.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        if args.host:
            config.server.host = args.host
        if args.port is not None:
            config.server.port = args.port
    except ConfigError as error:
        print(f"aiventbus: config error: {error.detail}", file=sys.stderr)
        return 2
    except Exception as error:  # a validation error from an override
        print(f"aiventbus: config error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    setup_logging(config, args.log_level)
    from aiventbus.api.app import run_daemon

    try:
        run_loop(run_daemon(config))
    except AiventbusError as error:  # the data dir is locked, the port is taken...
        print(f"aiventbus: {error.detail}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"aiventbus: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed, else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


if __name__ == "__main__":
    sys.exit(main())
