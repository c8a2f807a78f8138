"""Run records (one checksummed JSON per run, with provenance) and the tables built from them.

* :func:`find_record`, :func:`read_record`, :func:`write_record`, :class:`Record`, :class:`CorruptRecordError`
  (:mod:`.records`); :func:`collect` of provenance (:mod:`.provenance`);
* :func:`load_records`, :func:`summarize`, :func:`history_frame` (:mod:`.frame`): pandas views for notebooks.
"""

from reprolib.results.frame import history_frame, load_records, summarize
from reprolib.results.records import (
    CorruptRecordError,
    RecordVersionError,
    Record,
    find_record,
    read_record,
    record_path,
    write_record,
)

__all__ = [
    "Record", "CorruptRecordError", "RecordVersionError", "find_record", "read_record", "record_path", "write_record",
    "load_records", "summarize", "history_frame",
]
