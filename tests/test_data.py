"""Readers, splits, embedded datasets and the on-device loader of nasforge.data."""

from __future__ import annotations

import hashlib
import http.server
import pickle
import tarfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import (
    CIFAR_ARCHIVES,
    DatasetSplits,
    DeviceLoader,
    FallbackSplitWarning,
    Split,
    cifar10_valid_split,
    crop_flip,
    load_pickle,
    load_splits,
    make_synthetic,
    read_cifar,
    read_imagenet16,
    read_split_file,
)
from nasforge.data.base import NB201_MEAN_STD
from nasforge.data.splits import _two_way_split
from nasforge.errors import DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ../shared next to the repository root (a worktree reaches it through a symlink).
OFFICIAL_SPLITS = Path(__file__).resolve().parents[2] / "shared" / "nb201" / "splits"

# sha256 of ",".join(indices) of the official cifar-split.txt ``train`` / ``valid`` lists
# (computed from the file itself), so the rule is checked even where the file is absent.
CIFAR10_VALID_SHA256 = {
    "train": "b32573c51d975768a11c0d1540e625040790e2287a603c857413bd78ca68eb94",
    "valid": "fe150dfa5a16fd2cab96300e44d12835a5427d45b6aa3dc7f039b0df1539f5ce",
}


def _sha(indices) -> str:
    return hashlib.sha256(",".join(str(int(i)) for i in indices).encode()).hexdigest()


# ----------------------------------------------------------------------------- fixtures
def _batch(n: int, classes: int, label_key: str, res: int, rng, label_offset: int = 0) -> dict:
    data = rng.integers(0, 256, size=(n, 3 * res * res), dtype=np.uint8)
    labels = (rng.integers(0, classes, size=n) + label_offset).tolist()
    # Python-2 style keys as the official files have them after a latin1 load.
    return {"data": data, label_key: labels, "batch_label": "fake"}


def write_cifar(root: Path, name: str = "cifar10", n_train: int = 20, n_test: int = 10) -> dict:
    """A CIFAR release in the official layout (small); returns the arrays written."""
    spec = CIFAR_ARCHIVES[name]
    rng = np.random.default_rng(0)
    folder = root / spec.folder
    folder.mkdir(parents=True)
    written = {}
    per_file = n_train // len(spec.train_files)
    for fname in spec.train_files + spec.test_files:
        n = n_test if fname in spec.test_files else per_file
        entry = _batch(n, spec.num_classes, spec.label_key, 32, rng)
        # Keys as bytes in one file, str in the others: both forms occur in the wild.
        if fname == spec.train_files[0]:
            entry = {k.encode(): v for k, v in entry.items()}
        (folder / fname).write_bytes(pickle.dumps(entry, protocol=2))
        written[fname] = entry
    return written


def tar_folder(root: Path, name: str = "cifar10") -> Path:
    spec = CIFAR_ARCHIVES[name]
    archive = root / spec.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / spec.folder, arcname=spec.folder)
    return archive


@pytest.fixture
def cifar10_dir(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, write_cifar(tmp_path)


# ----------------------------------------------------------------------------- readers
def test_cifar10_reader_layout_and_values(cifar10_dir):
    root, written = cifar10_dir
    (tr_x, tr_y), (te_x, te_y) = read_cifar("cifar10", root)
    assert tr_x.shape == (20, 3, 32, 32) and tr_x.dtype == torch.uint8
    assert te_x.shape == (10, 3, 32, 32) and te_y.dtype == torch.int64
    first = written["data_batch_1"]
    row = first[b"data"][0]
    # Rows are channel-major: 1024 red values, then green, then blue, each row-major.
    assert tr_x[0, 0, 0, 0] == row[0] and tr_x[0, 0, 0, 1] == row[1]
    assert tr_x[0, 0, 1, 0] == row[32] and tr_x[0, 1, 0, 0] == row[1024]
    assert tr_x[0, 2, 31, 31] == row[3071]
    assert tr_y.tolist()[:4] == first[b"labels"][:4]
    assert te_y.tolist() == written["test_batch"]["labels"]


def test_cifar_reads_archive_same_as_directory(tmp_path):
    src = tmp_path / "src"
    write_cifar(src, "cifar100", n_train=12, n_test=6)
    archive = tar_folder(src, "cifar100")
    only_tar = tmp_path / "tar"
    only_tar.mkdir()
    archive.rename(only_tar / archive.name)
    (a_x, a_y), (b_x, b_y) = read_cifar("cifar100", src)
    (c_x, c_y), (d_x, d_y) = read_cifar("cifar100", only_tar)
    assert torch.equal(a_x, c_x) and torch.equal(a_y, c_y)
    assert torch.equal(b_x, d_x) and torch.equal(b_y, d_y)
    assert a_y.max() < 100


def test_reader_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_cifar("cifar10", tmp_path / "nope")
    with pytest.raises(DataError, match="no cifar-10-batches-py data"):
        read_cifar("cifar10", tmp_path)
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"missing file .*data_batch_3"):
        read_cifar("cifar10", tmp_path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.update(data=e["data"][:, :3000]), r"shape \(4, 3000\), expected \(N, 3072\)"),
        (lambda e: e.update(labels=[0, 1, 2, 10]), r"labels in \[0, 10\], expected 0..9"),
        (lambda e: e.update(labels=[0, 1]), "4 images but 2 labels"),
        (lambda e: e.update(data=e["data"].astype(np.int16)), "expected uint8"),
        (lambda e: e.pop("labels"), "expected keys"),
    ],
)
def test_reader_rejects_malformed_batches(tmp_path, mutate, message):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    entry = load_pickle(path.read_bytes(), "x")
    mutate(entry)
    path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(DataError, match=message):
        read_cifar("cifar10", tmp_path)


