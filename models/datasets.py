"""Loaders for the face datasets people have on disk, all turned into one list of :class:`FaceRecord`.

Supported layouts (``load_dataset(kind, root)`` picks one by name):

- ``utkface``: ``age_gender_race_date.jpg[.chip.jpg]`` file names (gender 0 male, 1 female).
- ``imdb-wiki``: ``wiki_crop/wiki.mat`` or ``imdb_crop/imdb.mat`` (the original metadata: gender,
  date of birth as a MATLAB datenum, year the photo was taken, face scores). Rows without gender, with no
  face or a low face score, or with a second face are dropped.
- ``verified-wiki``: ``id_Name_gender_age.jpg`` file names (the hand-verified wiki portraits).
- ``celeba``: ``list_attr_celeba.txt`` (``Male`` attribute) + ``list_eval_partition.txt`` (0 train, 1 val,
  2 test), images under ``img_align_celeba/``.
- ``adience``: ``fold_*_data.txt`` + ``aligned/<user>/landmark_aligned_face.<face_id>.<image>``.
- ``folders``: ``<root>/[<split>/]<female|male>/*.jpg``.
- ``csv``: a manifest with ``path``, ``gender`` and optional ``age``, ``race``, ``split``; the images sit
  in a folder or a zip.

Records without a split get a stable one from a hash of their path (80/10/10), so a dataset is cut the
same way on every machine.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from footfall.core.logs import log_event

logger = logging.getLogger(__name__)

LABELS = ("female", "male")
SPLITS = ("train", "val", "test")
# Years; a CSV age above it is a metadata error (wiki has 250 and 429), read as unknown. 122: the oldest
# documented human lifespan.
MAX_AGE = 122
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
UTKFACE_RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
GENDER_WORDS = {
    "female": "female",
    "f": "female",
    "woman": "female",
    "women": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "men": "male",
}


class DatasetError(ValueError):
    """A dataset that cannot be read as asked; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class FaceRecord:
    path: str  # inside the image source (folder-relative path or zip member)
    gender: str  # "female" or "male"
    age: float | None = None
    race: str | None = None
    split: str | None = None


def hash_split(name: str, val_pct: int = 10, test_pct: int = 10) -> str:
    """A split that depends only on the name: stable across machines and Python runs."""
    bucket = int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test_pct:
        return "test"
    if bucket < test_pct + val_pct:
        return "val"
    return "train"


def with_splits(records: Iterable[FaceRecord]) -> list[FaceRecord]:
    return [r if r.split else replace(r, split=hash_split(Path(r.path).name)) for r in records]


def parse_gender(value: str) -> str | None:
    return GENDER_WORDS.get(str(value).strip().lower())


# ---------------------------------------------------------------------------------------------- images


