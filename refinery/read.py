"""Training-side readers: a Delta table the pipeline wrote, pinned to a version or a timestamp,
streamed into PyTorch or loaded into Hugging Face ``datasets``, with no Spark session and no JVM
(delta-rs ``deltalake`` + pyarrow). Pin the version a run's summary printed, and the training
data cannot change under the job.

    from refinery.read import DeltaIterableDataset, to_hf_dataset
    data = DeltaIterableDataset("s3://lake/export/sft", version=12, columns=["messages"])
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=4)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Sequence
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as fs

try:  # the class needs torch; to_hf_dataset and open_table do not
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError:  # pragma: no cover - only without the ml extra
    IterableDataset, get_worker_info = object, lambda: None  # type: ignore[assignment, misc]


def open_table(path: str, version: int | None = None, timestamp: datetime | str | None = None,
               storage_options: dict[str, str] | None = None):
    """The Delta table at ``version`` or as of ``timestamp`` (at most one; neither: the latest)."""
    from deltalake import DeltaTable

    if version is not None and timestamp is not None:
        raise ValueError("give version or timestamp, not both")
    table = DeltaTable(path, version=version, storage_options=storage_options)
    if timestamp is not None:
        table.load_as_version(timestamp)
    return table


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a pinned table, readable with pyarrow alone (picklable)."""

    uri: str
    index: int
    partition: ds.Expression  # the partition columns' values, as Delta records them


UNREADABLE_FEATURES = {"deletionVectors", "columnMapping"}  # plain Parquet reads would be wrong


def row_groups(path: str, version: int | None = None, timestamp: datetime | str | None = None,
               storage_options: dict[str, str] | None = None) -> tuple[pa.Schema, list[RowGroup]]:
    """The table's schema and its Parquet row groups in a fixed order (file, then group): the
    units readers take turns over. Resolved here, with delta-rs; read later with pyarrow only,
    because delta-rs's runtime does not survive the fork that starts DataLoader workers."""
    table = open_table(path, version, timestamp, storage_options)
    features = set(table.protocol().reader_features or []) & UNREADABLE_FEATURES
    if features:
        raise ValueError(f"{path} uses {sorted(features)}, which plain Parquet reads cannot honour: read it with Spark")
    dataset = table.to_pyarrow_dataset()
    root = table.table_uri.rstrip("/")
    groups = []
    for fragment in sorted(dataset.get_fragments(), key=lambda f: f.path):
        uri = fragment.path if "://" in fragment.path else f"{root}/{fragment.path}"
        groups += [RowGroup(uri, g.id, fragment.partition_expression) for g in fragment.row_groups]
    return dataset.schema, groups


def pyarrow_uri(uri: str) -> str:
    """A file URI as pyarrow's filesystems take it: Hadoop's s3a:// is s3://, and the
    percent-escapes Delta writes in partition folder names are decoded to the names on disk."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return unquote(uri)
    return f"{'s3' if scheme == 's3a' else scheme}://{unquote(rest)}"


def read_group(group: RowGroup, schema: pa.Schema, columns: Sequence[str] | None, filter: ds.Expression | None,
               batch_rows: int) -> Iterator[pa.RecordBatch]:
    filesystem, where = fs.FileSystem.from_uri(pyarrow_uri(group.uri))
    fragment = ds.ParquetFileFormat().make_fragment(where, filesystem, partition_expression=group.partition,
                                                    row_groups=[group.index])
    yield from ds.Scanner.from_fragment(fragment, schema=schema, columns=columns, filter=filter,
                                        batch_size=batch_rows).to_batches()


def shard() -> tuple[int, int]:
    """(this reader's index, number of readers) over distributed ranks x DataLoader workers; the
    rank comes from torch.distributed when it is initialised, else RANK / WORLD_SIZE."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    worker = get_worker_info()
    workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
    return rank * workers + worker_id, world * workers


class DeltaIterableDataset(IterableDataset):  # type: ignore[misc]
    """Rows of a pinned Delta table as dicts, each (rank, DataLoader worker) reading its own share
    of the row groups, so every row is read exactly once per epoch across all readers. Works with
    any DataLoader start method (fork included). Object-store paths are read by pyarrow's own
    filesystems, which take credentials from the environment."""

    def __init__(self, path: str, version: int | None = None, timestamp: datetime | str | None = None,
                 columns: Sequence[str] | None = None, filter: ds.Expression | None = None,
                 batch_rows: int = 1024, storage_options: dict[str, str] | None = None) -> None:
        # Resolved once, now: every rank and worker reads the same version's files.
        self.schema, self.groups = row_groups(path, version, timestamp, storage_options)
        self.columns, self.filter, self.batch_rows = columns, filter, batch_rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        index, readers = shard()
        for group in self.groups[index::readers]:
            for batch in read_group(group, self.schema, self.columns, self.filter, self.batch_rows):
                yield from batch.to_pylist()


def to_hf_dataset(path: str, version: int | None = None, timestamp: datetime | str | None = None,
                  columns: Sequence[str] | None = None, storage_options: dict[str, str] | None = None):
    """The pinned table as an in-memory ``datasets.Dataset`` (Arrow, zero-copy where it can be)."""
    import datasets

    table: pa.Table = open_table(path, version, timestamp, storage_options).to_pyarrow_dataset().to_table(columns=columns)
    return datasets.Dataset(table)
