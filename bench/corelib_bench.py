"""core-lib's side of the sqlreg benchmark (run by sqlreg-bench, not by hand).

Runs the identical session through core-lib's SqlAlchemyConnectionFactory:

    with db.get() as session:
        session.query(Item).get(id)          # select (W2), fail-then-select (W3)
        session.add(Event(item_id=id))       # insert (W7)

usage: python corelib_bench.py TARGET OP OPS WARMUP ROWS [SQLITE_FILE]
  TARGET  sqlite-file | sqlite-memory | postgres | mariadb
  OP      select | fail-then-select | insert

Protocol with the Rust side: warm up, print "ready", wait for one line on
stdin, run OPS sessions, print {"ops": N, "elapsed": SECONDS} as JSON.
"""

import json
import logging
import os
import sys
import time
from urllib.parse import quote

from omegaconf import OmegaConf
from sqlalchemy import Column, Integer, String

from core_lib.connection.sql_alchemy_connection_factory import SqlAlchemyConnectionFactory
from core_lib.data_layers.data.db.sqlalchemy.base import Base

# core-lib logs every failed session with its traceback; an application
# would route that somewhere, the benchmark routes it nowhere.
logging.getLogger().addHandler(logging.NullHandler())


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True, autoincrement=False)
    name = Column(String(64), nullable=False)
    qty = Column(Integer, nullable=False)


class Event(Base):
    __tablename__ = "events"
    id = Column(Integer, primary_key=True, autoincrement=True)
    item_id = Column(Integer, nullable=False)


class Planned(Exception):
    """The W3 body's failure."""


def url_config(target, sqlite_file):
    env = os.environ
    server = {
        "username": env["SQLREG_TEST_USER"],
        # core-lib's build_url pastes the password in as is: encode it first.
        "password": quote(env["SQLREG_TEST_PASSWORD"], safe=""),
        "host": "127.0.0.1",
        "file": env["SQLREG_TEST_DATABASE"],
    }
    if target == "postgres":
        return dict(server, protocol="postgresql", port=int(env["SQLREG_TEST_PG_PORT"]))
    if target == "mariadb":
        return dict(server, protocol="mysql+pymysql", port=int(env["SQLREG_TEST_MARIADB_PORT"]))
    if target == "sqlite-file":
        # build_url strips leading slashes, so the path is relative to "/".
        os.chdir("/")
        return {"protocol": "sqlite", "file": sqlite_file}
    return {"protocol": "sqlite"}


def id_at(k, rows):
    return (k * 7919) % rows + 1


def select(db, item_id):
    with db.get() as session:
        if session.query(Item).get(item_id) is None:
            raise RuntimeError(f"row {item_id} not found")


def insert(db, item_id):
    with db.get() as session:
        session.add(Event(item_id=item_id))


def fail_then_select(db, item_id):
    try:
        with db.get() as session:
            session.query(Item).get(item_id)
            raise Planned()
    except Planned:
        pass
    select(db, item_id)


def main():
    target, op, ops, warmup, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    sqlite_file = sys.argv[6] if len(sys.argv) > 6 else ""
    memory = target == "sqlite-memory"
    config = OmegaConf.create({
        "log_queries": False,
        "create_db": memory,
        "session": {"pool_recycle": 3600, "pool_pre_ping": False, "pool_size": 5, "max_overflow": 10},
        "url": url_config(target, sqlite_file),
    })
    db = SqlAlchemyConnectionFactory(config)
    if memory:
        with db.get() as session:
            session.add_all(Item(id=i, name=f"item-{i}", qty=i % 97) for i in range(1, rows + 1))
    body = {"select": select, "fail-then-select": fail_then_select, "insert": insert}[op]
    for k in range(warmup):
        body(db, id_at(k, rows))
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for k in range(ops):
        body(db, id_at(k, rows))
    elapsed = time.perf_counter() - started
    print(json.dumps({"ops": ops, "elapsed": elapsed}), flush=True)


if __name__ == "__main__":
    main()
