"""`manage.py import_rxnorm <dir>`: load a downloaded RxNorm release (its RRF files) into the catalog.

RxNorm's own names are public domain but these machines cannot reach NLM: an operator downloads a release
(the full monthly release, or the prescribable-content one, which needs no UMLS licence), unpacks it, and points
this command at the folder. medications/rxnorm.py says what is read and how it is matched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from medications.rxnorm import RxNormError, import_release


class Command(BaseCommand):
    help = "Import ingredients (IN) and clinical and branded drugs (SCD, SBD) from an RxNorm release's RRF files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="the unpacked release: holds RXNCONSO.RRF and RXNREL.RRF (or rrf/)")
        parser.add_argument(
            "--prescribable",
            action="store_true",
            help="keep only NLM's prescribable subset (concepts whose CVF has the bit 4096)",
        )

    def handle(self, *args: Any, directory: str, prescribable: bool, **options: Any) -> None:
        folder = Path(directory)
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a directory")
        try:
            counts = import_release(folder, prescribable=prescribable, progress=self.stdout.write)
        except RxNormError as error:
            raise CommandError(f"{error}; nothing was imported") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"the release is not UTF-8 ({error}); nothing was imported") from error
        self.stdout.write(self.style.SUCCESS(f"RxNorm import done: {counts.summary()}"))