def test_truncated_file_and_archive(tmp_path):
    write_cifar(tmp_path / "a")
    path = tmp_path / "a" / "cifar-10-batches-py" / "data_batch_4"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_cifar("cifar10", tmp_path / "a")
    write_cifar(tmp_path / "b")
    archive = tar_folder(tmp_path / "b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / archive.name).write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_cifar("cifar10", tmp_path / "c")


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(DataError, match=r"refusing to load global builtins.print"):
        load_pickle(pickle.dumps({"data": Evil()}), "evil")


def test_imagenet16_reader_keeps_first_120_classes(tmp_path):
    rng = np.random.default_rng(1)
    written = {}
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        entry = _batch(30, 200, "labels", 16, rng, label_offset=1)  # labels 1..200
        (tmp_path / name).write_bytes(pickle.dumps(entry, protocol=2))
        written[name] = entry
    (_, tr_y), (va_x, va_y) = read_imagenet16(tmp_path)
    keep = np.array(written["val_data"]["labels"]) <= 120
    assert va_x.shape == (int(keep.sum()), 3, 16, 16)
    assert va_y.tolist() == (np.array(written["val_data"]["labels"])[keep] - 1).tolist()
    assert torch.equal(va_x[0].flatten(), torch.from_numpy(written["val_data"]["data"][keep][0]))
    assert tr_y.min() >= 0 and tr_y.max() <= 119
    total = sum(
        (np.array(written[f"train_data_batch_{i}"]["labels"]) <= 120).sum() for i in range(1, 11)
    )
    assert len(tr_y) == total
    (tmp_path / "train_data_batch_7").unlink()
    with pytest.raises(DataError, match="train_data_batch_7"):
        read_imagenet16(tmp_path)
    bad = _batch(5, 1, "labels", 16, rng, label_offset=1001)
    (tmp_path / "train_data_batch_7").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match=r"expected 1..1000"):
        read_imagenet16(tmp_path)


# ----------------------------------------------------------------------------- download
class _Server:
    """A local HTTP server on 127.0.0.1 serving files from a dict (optionally truncated)."""

    def __init__(self, files: dict[str, bytes], truncate: bool = False) -> None:
        files_, truncate_ = files, truncate

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = files_.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if truncate_ else body)
                if truncate_:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _archive_bytes(tmp_path: Path) -> bytes:
    write_cifar(tmp_path / "gen")
    return tar_folder(tmp_path / "gen").read_bytes()


def test_download_verifies_md5_and_unpacks(tmp_path, monkeypatch):
    body = _archive_bytes(tmp_path)
    spec = CIFAR_ARCHIVES["cifar10"]
    monkeypatch.setitem(
        CIFAR_ARCHIVES,
        "cifar10",
        type(spec)(**{**spec.__dict__, "md5": hashlib.md5(body).hexdigest()}),
    )
    root = tmp_path / "dl"
    with _Server({f"data/{spec.filename}": body}) as base:
        (tr_x, _), (te_x, _) = read_cifar("cifar10", root, download=True, url_base=base)
    assert tr_x.shape[0] == 20 and te_x.shape[0] == 10
    assert (root / spec.filename).is_file() and (root / spec.folder / "test_batch").is_file()
    assert not [p for p in root.rglob("*") if p.name.endswith((".part", ".tmp"))]
    ref = read_cifar("cifar10", tmp_path / "gen")
    assert torch.equal(ref[0][0], tr_x)