class ImageSource:
    """Images in a folder or a zip file, read as BGR uint8 arrays."""

    def __init__(self, location: str | Path):
        self.location = Path(location)
        self._zip: zipfile.ZipFile | None = None
        if self.location.is_dir():
            return
        zip_named = self.location.suffix.lower() == ".zip"
        if not self.location.is_file():
            raise DatasetError(f"{self.location}: images not found (expected a folder or a .zip)")
        if not (zip_named or zipfile.is_zipfile(self.location)):
            raise DatasetError(f"{self.location}: is a file but no zip archive (expected a folder or a .zip)")
        try:
            self._zip = zipfile.ZipFile(self.location)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # a truncated zip lacks its central directory
            raise DatasetError(f"{self.location}: not a readable zip (truncated or corrupt?)") from None
        self._members = set(self._zip.namelist())

    @property
    def name(self) -> str:
        return self.location.name

    def fingerprint(self) -> str:
        """Identifies the source's content cheaply (name, size, mtime) for cache keys."""
        stat = self.location.stat()
        return f"{self.location.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"

    def exists(self, path: str) -> bool:
        if self._zip is not None:
            return path in self._members
        return (self.location / path).is_file()

    def read_bytes(self, path: str) -> bytes:
        if self._zip is not None:
            try:
                return self._zip.read(path)
            except KeyError:
                raise DatasetError(f"{self.location}: no member {path!r}") from None
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DatasetError(f"{self.location}: member {path!r} is corrupt ({exc})") from None
        try:
            return (self.location / path).read_bytes()
        except OSError as exc:
            raise DatasetError(f"{self.location / path}: cannot read ({exc.strerror})") from None

    def read_bgr(self, path: str) -> np.ndarray | None:
        """The decoded image, or ``None`` when the bytes are not a readable image."""
        import cv2

        data = np.frombuffer(self.read_bytes(path), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        return image

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


# --------------------------------------------------------------------------------------------- loaders


def _image_files(root: Path) -> Iterator[Path]:
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.name.lower().endswith(IMAGE_SUFFIXES):
            yield file


UTKFACE_NAME = re.compile(r"^(\d+)_([01])_([0-4])_[^/]*\.(?:jpg|jpeg|png)(?:\.chip\.jpg)?$", re.IGNORECASE)


def load_utkface(root: str | Path) -> list[FaceRecord]:
    """UTKFace: labels in the file name ``age_gender_race_datetime.jpg[.chip.jpg]``; malformed names
    (a few originals lack a field) are skipped."""
    root = Path(root)
    records = []
    for file in _image_files(root):
        match = UTKFACE_NAME.match(file.name)
        if not match:
            continue
        age, gender, race = int(match[1]), int(match[2]), int(match[3])
        records.append(
            FaceRecord(
                file.relative_to(root).as_posix(),
                "male" if gender == 0 else "female",
                float(age),
                UTKFACE_RACES[race],
            )
        )
    if not records:
        raise DatasetError(f"{root}: no UTKFace images (age_gender_race_date.jpg) found")
    return with_splits(records)


def _matlab_datenum_year(datenum: float) -> float:
    """Year of a MATLAB serial date number (days since year 0; 719529 is 1970-01-01)."""
    from datetime import date, timedelta

    try:
        day = date(1970, 1, 1) + timedelta(days=float(datenum) - 719529.0)
    except (OverflowError, ValueError):
        return float("nan")
    return float(day.year) + (day.timetuple().tm_yday - 1) / 365.25


def _mat_string(value: object) -> str:
    """A MATLAB cell entry (nested 1×1 arrays around a string) as a Python string."""
    while isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    return str(value)


def load_imdb_wiki(root: str | Path, *, min_face_score: float = 1.0) -> list[FaceRecord]:
    """IMDB-WIKI ``wiki_crop``/``imdb_crop``: the original ``wiki.mat``/``imdb.mat`` metadata.

    gender is 1 male, 0 female, NaN unknown (dropped); ``face_score`` is ``-inf`` when no face was found
    and rows below ``min_face_score`` are dropped, as are photos with a second face (ambiguous label).
    Age = year the photo was taken − year of birth (mid-year photo assumed), kept when within 0–100.
    """
    from scipy.io import loadmat

    root = Path(root)
    mats = [root / "wiki.mat", root / "imdb.mat"]
    mat_file = next((m for m in mats if m.is_file()), None)
    if mat_file is None:
        raise DatasetError(f"{root}: neither wiki.mat nor imdb.mat found (IMDB-WIKI *_crop folder expected)")
    try:
        meta = loadmat(mat_file)[mat_file.stem][0, 0]
    except (KeyError, ValueError, OSError, IndexError) as exc:
        raise DatasetError(f"{mat_file}: not IMDB-WIKI metadata ({exc})") from None
    try:
        paths = [_mat_string(p) for p in np.asarray(meta["full_path"]).ravel()]
        genders, dobs, taken, face_scores, second = (
            np.asarray(meta[field], dtype=np.float64).ravel()
            for field in ("gender", "dob", "photo_taken", "face_score", "second_face_score")
        )
    except (ValueError, IndexError, KeyError) as exc:
        raise DatasetError(f"{mat_file}: missing IMDB-WIKI field ({exc})") from None
    if not len(paths) == len(genders) == len(dobs) == len(taken) == len(face_scores) == len(second):
        raise DatasetError(f"{mat_file}: IMDB-WIKI fields have different lengths")
    records = []
    for path, gender, dob, year, score, second_score in zip(
        paths, genders, dobs, taken, face_scores, second, strict=True
    ):
        if np.isnan(gender) or not np.isfinite(score) or score < min_face_score or not np.isnan(second_score):
            continue
        age = year + 0.5 - _matlab_datenum_year(dob)
        records.append(
            FaceRecord(path, "male" if gender >= 0.5 else "female", float(int(age)) if 0 <= age <= 100 else None)
        )
    return with_splits(records)


VERIFIED_WIKI_NAME = re.compile(r"^(\d+)_(.+)_(female|male)_(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)


def load_verified_wiki(root: str | Path) -> list[FaceRecord]:
    """Hand-verified wiki portraits named ``id_Name_gender_age.jpg`` (names may contain ``_``)."""
    root = Path(root)
    records = []
    for file in _image_files(root):
        match = VERIFIED_WIKI_NAME.match(file.name)
        if match:
            records.append(FaceRecord(file.relative_to(root).as_posix(), match[3].lower(), float(int(match[4]))))
    if not records:
        raise DatasetError(f"{root}: no verified-wiki images (id_Name_gender_age.jpg) found")
    return with_splits(records)


def load_celeba(root: str | Path) -> list[FaceRecord]:
    """CelebA: ``Male`` from ``list_attr_celeba.txt`` (1 / -1), split from ``list_eval_partition.txt``."""
    root = Path(root)
    attr_file = root / "list_attr_celeba.txt"
    if not attr_file.is_file():
        raise DatasetError(f"{root}: list_attr_celeba.txt not found")
    lines = attr_file.read_text().splitlines()
    if len(lines) < 2:
        raise DatasetError(f"{attr_file}: too short for a CelebA attribute file")
    names = lines[1].split()
    if "Male" not in names:
        raise DatasetError(f"{attr_file}: no 'Male' attribute in the header")
    male_col = names.index("Male")
    partitions: dict[str, str] = {}
    partition_file = root / "list_eval_partition.txt"
    if partition_file.is_file():
        for line in partition_file.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] in "012":
                partitions[parts[0]] = SPLITS[int(parts[1])]
    image_dir = "img_align_celeba/" if (root / "img_align_celeba").is_dir() else ""
    records = []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DatasetError(f"{attr_file}:{number}: expected {len(names) + 1} fields, got {len(parts)}")
        records.append(
            FaceRecord(
                image_dir + parts[0],
                "male" if parts[1 + male_col] == "1" else "female",
                split=partitions.get(parts[0]),
            )
        )
    return with_splits(records)


ADIENCE_AGE = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def load_adience(root: str | Path, *, val_fold: int = 3, test_fold: int = 4) -> list[FaceRecord]:
    """Adience: ``fold_<k>_data.txt`` (tab-separated, header row) with ``aligned/`` images.

    Faces with gender ``u`` or none are dropped; age is the middle of its bracket (``(25, 32)`` → 28.5).
    Fold ``val_fold`` is validation, ``test_fold`` is test, the others train.
    """
    root = Path(root)
    folds = sorted(root.glob("fold_*_data.txt"))
    if not folds:
        raise DatasetError(f"{root}: no fold_*_data.txt files found")
    records = []
    for fold_file in folds:
        fold_match = re.match(r"fold_(\d+)_data\.txt", fold_file.name)
        if not fold_match:
            continue
        fold = int(fold_match[1])
        split = "test" if fold == test_fold else "val" if fold == val_fold else "train"
        reader = csv.DictReader(io.StringIO(fold_file.read_text()), delimiter="\t")
        needed = {"user_id", "original_image", "face_id", "age", "gender"}
        if not reader.fieldnames or not needed <= {f.strip() for f in reader.fieldnames}:
            raise DatasetError(f"{fold_file}: header must name {sorted(needed)}")
        for row in reader:
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            gender = {"m": "male", "f": "female"}.get(row["gender"].lower())
            if gender is None:
                continue
            age_match = ADIENCE_AGE.match(row["age"])
            if age_match:
                age = (int(age_match[1]) + int(age_match[2])) / 2.0
            else:
                age = float(row["age"]) if row["age"].isdigit() else None
            path = f"aligned/{row['user_id']}/landmark_aligned_face.{row['face_id']}.{row['original_image']}"
            records.append(FaceRecord(path, gender, age, split=split))
    return records


def load_folders(root: str | Path) -> list[FaceRecord]:
    """One folder per class (``female/``, ``male/``), optionally inside ``train/``, ``val/``, ``test/``."""
    root = Path(root)
    records = []
    for file in _image_files(root):
        parts = file.relative_to(root).parts
        if len(parts) < 2:
            continue
        gender = parse_gender(parts[-2])
        if gender is None:
            continue
        split = parts[-3].lower() if len(parts) >= 3 and parts[-3].lower() in SPLITS else None
        records.append(FaceRecord(file.relative_to(root).as_posix(), gender, split=split))
    if not records:
        raise DatasetError(f"{root}: no images in female/ or male/ folders")
    return with_splits(records)


def _csv_rows(reader: csv.DictReader, csv_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """The manifest's rows, each with its line. A row the csv module cannot read, or one whose field a stray '"'
    ran on over the lines after it (a manifest's fields hold no line break), is a :class:`DatasetError` naming the
    line it starts on, short: the swallowed rows are not repeated in it."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = (
                f"a field runs past {csv.field_size_limit()} characters (a '\"' that opens a quote never closed?)"
                if "field limit" in str(exc)
                else f"not readable as CSV ({exc})"
            )
            raise DatasetError(f"{csv_path}:{start}: {problem}") from None
        if any(isinstance(value, str) and "\n" in value for value in row.values()):
            lines = f"runs on to line {reader.line_num}"
            raise DatasetError(f"{csv_path}:{start}: a '\"' opens a quote that {lines}; remove the stray quote")
        yield reader.line_num, row


def load_csv_manifest(csv_path: str | Path) -> list[FaceRecord]:
    """A CSV with ``path`` and ``gender`` columns, optional ``age``, ``race``, ``split``."""
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"{csv_path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{csv_path}: not a UTF-8 text CSV (byte {exc.start} is not UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    if not {"path", "gender"} <= columns:
        raise DatasetError(f"{csv_path}: needs 'path' and 'gender' columns, has {sorted(columns)}")
    records = []
    impossible: list[float] = []
    for number, row in _csv_rows(reader, csv_path):
        gender = parse_gender(row["gender"] or "")
        if gender is None:
            raise DatasetError(f"{csv_path}:{number}: gender {row['gender']!r} is not male/female")
        age_text = (row.get("age") or "").strip()
        try:
            age = float(age_text) if age_text and age_text.lower() != "nan" else None  # 'nan': pandas' missing
        except ValueError:
            raise DatasetError(f"{csv_path}:{number}: age {age_text!r} is not a number") from None
        if age is not None and not 0 <= age < math.inf:
            raise DatasetError(f"{csv_path}:{number}: age {age_text!r} is not an age in years")
        if age is not None and age > MAX_AGE:
            impossible.append(age)
            age = None
        split = (row.get("split") or "").strip().lower() or None
        if split is not None and split not in SPLITS:
            raise DatasetError(f"{csv_path}:{number}: split {split!r} is not one of {', '.join(SPLITS)}")
        race = (row.get("race") or "").strip() or None
        if race is not None and race.isdigit() and "UTKFace/" in row["path"]:
            race = UTKFACE_RACES.get(int(race), race)
        records.append(FaceRecord(row["path"], gender, age, race, split))
    if not records:
        raise DatasetError(f"{csv_path}: no rows")
    unsplit = sum(record.split is None for record in records)
    if unsplit:
        # A row's split decides whether it is trained on or measured: say when the CSV left it to the hash.
        log_event(
            logger, logging.WARNING, "rows without a split take one from a hash of their file name (80/10/10)",
            csv=str(csv_path), rows=unsplit, of=len(records),
        )  # fmt: skip
    if impossible:
        # wiki's ages come from metadata (photo year minus birth year): a few are no one's age, and counted they
        # would move an age MAE by tenths of a year each.
        log_event(
            logger, logging.WARNING, "ages above the oldest human's read as unknown", csv=str(csv_path),
            rows=len(impossible), ages=sorted(impossible), limit_years=MAX_AGE,
        )  # fmt: skip
    return with_splits(records)


LOADERS = {
    "utkface": load_utkface,
    "imdb-wiki": load_imdb_wiki,
    "verified-wiki": load_verified_wiki,
    "celeba": load_celeba,
    "adience": load_adience,
    "folders": load_folders,
}


def load_dataset(kind: str, root: str | Path, images: str | Path | None = None) -> tuple[list[FaceRecord], ImageSource]:
    """Records and their image source. ``kind`` is one of :data:`LOADERS` or ``csv`` (then ``root`` is
    the CSV file and ``images`` the folder or zip holding the images)."""
    if kind == "csv":
        if images is None:
            raise DatasetError("a csv dataset needs 'images' (a folder or a zip)")
        return load_csv_manifest(root), ImageSource(images)
    try:
        loader = LOADERS[kind]
    except KeyError:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {sorted([*LOADERS, 'csv'])}") from None
    return loader(root), ImageSource(images or root)


def race_name(value: str | None) -> str | None:
    if value is not None and value.isdigit():
        return UTKFACE_RACES.get(int(value), value)
    return value
