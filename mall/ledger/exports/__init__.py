"""Exports of the disclosure ledger (CSV, XLSX, OCDS JSON) for procurement centers and regulators.

Records are read in `seq` order, a batch per read transaction, up to the ledger head as it was when
the export began, so memory stays flat whatever the size and a live ledger exports consistently.
The filters are the public feed's, plus a 品目 prefix. Large exports run as a job that writes a file
into the file store (mall.core.files), which every web process streams downloads from, and reports its
progress.

`reading` holds the filters and the records they match, `writers` the formats, `jobs` the export
jobs and their files.
"""

from mall.ledger.exports.jobs import (
    STATUS_LABELS,
    get_job,
    job_download_name,
    job_file,
    jobs_of,
    prune_files,
    record_download,
    run_job,
    stalled,
    start_job,
)
from mall.ledger.exports.reading import (
    BATCH,
    FILTER_KEYS,
    FILTER_LABELS,
    PROGRESS_EVERY,
    ExportQuery,
    Tally,
    count_records,
    describe_filters,
    iter_records,
    ledger_head,
    matching_lines,
    parse_export_query,
    require_records,
)
from mall.ledger.exports.writers import (
    FORMAT_LABELS,
    FORMATS,
    HEADERS,
    MEDIA_TYPES,
    SHEET_ROWS,
    SUFFIXES,
    content_disposition,
    csv_chunks,
    download_name,
    ocds_chunks,
    package_head,
    record_rows,
    write_xlsx,
)

__all__ = [
    "BATCH",
    "FILTER_KEYS",
    "FILTER_LABELS",
    "FORMATS",
    "FORMAT_LABELS",
    "HEADERS",
    "MEDIA_TYPES",
    "PROGRESS_EVERY",
    "SHEET_ROWS",
    "STATUS_LABELS",
    "SUFFIXES",
    "ExportQuery",
    "Tally",
    "content_disposition",
    "count_records",
    "csv_chunks",
    "describe_filters",
    "download_name",
    "get_job",
    "iter_records",
    "job_download_name",
    "job_file",
    "jobs_of",
    "ledger_head",
    "matching_lines",
    "ocds_chunks",
    "package_head",
    "parse_export_query",
    "prune_files",
    "record_download",
    "record_rows",
    "require_records",
    "run_job",
    "stalled",
    "start_job",
    "write_xlsx",
]
