"""Helpers of the batch jobs' integration tests: run a job in-process, read a Delta table."""

from __future__ import annotations

import argparse

from deltalake import DeltaTable

from conf.settings import Settings


def run_job(module, settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.main(settings, parser.parse_args(list(argv)))


def table(settings: Settings, name: str):
    return DeltaTable(settings.lake_table(name)).to_pandas()