def test_corrupt_download_is_removed_and_reported(tmp_path):
    body = _archive_bytes(tmp_path)  # not the official archive: its MD5 cannot match
    spec = CIFAR_ARCHIVES["cifar10"]
    root = tmp_path / "dl"
    with (
        _Server({f"data/{spec.filename}": body}) as base,
        pytest.raises(DataError, match=f"MD5 .*expected {spec.md5}.*removed"),
    ):
        read_cifar("cifar10", root, download=True, url_base=base)
    assert list(root.iterdir()) == []


def test_partial_download_is_removed_and_reported(tmp_path, monkeypatch):
    body = _archive_bytes(tmp_path)
    spec = CIFAR_ARCHIVES["cifar10"]
    monkeypatch.setitem(
        CIFAR_ARCHIVES,
        "cifar10",
        type(spec)(**{**spec.__dict__, "md5": hashlib.md5(body).hexdigest()}),
    )
    root = tmp_path / "dl"
    with (
        _Server({f"data/{spec.filename}": body}, truncate=True) as base,
        pytest.raises(DataError, match=r"(incomplete|failed).*removed"),
    ):
        read_cifar("cifar10", root, download=True, url_base=base)
    assert list(root.iterdir()) == []
    with _Server({}) as base, pytest.raises(DataError, match="404"):
        read_cifar("cifar10", root, download=True, url_base=base)


