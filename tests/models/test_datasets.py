"""Each dataset loader on a tiny fixture in that dataset's exact on-disk format, written by the test."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from footfall.models.datasets import (
    DatasetError,
    ImageSource,
    hash_split,
    load_adience,
    load_celeba,
    load_csv_manifest,
    load_dataset,
    load_folders,
    load_imdb_wiki,
    load_utkface,
    load_verified_wiki,
)


def write_jpeg(path: Path, value: int = 128, size: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size, size, 3), value, np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def by_path(records):
    return {r.path: r for r in records}


def test_utkface_names(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "UTKFace" / "25_0_2_20170116174525125.jpg.chip.jpg")
    write_jpeg(tmp_path / "UTKFace" / "3_1_4_20161221193016140.jpg.chip.jpg")
    write_jpeg(tmp_path / "UTKFace" / "61_1_20170109142408075.jpg.chip.jpg")  # missing race: skipped
    write_jpeg(tmp_path / "part2" / "40_1_1_20170113012345678.jpg")  # original (not chip) naming
    records = by_path(load_utkface(tmp_path))
    assert set(records) == {
        "UTKFace/25_0_2_20170116174525125.jpg.chip.jpg",
        "UTKFace/3_1_4_20161221193016140.jpg.chip.jpg",
        "part2/40_1_1_20170113012345678.jpg",
    }
    young = records["UTKFace/3_1_4_20161221193016140.jpg.chip.jpg"]
    assert (young.gender, young.age, young.race) == ("female", 3.0, "Others")
    adult = records["UTKFace/25_0_2_20170116174525125.jpg.chip.jpg"]
    assert (adult.gender, adult.age, adult.race) == ("male", 25.0, "Asian")
    assert all(r.split in {"train", "val", "test"} for r in records.values())


def test_imdb_wiki_mat(tmp_path: Path) -> None:
    from scipy.io import savemat

    root = tmp_path / "wiki_crop"
    paths = [
        "17/10000217_1981-05-05_2009.jpg",
        "48/10000548_1925-04-04_1964.jpg",
        "12/100012_1948-07-03_2008.jpg",
        "65/10001965_1930-05-23_1961.jpg",
        "16/10002116_1971-05-31_2012.jpg",
    ]
    for p in paths:
        write_jpeg(root / p)
    # MATLAB datenums: 723671 is 1981-05-05, 703186 is 1925-04-04 (days since year 0, 719529 = 1970-01-01).
    dob = np.array([723671.0, 703186.0, 711857.0, 705063.0, 719866.0])
    meta = np.zeros(
        (1, 1),
        dtype=[
            ("dob", "O"),
            ("photo_taken", "O"),
            ("full_path", "O"),
            ("gender", "O"),
            ("name", "O"),
            ("face_location", "O"),
            ("face_score", "O"),
            ("second_face_score", "O"),
        ],
    )
    full_path = np.empty((1, 5), dtype=object)
    for i, p in enumerate(paths):
        full_path[0, i] = np.array([p])
    meta[0, 0]["dob"] = dob[None]
    meta[0, 0]["photo_taken"] = np.array([[2009, 1964, 2008, 1961, 2012]])
    meta[0, 0]["full_path"] = full_path
    meta[0, 0]["gender"] = np.array([[1.0, 0.0, np.nan, 1.0, 0.0]])  # third: unknown gender, dropped
    meta[0, 0]["name"] = full_path
    meta[0, 0]["face_location"] = full_path
    meta[0, 0]["face_score"] = np.array([[4.3, 2.6, 3.0, -np.inf, 0.5]])  # fourth: no face; fifth: low score
    meta[0, 0]["second_face_score"] = np.array([[np.nan, np.nan, np.nan, np.nan, np.nan]])
    savemat(root / "wiki.mat", {"wiki": meta})
    records = by_path(load_imdb_wiki(root))
    assert set(records) == {paths[0], paths[1]}
    assert (records[paths[0]].gender, records[paths[0]].age) == ("male", 28.0)
    assert (records[paths[1]].gender, records[paths[1]].age) == ("female", 39.0)
    assert load_imdb_wiki(root, min_face_score=0.0) and len(load_imdb_wiki(root, min_face_score=0.0)) == 3
    records, source = load_dataset("imdb-wiki", root)
    assert source.read_bgr(records[0].path).shape == (24, 24, 3)


def test_imdb_wiki_second_face_dropped(tmp_path: Path) -> None:
    from scipy.io import savemat

    meta = {
        "full_path": np.array([[np.array(["a.jpg"]), np.array(["b.jpg"])]], dtype=object),
        "gender": np.array([[1.0, 1.0]]),
        "dob": np.array([[723671.0, 723671.0]]),
        "photo_taken": np.array([[2009, 2009]]),
        "face_score": np.array([[3.0, 3.0]]),
        "second_face_score": np.array([[np.nan, 2.5]]),
    }
    savemat(tmp_path / "imdb.mat", {"imdb": meta})
    assert [r.path for r in load_imdb_wiki(tmp_path)] == ["a.jpg"]


def test_imdb_wiki_missing_mat(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"wiki\.mat"):
        load_imdb_wiki(tmp_path)


def test_verified_wiki_names(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "wiki" / "female" / "10016_Dawn Richard_female_26.jpg")
    write_jpeg(tmp_path / "wiki" / "male" / "123_Jr._male_17.jpg")
    write_jpeg(tmp_path / "wiki" / "male" / "124_John Smith_Jr._male_40.jpg")
    write_jpeg(tmp_path / "wiki" / "male" / "notes.jpg")
    records = by_path(load_verified_wiki(tmp_path))
    assert records["wiki/female/10016_Dawn Richard_female_26.jpg"].gender == "female"
    assert records["wiki/male/124_John Smith_Jr._male_40.jpg"].age == 40.0
    assert records["wiki/male/123_Jr._male_17.jpg"].gender == "male"
    assert len(records) == 3


def test_celeba_attributes_and_partition(tmp_path: Path) -> None:
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        write_jpeg(tmp_path / "img_align_celeba" / name)
    (tmp_path / "list_attr_celeba.txt").write_text(
        "3\n5_o_Clock_Shadow Arched_Eyebrows Male Young\n"
        "000001.jpg -1  1 -1  1\n000002.jpg  1 -1  1  1\n000003.jpg -1 -1  1 -1\n"
    )
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n")
    records = by_path(load_celeba(tmp_path))
    assert {p: (r.gender, r.split) for p, r in records.items()} == {
        "img_align_celeba/000001.jpg": ("female", "train"),
        "img_align_celeba/000002.jpg": ("male", "val"),
        "img_align_celeba/000003.jpg": ("male", "test"),
    }
    records, source = load_dataset("celeba", tmp_path)
    assert all(source.exists(r.path) for r in records)


def test_celeba_bad_row(tmp_path: Path) -> None:
    (tmp_path / "list_attr_celeba.txt").write_text("1\nMale Young\n000001.jpg 1\n")
    with pytest.raises(DatasetError, match=r"list_attr_celeba\.txt:3"):
        load_celeba(tmp_path)


def test_adience_folds(tmp_path: Path) -> None:
    header = (
        "user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\tfiducial_yaw_angle\tfiducial_score\n"
    )
    (tmp_path / "fold_0_data.txt").write_text(
        header
        + "30601258@N03\t10399646885_67c7d20df9_o.jpg\t1\t(25, 32)\tf\t0\t414\t1086\t1383\t-115\t30\t17\n"
        + "30601258@N03\t10424815813_e94629b1ec_o.jpg\t2\t(25, 32)\tu\t301\t105\t640\t641\t0\t0\t94\n"
    )
    (tmp_path / "fold_4_data.txt").write_text(
        header + "7153718@N04\t11597870964_ba7a96cff5_o.jpg\t1190\t(60, 100)\tm\t0\t0\t10\t10\t0\t0\t1\n"
    )
    records = load_adience(tmp_path)
    assert [(r.path, r.gender, r.age, r.split) for r in records] == [
        (
            "aligned/30601258@N03/landmark_aligned_face.1.10399646885_67c7d20df9_o.jpg",
            "female",
            28.5,
            "train",
        ),
        ("aligned/7153718@N04/landmark_aligned_face.1190.11597870964_ba7a96cff5_o.jpg", "male", 80.0, "test"),
    ]


def test_folders_with_and_without_splits(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "flat" / "female" / "a.jpg")
    write_jpeg(tmp_path / "flat" / "male" / "b.png")
    write_jpeg(tmp_path / "flat" / "other" / "c.jpg")
    assert {(r.path, r.gender) for r in load_folders(tmp_path / "flat")} == {
        ("female/a.jpg", "female"),
        ("male/b.png", "male"),
    }
    write_jpeg(tmp_path / "split" / "val" / "male" / "d.jpg")
    write_jpeg(tmp_path / "split" / "test" / "female" / "e.jpg")
    assert {(r.gender, r.split) for r in load_folders(tmp_path / "split")} == {
        ("male", "val"),
        ("female", "test"),
    }
    with pytest.raises(DatasetError, match="no images"):
        load_folders(tmp_path / "flat" / "other")


def write_manifest(path: Path) -> Path:
    path.write_text(
        "path,gender,age,race,split\n"
        "UTKFace/25_0_2_x.jpg,male,25,2,train\n"
        "UTKFace/70_1_0_y.jpg,female,70,0,test\n"
        "UTKFace/1_1_1_z.jpg,F,,,\n"
    )
    return path


def test_csv_with_folder(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for name, value in (("25_0_2_x.jpg", 10), ("70_1_0_y.jpg", 200), ("1_1_1_z.jpg", 50)):
        write_jpeg(images / "UTKFace" / name, value)
    records, source = load_dataset("csv", write_manifest(tmp_path / "m.csv"), images)
    assert [(r.gender, r.age, r.race, r.split) for r in records[:2]] == [
        ("male", 25.0, "Asian", "train"),
        ("female", 70.0, "White", "test"),
    ]
    assert records[2].gender == "female" and records[2].age is None and records[2].split == hash_split("1_1_1_z.jpg")
    assert abs(int(source.read_bgr(records[1].path)[12, 12, 0]) - 200) <= 2


def test_csv_with_zip(tmp_path: Path) -> None:
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, value in (("25_0_2_x.jpg", 10), ("70_1_0_y.jpg", 200), ("1_1_1_z.jpg", 50)):
            _, data = cv2.imencode(".jpg", np.full((20, 20, 3), value, np.uint8))
            zf.writestr(f"UTKFace/{name}", data.tobytes())
    records, source = load_dataset("csv", write_manifest(tmp_path / "m.csv"), archive)
    assert isinstance(source, ImageSource) and all(source.exists(r.path) for r in records)
    assert abs(int(source.read_bgr(records[0].path)[5, 5, 1]) - 10) <= 2
    assert not source.exists("UTKFace/missing.jpg")
    with pytest.raises(DatasetError, match="no member"):
        source.read_bytes("UTKFace/missing.jpg")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,gender\na.jpg,male\n", "needs 'path' and 'gender'"),
        ("path,gender\na.jpg,robot\n", r"m\.csv:2: gender 'robot'"),
        ("path,gender,age\na.jpg,male,old\n", r"m\.csv:2: age 'old'"),
        ("path,gender,split\na.jpg,male,holdout\n", r"split 'holdout'"),
        # Ages that are no age: they printed an age MAE of inf or 166666667 years, or left the age table
        ("path,gender,age\na.jpg,male,inf\n", r"m\.csv:2: age 'inf' is not an age in years"),
        ("path,gender,age\na.jpg,male,-5\n", r"m\.csv:2: age '-5' is not an age in years"),
    ],
)
def test_csv_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_csv_manifest(manifest)


def test_ages_no_one_has_are_read_as_unknown_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """wiki's metadata ages include 250 and 429 years: counted, each moved the age MAE by tenths of a year (and
    1e9 printed an MAE of 166666667 years)."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,gender,age\na.jpg,male,429\nb.jpg,female,1e9\nc.jpg,male,122\nd.jpg,male,NaN\n")
    with caplog.at_level("WARNING"):
        records = load_csv_manifest(manifest)
    assert [r.age for r in records] == [None, None, 122.0, None]
    (warning,) = [r for r in caplog.records if "ages above the oldest human's" in r.getMessage()]
    assert warning.fields["rows"] == 2 and warning.fields["ages"] == [429.0, 1e9]  # type: ignore[attr-defined]


