"""The run journal: every run's events, durable, in a directory or in S3.

Write with ``open_journal`` (a ``JournalWriter`` observer); read with ``list_runs``,
``find_run`` and ``load_run`` (a ``RunJournal`` with each target's ``TargetHistory``).
It imports only ``core``: any command can journal a run or read one.
"""

from ecs_deploy_many.journal.location import (
    DirectoryLocation,
    JournalLocation,
    S3Location,
    default_directory,
    locate,
)
from ecs_deploy_many.journal.reader import (
    JournalEvent,
    ListedRun,
    RunJournal,
    find_run,
    list_runs,
    load_run,
)
from ecs_deploy_many.journal.records import (
    FORMAT_VERSION,
    RunFinished,
    RunStart,
    RunStarted,
    TargetRecord,
    file_digest,
    new_run_id,
    target_digest,
)
from ecs_deploy_many.journal.writer import JournalWriter, RunOutcome, open_journal

__all__ = [
    "FORMAT_VERSION",
    "DirectoryLocation",
    "JournalEvent",
    "JournalLocation",
    "JournalWriter",
    "ListedRun",
    "RunFinished",
    "RunJournal",
    "RunOutcome",
    "RunStart",
    "RunStarted",
    "S3Location",
    "TargetRecord",
    "default_directory",
    "file_digest",
    "find_run",
    "list_runs",
    "load_run",
    "locate",
    "new_run_id",
    "open_journal",
    "target_digest",
]