def test_official_urls_and_md5s():
    assert CIFAR_ARCHIVES["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert CIFAR_ARCHIVES["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


# ----------------------------------------------------------------------------- splits
@pytest.mark.skipif(not OFFICIAL_SPLITS.is_dir(), reason="official split files not available")
def test_official_split_files():
    c10 = read_split_file(OFFICIAL_SPLITS / "cifar-split.txt")
    # The first indices xautodl asserts in get_nas_bench_loaders.
    assert c10["train"][:10] == [0, 5, 7, 11, 13, 15, 16, 17, 20, 24]
    assert c10["valid"][:10] == [1, 2, 3, 4, 6, 8, 9, 10, 12, 14]
    assert len(c10["train"]) == len(c10["valid"]) == 25000
    assert sorted(c10["train"] + c10["valid"]) == list(range(50000))
    c100 = read_split_file(OFFICIAL_SPLITS / "cifar100-test-split.txt")
    assert c100["xvalid"][:5] == [1, 3, 4, 5, 8] and c100["xtest"][:5] == [0, 2, 6, 7, 9]
    assert len(c100["xvalid"]) == len(c100["xtest"]) == 5000
    im = read_split_file(OFFICIAL_SPLITS / "imagenet-16-120-test-split.txt")
    assert im["xvalid"][:5] == [1, 2, 3, 6, 7] and im["xtest"][:5] == [0, 4, 5, 10, 11]
    assert len(im["xvalid"]) == len(im["xtest"]) == 3000


def test_cifar10_valid_rule_is_the_official_split():
    train, valid = cifar10_valid_split()
    assert len(train) == len(valid) == 25000 and sorted(train + valid) == list(range(50000))
    # The spot checks exps/NAS-Bench-201/main.py asserts after generating it.
    assert (train[0], train[10], train[111]) == (0, 26, 203)
    assert (valid[0], valid[10], valid[111]) == (1, 18, 242)
    assert {"train": _sha(train), "valid": _sha(valid)} == CIFAR10_VALID_SHA256
    if (OFFICIAL_SPLITS / "cifar-split.txt").is_file():
        official = read_split_file(OFFICIAL_SPLITS / "cifar-split.txt")
        assert official["train"] == train and official["valid"] == valid
        assert _sha(official["train"]) == CIFAR10_VALID_SHA256["train"]


def test_split_without_file_never_follows_the_seed(tmp_path):
    # cifar10-valid on the full 50,000 images: the official rule, no warning, whatever seed.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackSplitWarning)
        a1, b1, note = _two_way_split("cifar10-valid", 50000, tmp_path, 1, (25000, 25000))
        a2, b2, _ = _two_way_split("cifar10-valid", 50000, None, 2, (25000, 25000))
    assert "official rule" in note
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    assert _sha(a1) == CIFAR10_VALID_SHA256["train"] and _sha(b1) == CIFAR10_VALID_SHA256["valid"]
    # The x-valid / x-test halves have no official rule: still a warning, naming why.
    with pytest.warns(FallbackSplitWarning, match="no official rule"):
        _two_way_split("cifar100", 10000, tmp_path, 0, (5000, 5000))
    with pytest.warns(FallbackSplitWarning, match="needs all 50000 training images"):
        _two_way_split("cifar10-valid", 20, tmp_path, 0, (25000, 25000))


def test_split_file_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text('{"train": ["float", ["1"]]}')
    with pytest.raises(DataError, match=r"must be \[\"int\""):
        read_split_file(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_split_file(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_split_file(tmp_path / "missing.txt")


# The literal normalisation of xautodl ``datasets/get_dataset_with_transform.get_datasets``
# (0..255 scale there), written out here so the check does not compare the table to itself.
OFFICIAL_MEAN_STD = {
    "cifar10": (
        tuple(v / 255 for v in (125.3, 123.0, 113.9)),
        tuple(v / 255 for v in (63.0, 62.1, 66.7)),
    ),
    "cifar100": (
        tuple(v / 255 for v in (129.3, 124.1, 112.4)),
        tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    ),
    "ImageNet16": (
        tuple(v / 255 for v in (122.68, 116.66, 104.01)),
        tuple(v / 255 for v in (63.22, 61.26, 65.09)),
    ),
}


def test_nb201_normalisation_is_xautodl_official():
    assert set(NB201_MEAN_STD) == set(OFFICIAL_MEAN_STD)
    for name, (mean, std) in OFFICIAL_MEAN_STD.items():
        np.testing.assert_allclose(NB201_MEAN_STD[name][0], mean, rtol=0, atol=1e-12)
        np.testing.assert_allclose(NB201_MEAN_STD[name][1], std, rtol=0, atol=1e-12)


def test_cifar_settings_use_split_file_or_warn(tmp_path):
    write_cifar(tmp_path, n_train=20, n_test=10)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "cifar-split.txt").write_text(
        '{"train": ["int", ["0", "2", "4"]], "valid": ["int", ["1", "3"]]}'
    )
    d = load_splits("cifar10-valid", tmp_path, split_file_dir=splits)
    (tr_x, tr_y), (te_x, _) = read_cifar("cifar10", tmp_path)
    assert torch.equal(d.train.images, tr_x[[0, 2, 4]])
    assert torch.equal(d.evals["valid"].labels, tr_y[[1, 3]])
    assert list(d.evals) == ["valid", "test"] and torch.equal(d.evals["test"].images, te_x)
    assert (d.mean, d.std, d.pad, d.resolution) == (*OFFICIAL_MEAN_STD["cifar10"], 4, 32)
    assert "official" in d.notes[0]
    full = load_splits("cifar10", tmp_path)
    assert len(full.train) == 20 and list(full.evals) == ["test"]
    with pytest.warns(FallbackSplitWarning, match="fallback"):
        f1 = load_splits("cifar10-valid", tmp_path, split_file_dir=tmp_path / "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackSplitWarning)
        f2 = load_splits("cifar10-valid", tmp_path, split_file_dir=tmp_path / "none")
    assert len(f1.train) == len(f1.evals["valid"]) == 10
    assert torch.equal(f1.train.labels, f2.train.labels)  # deterministic
    (splits / "cifar-split.txt").write_text(
        '{"train": ["int", ["0", "99"]], "valid": ["int", ["1"]]}'
    )
    with pytest.raises(DataError, match="do not fit a set of 20"):
        load_splits("cifar10-valid", tmp_path, split_file_dir=splits)


def test_cifar100_setting_splits_test_set(tmp_path):
    write_cifar(tmp_path, "cifar100", n_train=8, n_test=10)
    (tmp_path / "cifar100-test-split.txt").write_text(
        '{"xvalid": ["int", ["1", "3", "4"]], "xtest": ["int", ["0", "2"]]}'
    )
    d = load_splits("cifar100", tmp_path)  # split files default to the data directory
    te = read_cifar("cifar100", tmp_path)[1]
    assert d.num_classes == 100 and len(d.train) == 8
    assert torch.equal(d.evals["valid"].images, te[0][[1, 3, 4]])
    assert torch.equal(d.evals["test"].labels, te[1][[0, 2]])


def test_load_splits_errors(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        load_splits("mnist")
    with pytest.raises(DataError, match="needs a data directory"):
        load_splits("cifar10", None)
    with pytest.raises(DataError, match="cannot be downloaded"):
        load_splits("ImageNet16-120", tmp_path, download=True)
    with pytest.raises(DataError, match="limit"):
        load_splits("digits", limit=0)


# ----------------------------------------------------------------------------- embedded
def test_digits_embedded_dataset():
    d = load_splits("digits")
    assert (d.num_classes, d.resolution, d.pad, d.flip) == (10, 16, 2, False)
    sizes = d.summary()
    assert sum(sizes.values()) == 1797 and sizes["train"] > 1000
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (3, 16, 16)
    # Stratified: every class in every split, proportions close to the whole.
    for split in (d.train, *d.evals.values()):
        counts = torch.bincount(split.labels, minlength=10)
        assert counts.min() >= 0.8 * counts.float().mean()
    # Nearest-neighbour upsampling of real 8x8 digits: 2x2 blocks, equal RGB channels.
    img = d.train.images[0]
    assert torch.equal(img[0], img[1]) and torch.equal(img[0, ::2, ::2], img[0, 1::2, 1::2])
    again = load_splits("digits")
    assert torch.equal(again.train.labels, d.train.labels)
    other = load_splits("digits", seed=1)
    assert not torch.equal(other.train.labels, d.train.labels)
    small = load_splits("digits", limit=50)
    assert small.summary() == {"train": 50, "valid": 50, "test": 50}


def test_synthetic_is_deterministic_and_parametrised():
    a, b = make_synthetic(seed=3, n_train=40), make_synthetic(seed=3, n_train=40)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(
        a.train.labels, b.train.labels
    )
    assert not torch.equal(make_synthetic(seed=4, n_train=40).train.images, a.train.images)
    d = load_splits("synthetic-16px-5c", limit=30)
    assert (d.resolution, d.num_classes, d.pad, len(d.train)) == (16, 5, 2, 30)
    assert load_splits("synthetic").name == "synthetic-32px-10c"
    with pytest.raises(DataError, match="unknown dataset"):
        load_splits("synthetic-abc")


def test_dataset_splits_validate():
    img = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(DataError, match="labels must be an int64"):
        Split("x", img, torch.zeros(4, dtype=torch.int32))
    with pytest.raises(DataError, match="4 images but 3 labels"):
        Split("x", img, torch.zeros(3, dtype=torch.int64))
    s = Split("train", img, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(DataError, match=r"labels in \[0, 3\], expected 0..2"):
        DatasetSplits("d", s, {}, 3, 8, (0.5,) * 3, (0.5,) * 3, 1)
    with pytest.raises(DataError, match="expected 16x16"):
        DatasetSplits("d", s, {}, 4, 16, (0.5,) * 3, (0.5,) * 3, 1)


# ----------------------------------------------------------------------------- loader
def _reference_augment(img: torch.Tensor, pad: int, oy: int, ox: int, flip: bool) -> torch.Tensor:
    padded = torch.zeros(
        img.shape[0], img.shape[1] + 2 * pad, img.shape[2] + 2 * pad, dtype=img.dtype
    )
    padded[:, pad : pad + img.shape[1], pad : pad + img.shape[2]] = img
    out = padded[:, oy : oy + img.shape[1], ox : ox + img.shape[2]]
    return out.flip(-1) if flip else out


def test_crop_flip_matches_per_sample_reference():
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g)
    oy, ox = torch.randint(0, 5, (2, 16), generator=g)
    flips = torch.rand(16, generator=g) < 0.5
    out = crop_flip(imgs, 2, oy, ox, flips)
    for i in range(16):
        ref = _reference_augment(imgs[i], 2, int(oy[i]), int(ox[i]), bool(flips[i]))
        assert torch.equal(out[i], ref)


def test_loader_normalises_and_is_deterministic():
    d = make_synthetic(num_classes=3, resolution=16, n_train=70, n_valid=20, n_test=20)
    ev = DeviceLoader(d.evals["valid"], d, 8, train=False)
    assert len(ev) == 3
    x, y = next(iter(ev))
    mean, std = torch.tensor(d.mean).view(1, 3, 1, 1), torch.tensor(d.std).view(1, 3, 1, 1)
    expect = (d.evals["valid"].images[:8].float() / 255 - mean) / std
    assert torch.allclose(x, expect, atol=1e-5) and torch.equal(y, d.evals["valid"].labels[:8])
    tr1 = DeviceLoader(d.train, d, 32, train=True, seed=5)
    tr2 = DeviceLoader(d.train, d, 32, train=True, seed=5, channels_last=True)
    assert len(tr1) == 3
    e0 = [(x.clone(), y.clone()) for x, y in tr1]
    e0b = list(tr2)
    assert sum(len(y) for _, y in e0) == 70
    for (xa, ya), (xb, yb) in zip(e0, e0b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert e0b[0][0].is_contiguous(memory_format=torch.channels_last)
    e1 = list(tr1)  # the next epoch: new permutation and augmentation
    assert not torch.equal(e0[0][1], e1[0][1])
    tr1.set_epoch(0)
    assert torch.equal(next(iter(tr1))[0], e0[0][0])
    # Labels are a permutation of the split; augmentation keeps the image/label pairing
    # (padding zeros aside, each augmented image is a shifted copy of its source).
    all_y = torch.cat([y for _, y in e0])
    assert torch.equal(all_y.sort().values, d.train.labels.sort().values)
    drop = DeviceLoader(d.train, d, 32, train=True, seed=5, drop_last=True)
    assert len(drop) == 2 and sum(len(y) for _, y in drop) == 64


def test_loader_augmentation_statistics():
    # A white image: the zero padding must show up as black borders (value 0 before
    # normalisation), and only with pad > 0; flips are off for digits.
    imgs = torch.full((256, 3, 16, 16), 255, dtype=torch.uint8)
    s = Split("train", imgs, torch.zeros(256, dtype=torch.int64))
    meta = DatasetSplits("w", s, {}, 1, 16, (0.0,) * 3, (1.0,) * 3, 2)
    x, _ = next(iter(DeviceLoader(s, meta, 256, train=True, seed=0)))
    black = (x == 0).flatten(1).any(1)
    assert 0.9 < black.float().mean() < 1.0  # P(shift != 0 in y or x) = 1 - 1/25
    assert x.max() == 1.0
    # Horizontal flips: an image with a left-dark / right-bright gradient.
    grad = torch.arange(16, dtype=torch.uint8).mul(16).expand(256, 3, 16, 16).contiguous()
    s2 = Split("train", grad, torch.zeros(256, dtype=torch.int64))
    meta2 = DatasetSplits("g", s2, {}, 1, 16, (0.0,) * 3, (1.0,) * 3, 0, flip=True)
    x2, _ = next(iter(DeviceLoader(s2, meta2, 256, train=True, seed=0)))
    flipped = (x2[:, 0, 0, 0] > x2[:, 0, 0, -1]).float().mean()
    assert 0.35 < flipped < 0.65
    meta3 = DatasetSplits("g", s2, {}, 1, 16, (0.0,) * 3, (1.0,) * 3, 0, flip=False)
    x3, _ = next(iter(DeviceLoader(s2, meta3, 256, train=True, seed=0)))
    assert (x3[:, 0, 0, 0] < x3[:, 0, 0, -1]).all()


def test_loader_errors():
    d = make_synthetic(n_train=10, n_valid=5, n_test=5, resolution=8)
    with pytest.raises(DataError, match="batch_size"):
        DeviceLoader(d.train, d, 0, train=True)
    with pytest.raises(DataError, match="leaves no batch"):
        DeviceLoader(d.train, d, 64, train=True, drop_last=True)
    with pytest.raises(DataError, match="no split 'xtest'"):
        d.split("xtest")


class _Captured(Exception):
    pass


@pytest.mark.parametrize("seed", [0, 7])
def test_searches_never_draw_the_split_from_their_seed(monkeypatch, tmp_path, seed) -> None:
    """One-shot and width searches load splits with the fixed data seed, whatever their
    search seed: two seeds (or two methods) validate on the same images."""
    import nasforge.data
    import nasforge.search.width.protocol as wp
    from nasforge.cli.oneshot import run_oneshot

    seen: list[int] = []

    def capture(*args, seed=None, **kwargs):
        seen.append(seed)
        raise _Captured

    monkeypatch.setattr(nasforge.data, "load_splits", capture)
    with pytest.raises(_Captured):
        run_oneshot("rsps", "digits", tmp_path / "o", seed=seed, epochs=1, quiet=True)
    monkeypatch.setattr(wp, "load_data", capture)
    with pytest.raises(_Captured):
        wp.run_search(
            backbone="resnet20", dataset="digits", out_dir=tmp_path / "w",
            recipe=nasforge.train.get_recipe("nb201-12e", epochs=1), seed=seed,
        )  # fmt: skip
    assert seen == [0, 0]