def test_rows_without_a_split_are_said_to_take_one_from_the_hash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`footfall evaluate --split test` on such a CSV measured a hash-chosen subset under a plain "[split test]"."""
    with caplog.at_level("WARNING"):
        records = load_csv_manifest(write_manifest(tmp_path / "m.csv"))  # its third row has no split
    (warning,) = [r for r in caplog.records if "take one from a hash" in r.getMessage()]
    assert warning.fields == {"csv": str(tmp_path / "m.csv"), "rows": 1, "of": 3}  # type: ignore[attr-defined]
    assert records[2].split == hash_split("1_1_1_z.jpg")


def test_a_csv_that_is_not_text_and_a_corrupt_zip_member_are_dataset_errors(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b"path,gender\n\xff\xfe\x00a.jpg,male\n")  # was a UnicodeDecodeError traceback
    with pytest.raises(DatasetError, match="not a UTF-8 text CSV"):
        load_csv_manifest(manifest)
    archive = tmp_path / "images.zip"
    _, data = cv2.imencode(".png", np.full((20, 20, 3), 9, np.uint8))
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a.png", data.tobytes())
    raw = bytearray(archive.read_bytes())
    start = raw.index(data.tobytes()[:16])
    raw[start + 40] ^= 0xFF  # one byte of the stored member: its CRC no longer matches
    archive.write_bytes(bytes(raw))
    source = ImageSource(archive)
    with pytest.raises(DatasetError, match=r"member 'a\.png' is corrupt"):  # was zipfile.BadZipFile
        source.read_bytes("a.png")
    source.close()


def test_hash_split_is_stable_and_roughly_80_10_10() -> None:
    splits = [hash_split(f"face_{i}.jpg") for i in range(5000)]
    assert hash_split("face_1.jpg") == splits[1]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.77 < share["train"] < 0.83 and 0.08 < share["val"] < 0.12 and 0.08 < share["test"] < 0.12


def test_unknown_kind_and_missing_images(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset kind"):
        load_dataset("lfw", tmp_path)
    with pytest.raises(DatasetError, match="images not found"):
        ImageSource(tmp_path / "nowhere.zip")


def test_a_truncated_zip_is_said_to_be_unreadable_not_missing(tmp_path: Path) -> None:
    """It said 'images not found (expected a folder or a .zip)' of a zip that is there."""
    archive = tmp_path / "trunc.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", b"x" * 5000)
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(DatasetError, match=r"^.*trunc\.zip: not a readable zip \(truncated or corrupt\?\)$"):
        ImageSource(archive)
    with pytest.raises(DatasetError, match="images not found"):
        ImageSource(tmp_path / "missing.zip")


def test_csv_fields_too_long_or_run_on_by_a_stray_quote_are_one_short_line(tmp_path: Path) -> None:
    """A field over 131072 characters raised _csv.Error as a traceback; a stray opening quote swallowed the rows
    after it into one field and printed them all in the error."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,gender\na.jpg,male\n" + "b" * 200_000 + ".jpg,female\n")
    with pytest.raises(DatasetError) as caught:
        load_csv_manifest(manifest)
    assert str(caught.value).startswith(f"{manifest}:3: ") and len(str(caught.value)) < 200, str(caught.value)
    rows = "".join(f"c{i}.jpg,male\n" for i in range(300))
    for text in (f'path,gender\na.jpg,male\nb.jpg,"female\n{rows}', f'path,gender\na.jpg,male\n"b.jpg,female\n{rows}',
                 "path,gender\na.jpg,male\nb.jpg,\"female\n" + rows * 500):  # fmt: skip
        manifest.write_text(text)
        with pytest.raises(DatasetError) as caught:
            load_csv_manifest(manifest)
        message = str(caught.value)
        assert message.startswith(f"{manifest}:3: ") and "\n" not in message and len(message) < 200, message
        assert "quote" in message


def test_images_given_as_a_file_that_is_no_zip_are_said_to_be_so(tmp_path: Path) -> None:
    """Review: ``--images model.onnx`` said 'images not found' of a file that is there."""
    file = tmp_path / "model.onnx"
    file.write_bytes(b"\x08\x07graph")
    with pytest.raises(DatasetError, match="is a file but no zip archive"):
        ImageSource(file)
    with pytest.raises(DatasetError, match="images not found"):
        ImageSource(tmp_path / "missing")
